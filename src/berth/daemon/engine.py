"""The engine: containers' lifecycle on top of the monitor, the runtime CLI and the storage core.

Only this module changes container state; routers call it. Blocking storage calls run in threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import shutil
import signal as _signal
import time
from typing import Any

from berth import errors
from berth.cgroups.support import blkio_support
from berth.daemon import execs as execs_mod
from berth.daemon import monitorctl, spec
from berth.daemon.audit import AuditLog
from berth.daemon.config import DaemonConfig
from berth.daemon.container import ZERO_TIME, Container, now_rfc3339, random_name, write_run_file
from berth.daemon.events import Events
from berth.daemon.storage import open_store
from berth.images import crash

log = logging.getLogger("berthd.engine")

_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_STOP_TIMEOUT = 10
_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
# -v SRC:DST:OPTS options Docker accepts (z/Z: SELinux relabels, consistent/cached/delegated: macOS
# hints; nothing to do for either here)
_BIND_OPTIONS = ("ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated", *_PROPAGATIONS)
_MONITOR_CALL_TIMEOUT = 10.0  # seconds for a runtime command run by a monitor


def parse_signal(sig: str | int | None, default: int = _signal.SIGKILL) -> int:
    if sig is None or sig == "":
        return default
    s = str(sig).strip().upper()
    if s.isdigit():
        n = int(s)
        if not 0 < n < 65:
            raise errors.InvalidArgument(f"Invalid signal: {sig}")
        return n
    if not s.startswith("SIG"):
        s = "SIG" + s
    try:
        return int(getattr(_signal.Signals, s))
    except AttributeError:
        raise errors.InvalidArgument(f"Invalid signal: {sig}")


class Engine:
    def __init__(self, cfg: DaemonConfig) -> None:
        self.cfg = cfg
        for d in (cfg.root, os.path.join(cfg.root, "containers"), cfg.exec_root,
                  os.path.join(cfg.exec_root, "containers"), cfg.runtime_root):
            os.makedirs(d, mode=0o710, exist_ok=True)
        self.events = Events(os.path.join(cfg.root, "events.jsonl"), cfg.audit_log_max_size, cfg.audit_log_max_files)
        self.audit = AuditLog(os.path.join(cfg.root, "audit.jsonl"), cfg.audit_log_max_size, cfg.audit_log_max_files)
        self.store = open_store(cfg.root, cfg.storage_driver)
        self.containers: dict[str, Container] = {}
        self.names: dict[str, str] = {}
        self.execs: dict[str, Any] = {}  # exec id -> ExecRecord (berth.daemon.execs)
        self.started_at = time.time()
        self.bg: set[asyncio.Task] = set()
        self.monitors = monitorctl.MonitorHost(cfg.exec_root)
        # berth's own runtime can run inside the (warm) monitor instead of as a fresh interpreter.
        self.runtime_inproc = _is_berth_runtime(cfg.runtime) and os.environ.get("BERTH_RUNTIME_INPROC", "1") != "0"

    # -- helpers -------------------------------------------------------------------------------
    def spawn_bg(self, coro: Any) -> asyncio.Task:
        t = asyncio.ensure_future(coro)
        self.bg.add(t)
        t.add_done_callback(self.bg.discard)
        return t

    async def to_thread(self, fn: Any, *a: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *a, **kw)

    def get(self, ref: str) -> Container:
        """By full id, name (with or without "/") or unique id prefix, as Docker resolves."""
        if not ref:
            raise errors.NotFound("No such container: ")
        c = self.containers.get(ref)
        if c:
            return c
        cid = self.names.get(ref.lstrip("/"))
        if cid:
            return self.containers[cid]
        hits = [c for i, c in self.containers.items() if i.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise errors.InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise errors.NotFound(f"No such container: {ref}")

    async def runtime(self, *args: str, input: bytes | None = None) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            self.cfg.runtime, "--root", self.cfg.runtime_root, *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate(input)
        return proc.returncode or 0, out.decode("utf-8", "replace").strip()

    async def runtime_for(self, c: Container, *args: str) -> tuple[int, str]:
        """A runtime command about a running container, run by its monitor when it is reachable
        (in-process there: no interpreter start), else as a process of our own."""
        if c.running and self.runtime_inproc:
            try:
                # Bounded: a monitor that does not answer must not hang `kill`/`rm -f`.
                res = await asyncio.wait_for(monitorctl.call(c.sock, {"op": "runtime", "args": list(args)}),
                                             _MONITOR_CALL_TIMEOUT)
                if "rc" in res:
                    return int(res["rc"]), str(res.get("out", ""))
            except (errors.BerthError, OSError, ValueError, TimeoutError):
                pass
        return await self.runtime(*args)

    # -- create --------------------------------------------------------------------------------
    async def create(self, body: Any, name: str | None) -> tuple[Container, list[str]]:
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: the container config must be an object")
        config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        hc = body.get("HostConfig") or {}
        if not isinstance(hc, dict):
            raise errors.InvalidArgument("invalid JSON: HostConfig must be an object")
        _check_types(config, hc)
        image_ref = config.get("Image") or ""
        if not image_ref:
            raise errors.InvalidArgument("Config.Image: no image specified")
        warnings: list[str] = []
        if name:
            if not _NAME_RE.match(name):
                raise errors.InvalidArgument(
                    f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            name = name.lstrip("/")
            if name in self.names:
                raise errors.Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{self.names[name]}". You have to remove (or rename) that container to be able to reuse that name.')
        else:
            name = random_name()
            while name in self.names:
                name = random_name()
        image = await self.to_thread(self.store.resolve_image, image_ref)
        icfg = (image.config or {}).get("config", image.config) if isinstance(image.config, dict) else {}
        icfg = icfg or {}
        # Merge the image's defaults as Docker does.
        if not config.get("Entrypoint") and config.get("Entrypoint") != [] and icfg.get("Entrypoint"):
            config["Entrypoint"] = icfg.get("Entrypoint")
            if not config.get("Cmd"):
                config["Cmd"] = icfg.get("Cmd")
        elif not config.get("Cmd") and not body.get("Entrypoint"):
            config["Cmd"] = icfg.get("Cmd")
        if isinstance(config.get("Entrypoint"), str):
            config["Entrypoint"] = [config["Entrypoint"]]
        if isinstance(config.get("Cmd"), str):
            config["Cmd"] = ["/bin/sh", "-c", config["Cmd"]]
        env = list(icfg.get("Env") or [])
        keys = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
        for e in config.get("Env") or []:
            k = e.split("=", 1)[0]
            if k in keys:
                env[keys[k]] = e
            else:
                keys[k] = len(env)
                env.append(e)
        config["Env"] = env
        for k in ("WorkingDir", "User", "StopSignal"):
            if not config.get(k) and icfg.get(k):
                config[k] = icfg[k]
        if not config.get("Healthcheck") and icfg.get("Healthcheck"):
            config["Healthcheck"] = icfg["Healthcheck"]
        labels = dict(icfg.get("Labels") or {})
        labels.update(config.get("Labels") or {})
        config["Labels"] = labels
        config["Image"] = image_ref
        for k, dflt in (("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False),
                        ("AttachStdout", False), ("AttachStderr", False), ("Tty", False), ("OpenStdin", False),
                        ("StdinOnce", False), ("Volumes", None), ("WorkingDir", ""), ("OnBuild", None)):
            config.setdefault(k, dflt)
        cmdline = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
        if not cmdline:
            raise errors.InvalidArgument("No command specified")
        hc = self._normalize_host_config(hc, config)
        spec.resources(hc)  # validate before anything is created
        warnings += spec.discard_unsupported_blkio(hc, blkio_support())
        spec.parse_ulimits(hc.get("Ulimits") or [])
        spec.capabilities(hc)
        spec.check_sysctls(hc)
        cid = secrets.token_hex(32)
        c = Container(id=cid, name=name, created=now_rfc3339(), config=config, host_config=hc,
                      image_id=image.id, image_ref=image_ref, path=cmdline[0], args=cmdline[1:],
                      dir=os.path.join(self.cfg.root, "containers", cid),
                      rundir=os.path.join(self.cfg.exec_root, "containers", cid),
                      driver=getattr(self.store, "driver_name", ""))
        if not config.get("Hostname"):
            config["Hostname"] = cid[:12]
        self.names[name] = cid  # reserve the name while we work
        try:
            os.makedirs(c.dir, mode=0o710)
            await self.to_thread(self.store.create_container_fs, cid, image.id)
            c.mounts = await self._prepare_mounts(c)
            self._write_files(c)
            c.save()
            crash.point("daemon-created")
        except BaseException:
            self.names.pop(name, None)
            await self._destroy_files(c)
            raise
        self.containers[cid] = c
        self.events.emit("container", "create", cid, c.event_attrs())
        return c, warnings

    def _normalize_host_config(self, hc: dict, config: dict) -> dict:
        hc = dict(hc)
        nm = hc.get("NetworkMode") or "default"
        if nm in ("default", ""):
            nm = "none"
        if nm == "bridge" or (nm not in ("none", "host") and not nm.startswith("container:")):
            raise errors.Unsupported(
                f"network mode {nm!r} is not implemented yet: berth supports --network none, host and container:ID "
                "until bridge networking lands")
        if nm.startswith("container:"):
            self.get(nm.split(":", 1)[1])
        hc["NetworkMode"] = nm
        pb = hc.get("PortBindings") or {}
        if any(pb.values()) or hc.get("PublishAllPorts"):
            raise errors.Unsupported(
                "port publishing (-p/-P) needs bridge networking, which berth does not implement yet; "
                "use --network host to reach the container's ports")
        rp = hc.get("RestartPolicy") or {}
        rpn = rp.get("Name") or "no"
        if rpn not in ("no", "always", "on-failure", "unless-stopped"):
            raise errors.InvalidArgument(f"invalid restart policy {rpn!r}")
        if rpn != "on-failure" and rp.get("MaximumRetryCount"):
            raise errors.InvalidArgument("invalid restart policy: maximum retry count can only be used with 'on-failure'")
        if hc.get("AutoRemove") and rpn != "no":
            raise errors.InvalidArgument("can't create 'AutoRemove' container with restart policy")
        hc["RestartPolicy"] = {"Name": rpn, "MaximumRetryCount": int(rp.get("MaximumRetryCount") or 0)}
        hc.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
        if not hc["LogConfig"].get("Type"):
            hc["LogConfig"]["Type"] = "json-file"
        if hc["LogConfig"]["Type"] not in ("json-file", "none"):
            raise errors.Unsupported(f"logging driver {hc['LogConfig']['Type']!r} is not supported (json-file, none)")
        for k, v in (("Binds", None), ("ContainerIDFile", ""), ("PortBindings", {}), ("AutoRemove", False),
                     ("VolumeDriver", ""), ("VolumesFrom", None), ("CapAdd", None), ("CapDrop", None),
                     ("Dns", []), ("DnsOptions", []), ("DnsSearch", []), ("ExtraHosts", None), ("GroupAdd", None),
                     ("IpcMode", "private"), ("Cgroup", ""), ("Links", None), ("OomScoreAdj", 0), ("PidMode", ""),
                     ("Privileged", False), ("PublishAllPorts", False), ("ReadonlyRootfs", False),
                     ("SecurityOpt", None), ("UTSMode", ""), ("UsernsMode", ""), ("ShmSize", 67108864),
                     ("Runtime", "berth-runtime"), ("Isolation", ""), ("CpuShares", 0), ("Memory", 0),
                     ("NanoCpus", 0), ("CgroupParent", ""), ("BlkioWeight", 0), ("BlkioWeightDevice", []),
                     ("BlkioDeviceReadBps", None), ("BlkioDeviceWriteBps", None), ("BlkioDeviceReadIOps", None),
                     ("BlkioDeviceWriteIOps", None), ("CpuPeriod", 0), ("CpuQuota", 0), ("CpuRealtimePeriod", 0),
                     ("CpuRealtimeRuntime", 0), ("CpusetCpus", ""), ("CpusetMems", ""), ("Devices", []),
                     ("DeviceCgroupRules", None), ("DeviceRequests", None), ("MemoryReservation", 0),
                     ("MemorySwap", 0), ("MemorySwappiness", None), ("OomKillDisable", False),
                     ("PidsLimit", None), ("Ulimits", None), ("CpuCount", 0), ("CpuPercent", 0),
                     ("IOMaximumIOps", 0), ("IOMaximumBandwidth", 0), ("MaskedPaths", None),
                     ("ReadonlyPaths", None), ("Init", None), ("Tmpfs", None), ("Mounts", None)):
            if hc.get(k) is None and v is not None:
                hc[k] = v
            else:
                hc.setdefault(k, v)
        if hc.get("ShmSize") in (0, None):
            hc["ShmSize"] = 67108864
        if hc.get("Memory") and int(hc.get("MemorySwap") or 0) == 0 and spec._memsw_supported():
            hc["MemorySwap"] = 2 * int(hc["Memory"])
        priv = bool(hc.get("Privileged"))
        _, masked, ro = spec._defaults()
        hc["MaskedPaths"] = [] if priv else masked
        hc["ReadonlyPaths"] = [] if priv else ro
        return hc

    async def _prepare_mounts(self, c: Container) -> list[dict]:
        """Binds and HostConfig.Mounts -> inspect-form mounts (volumes created on first use)."""
        out: list[dict] = []
        hc = c.host_config
        items: list[tuple[str, str, str, bool]] = []  # type, source, destination, rw
        fill: list[tuple[str, str]] = []  # (volume, destination) to fill from the image
        copy: dict[str, bool] = {}  # destination -> False when "nocopy" was asked
        propagation: dict[str, str] = {}
        for b in hc.get("Binds") or []:
            src, dst, opts = spec._parse_bind(b)
            rw = "ro" not in opts
            bad = [o for o in opts if o not in _BIND_OPTIONS]
            if bad:
                raise errors.InvalidArgument(f"invalid mode: {','.join(bad)} (in {b!r})")
            prop = [o for o in opts if o in _PROPAGATIONS]
            if prop:
                if not src.startswith("/"):
                    raise errors.InvalidArgument(f"invalid mode: {prop[0]}: propagation applies to bind mounts only")
                propagation[dst] = prop[-1]
            copy[dst] = "nocopy" not in opts
            items.append(("bind" if src.startswith("/") else "volume", src, dst, rw))
        for m in hc.get("Mounts") or []:
            t = m.get("Type") or "volume"
            if t not in ("bind", "volume", "tmpfs"):
                raise errors.InvalidArgument(f"mount type {t!r} is not supported")
            dst = m.get("Target") or m.get("Destination") or ""
            if not dst.startswith("/"):
                raise errors.InvalidArgument(f"invalid mount config: mount path {dst!r} must be absolute")
            if t == "tmpfs":
                tm = dict(hc.get("Tmpfs") or {})
                tm[dst] = ""
                hc["Tmpfs"] = tm
                continue
            prop = (m.get("BindOptions") or {}).get("Propagation") or ""
            if prop:
                if prop not in _PROPAGATIONS:
                    raise errors.InvalidArgument(f"invalid propagation mode {prop!r}")
                propagation[dst] = prop
            copy[dst] = not (m.get("VolumeOptions") or {}).get("NoCopy")
            items.append((t, m.get("Source") or "", dst, not m.get("ReadOnly")))
        for vol in (c.config.get("Volumes") or {}):
            if not any(i[2] == vol for i in items):
                items.append(("volume", "", vol, True))
        for t, src, dst, rw in items:
            if t == "bind":
                if not os.path.exists(src):
                    raise errors.InvalidArgument(f"invalid mount config for type \"bind\": bind source path does not exist: {src}")
                out.append({"Type": "bind", "Source": src, "Destination": dst, "Mode": "" if rw else "ro",
                            "RW": rw, "Propagation": propagation.get(dst, "rprivate")})
            else:
                vs = getattr(self.store, "volumes", None)
                if vs is None:
                    raise errors.Unsupported("named volumes need the storage core (berth.images.Store)")
                try:
                    v = await self.to_thread(vs.get, src) if src else None
                except errors.NotFound:
                    v = None
                if v is None:
                    v = await self.to_thread(vs.create, src or None)
                    self.events.emit("volume", "create", v.name, {"driver": "local"})
                if copy.get(dst, True):
                    fill.append((v.name, dst))
                await self.to_thread(vs.acquire, v.name, c.id)
                out.append({"Type": "volume", "Name": v.name, "Source": v.mountpoint, "Destination": dst,
                            "Driver": "local", "Mode": "z" if rw else "ro", "RW": rw, "Propagation": "",
                            **({"Anonymous": True} if not src else {})})
        if fill:
            await self.to_thread(self._fill_volumes, c, fill)
        return out

    def _fill_volumes(self, c: Container, fill: list[tuple[str, str]]) -> None:
        """As Docker: a volume's first use copies what the image has at the mount path into it (only
        while the volume is new and empty; populate_from decides)."""
        rootfs = self.store.mount_container_fs(c.id)
        try:
            for name, dst in fill:
                # resolved and copied through fds inside the rootfs and the volume (berth.linux.paths)
                self.store.volumes.populate_from(name, rootfs, dst)
        finally:
            self.store.unmount_container_fs(c.id)

    def _write_files(self, c: Container) -> None:
        hostname = c.config.get("Hostname") or c.id[:12]
        nm = c.host_config.get("NetworkMode")
        with open(os.path.join(c.dir, "hostname"), "w") as f:
            f.write((os.uname().nodename if nm == "host" else hostname) + "\n")
        hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if nm == "host":
            try:
                with open("/etc/hosts") as f:
                    hosts = f.read()
            except OSError:
                pass
        for h in c.host_config.get("ExtraHosts") or []:
            n, _, ip = h.partition(":")
            hosts += f"{ip}\t{n}\n"
        with open(os.path.join(c.dir, "hosts"), "w") as f:
            f.write(hosts)
        resolv = ""
        try:
            with open("/etc/resolv.conf") as f:
                resolv = f.read()
        except OSError:
            pass
        dns = c.host_config.get("Dns") or []
        if dns:
            resolv = "".join(f"nameserver {d}\n" for d in dns)
        with open(os.path.join(c.dir, "resolv.conf"), "w") as f:
            f.write(resolv)

    async def _destroy_files(self, c: Container) -> None:
        async def fs() -> None:
            try:
                await self.to_thread(self.store.remove_container_fs, c.id)
            except Exception as e:
                log.debug("remove_container_fs(%s): %s", c.id, e)

        # Side by side, off the event loop (unlinks wait on the disk's journal). Any order is safe: a
        # filesystem left without its container directory is removed by restore as unknown.
        await asyncio.gather(fs(), self.to_thread(shutil.rmtree, c.dir, ignore_errors=True),
                             self.to_thread(shutil.rmtree, c.rundir, ignore_errors=True))

    # -- start ---------------------------------------------------------------------------------
    async def start(self, c: Container, *, restarting: bool = False) -> bool:
        """Returns False if it was running already (304)."""
        async with c.lock:
            if c.removing or c.removed:
                raise errors.Conflict(f"container {c.id} is marked for removal and cannot be started")
            if c.running:
                if c.state.get("Paused"):
                    raise errors.Conflict("cannot start a paused container, try unpause instead")
                return False
            if not restarting:
                c.manual_stop = False
            await self._start_locked(c)
            return True

    async def _start_locked(self, c: Container) -> None:
        if c.restart_task and not c.restart_task.done() and c.restart_task is not asyncio.current_task():
            c.restart_task.cancel()
        hc = c.host_config
        shutil.rmtree(c.rundir, ignore_errors=True)
        os.makedirs(c.rundir, mode=0o700)
        rootfs = None
        t0 = time.monotonic()
        try:
            rootfs = await self.to_thread(self.store.mount_container_fs, c.id)
            t_mount = time.monotonic()
            netns = None
            nm = hc.get("NetworkMode") or "none"
            if nm.startswith("container:"):
                other = self.get(nm.split(":", 1)[1])
                if not other.running:
                    raise errors.Conflict(f"cannot join network of a non running container: {other.id}")
                netns = f"/proc/{other.state['Pid']}/ns/net"
            files = {"/etc/hostname": os.path.join(c.dir, "hostname"), "/etc/hosts": os.path.join(c.dir, "hosts"),
                     "/etc/resolv.conf": os.path.join(c.dir, "resolv.conf")}
            mounts = []
            for m in c.mounts:
                opts = ["rbind", m.get("Propagation") or "rprivate"] if m["Type"] == "bind" else ["rbind"]
                if not m.get("RW", True):
                    opts.append("ro")
                mounts.append({"destination": m["Destination"], "type": "bind", "source": m["Source"],
                               "options": opts})
            cfg = dict(c.config)
            cfg["Entrypoint"], cfg["Cmd"] = [c.path], c.args
            oci = await self.to_thread(spec.build, cid=c.id, name=c.name, config=cfg, hc=hc, image_config={},
                                       rootfs=rootfs, mounts=mounts, netns_path=netns, files=files)
            write_run_file(os.path.join(c.rundir, "config.json"), oci)
            lc = (hc.get("LogConfig") or {}).get("Config") or {}
            log_type = (hc.get("LogConfig") or {}).get("Type")
            oom_files, oom_before = _oom_files(c.id)
            mcfg = {
                "id": c.id, "runtime": self.cfg.runtime, "runtime_root": self.cfg.runtime_root,
                "bundle": c.rundir, "tty": bool(c.config.get("Tty")), "stdin": bool(c.config.get("OpenStdin")),
                "stdin_once": bool(c.config.get("StdinOnce")),
                "log_path": c.log_path if log_type != "none" else "/dev/null",
                "log_max_size": _parse_size(lc.get("max-size")) if lc.get("max-size") else self.cfg.log_max_size,
                "log_max_files": int(lc.get("max-file") or self.cfg.log_max_files),
                "oom_files": oom_files, "oom_before": oom_before,
                "runtime_inproc": self.runtime_inproc,
                "pid_file": os.path.join(c.rundir, "init.pid"), "monitor_log": os.path.join(c.dir, "monitor.log"), "exit_file": c.exit_file, "sock": c.sock,
            }
            t_spec = time.monotonic()
            st = await monitorctl.spawn(c.rundir, mcfg, host=self.monitors)
            crash.point("daemon-monitor-spawned")
            t_created = time.monotonic()
            # Attach requests that came before start connect now, so they see all output.
            for f in c.start_waiters:
                if not f.done():
                    f.set_result(True)
            c.start_waiters.clear()
            ready = [f for f in c.attach_ready if not f.done()]
            c.attach_ready.clear()
            if ready:
                await asyncio.wait(ready, timeout=5)
            watcher_conn = await monitorctl.connect(c.sock, {"op": "wait"})
            res = await monitorctl.call(c.sock, {"op": "start"})
            crash.point("daemon-started")
            log.debug("start %s: mount %.1f ms, spec %.1f ms, monitor+runtime create %.1f ms, runtime start %.1f ms",
                      c.id[:12], (t_mount - t0) * 1e3, (t_spec - t_mount) * 1e3, (t_created - t_spec) * 1e3,
                      (time.monotonic() - t_created) * 1e3)
            if "error" in res:
                watcher_conn[1].close()
                await self._force_cleanup(c)
                raise monitorctl._runtime_error(res["error"])
        except BaseException as e:
            for f in c.start_waiters:
                if not f.done():
                    f.set_result(False)
            c.start_waiters.clear()
            if rootfs is not None:
                try:
                    await self.to_thread(self.store.unmount_container_fs, c.id)
                except Exception:
                    pass
            if isinstance(e, errors.BerthError) and not isinstance(e, errors.Conflict):
                self.spawn_bg(self._start_failed(c, str(e)))
            raise
        c.state.update({"Status": "running", "Running": True, "Paused": False, "Restarting": False,
                        "OOMKilled": False, "Dead": False, "Pid": st["pid"], "ExitCode": 0, "Error": "",
                        "StartedAt": now_rfc3339(), "FinishedAt": ZERO_TIME})
        c.state["MonitorPid"] = st.get("monitor", 0)
        if c.config.get("Healthcheck") and (c.config["Healthcheck"].get("Test") or ["NONE"])[0] != "NONE":
            c.state["Health"] = {"Status": "starting", "FailingStreak": 0, "Log": []}
        else:
            c.state.pop("Health", None)
        c.save()
        self.events.emit("container", "start", c.id, c.event_attrs())
        c.watcher = self.spawn_bg(self._watch(c, watcher_conn))
        if "Health" in c.state:
            from berth.daemon.health import run_health

            c.health_task = self.spawn_bg(run_health(self, c))

    async def _watch(self, c: Container, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        """Wait for the monitor's exit report (reconnecting is what restore does)."""
        msg: dict | None = None
        if conn is not None:
            reader, writer = conn
            try:
                while True:
                    fr = await monitorctl.read_frame(reader)
                    if fr is None:
                        break
                    if fr[0] == monitorctl.CONTROL:
                        msg = json.loads(fr[1])
                        if "exit" in msg:
                            break
            finally:
                writer.close()
        if msg is None or "exit" not in msg:
            msg = self._read_exit_file(c)
        await self._on_exit(c, msg)

    def _read_exit_file(self, c: Container) -> dict:
        for _ in range(50):
            try:
                with open(c.exit_file) as f:
                    return json.load(f)
            except (FileNotFoundError, ValueError):
                time.sleep(0.02)
        return {"exit": 255, "oom": False, "error": "the container monitor died"}

    async def _on_exit(self, c: Container, msg: dict) -> None:
        if c.health_task:
            c.health_task.cancel()
            c.health_task = None
        code = int(msg.get("exit", 255))
        oom = bool(msg.get("oom"))
        t0 = time.monotonic()
        try:
            await self.to_thread(self.store.unmount_container_fs, c.id)
        except Exception as e:
            log.warning("unmount %s: %s", c.id, e)
        t_unmount = time.monotonic()
        await self.to_thread(_destroy_cgroup, c.id)
        t_cgroup = time.monotonic()
        c.state.update({"Status": "exited", "Running": False, "Paused": False, "Restarting": False,
                        "Pid": 0, "ExitCode": code, "OOMKilled": oom,
                        "FinishedAt": msg.get("finishedAt") or now_rfc3339(), "Error": msg.get("error", "")})
        c.state.pop("MonitorPid", None)
        if "Health" in c.state:
            c.state["Health"]["Status"] = "unhealthy" if c.state["Health"]["Status"] == "unhealthy" else c.state["Health"]["Status"]
        shutil.rmtree(c.rundir, ignore_errors=True)
        if oom:
            self.events.emit("container", "oom", c.id, c.event_attrs())
        self.events.emit("container", "die", c.id, c.event_attrs(exitCode=str(code)))
        restart = self._should_restart(c, code)
        if restart:
            c.state["Restarting"] = True
            c.state["Status"] = "restarting"
        # An auto-removed container's exit is saved with its removal mark, the next write (one fsync
        # fewer per `run --rm`); berthd dying in between leaves it "running" on disk, and restore, finding
        # its monitor gone, records the exit and removes it all the same.
        if c.host_config.get("AutoRemove") and not restart and not c.removing and not c.removed:
            c.exit_unsaved = True
        elif not c.removed:
            c.save()
        crash.point("daemon-exited")
        t_saved = time.monotonic()
        await self._exited(c, code)
        from berth.daemon.container import parse_rfc3339

        lag = (time.time() - (time.monotonic() - t0) - parse_rfc3339(msg.get("finishedAt") or "")) * 1e3
        log.debug("exit %s: reported %.1f ms after it, unmount %.1f ms, cgroup %.1f ms, state %.1f ms, "
                  "auto-remove %.1f ms", c.id[:12], lag if msg.get("finishedAt") else -1, (t_unmount - t0) * 1e3, (t_cgroup - t_unmount) * 1e3, (t_saved - t_cgroup) * 1e3,
                  (time.monotonic() - t_saved) * 1e3)
        if restart and not c.host_config.get("AutoRemove"):
            c.restart_task = self.spawn_bg(self._restart_later(c))

    async def _exited(self, c: Container, code: int) -> None:
        """After an exit is recorded: wake the waiters, then apply AutoRemove."""
        waiters, c.exit_waiters = c.exit_waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(code)
        if c.host_config.get("AutoRemove") and not c.removed and not c.removing:
            try:
                await self.remove(c, force=True, volumes=False)
            except Exception as e:
                log.warning("auto-remove %s: %s", c.id, e)

    async def _start_failed(self, c: Container, msg: str) -> None:
        """Docker records a failed start as an exit (127 not found, 126 not executable, 128
        otherwise); waiters see it and AutoRemove applies."""
        low = msg.lower()
        code = 127 if ("not found" in low or "no such file" in low) else 126 if "permission denied" in low else 128
        c.state.update({"Status": "exited",
                        "Running": False, "Pid": 0, "ExitCode": code, "Error": msg, "FinishedAt": now_rfc3339()})
        if not c.removed:
            c.save()
        self.events.emit("container", "die", c.id, c.event_attrs(exitCode=str(code)))
        await self._exited(c, code)

    def _should_restart(self, c: Container, code: int) -> bool:
        rp = c.host_config.get("RestartPolicy") or {}
        name = rp.get("Name") or "no"
        if c.manual_stop or c.removing or c.removed or name == "no":
            return False
        if name == "on-failure":
            mx = int(rp.get("MaximumRetryCount") or 0)
            return code != 0 and (mx == 0 or c.restart_count < mx)
        return name in ("always", "unless-stopped")

    async def _restart_later(self, c: Container) -> None:
        # Docker's back-off: 100 ms doubling, reset after 10 s of running.
        from berth.daemon.container import parse_rfc3339

        ran = parse_rfc3339(c.state.get("FinishedAt", "")) - parse_rfc3339(c.state.get("StartedAt", ""))
        c.backoff = 0 if ran >= 10 else c.backoff + 1
        delay = min(0.1 * (2 ** min(c.backoff - 1 if c.backoff else 0, 10)), 60.0)
        await asyncio.sleep(delay)
        async with c.lock:
            if c.removed or c.removing or c.manual_stop or c.running:
                c.state["Restarting"] = False
                return
            c.restart_count += 1
            try:
                await self._start_locked(c)
                self.events.emit("container", "restart", c.id, c.event_attrs())
            except Exception as e:
                c.state.update({"Restarting": False, "Status": "exited", "Error": str(e)})
                c.save()

    async def _force_cleanup(self, c: Container) -> None:
        await self.runtime("delete", "--force", c.id)

    # -- stop / kill / pause -------------------------------------------------------------------
    async def kill(self, c: Container, sig: int, *, manual: bool = True) -> None:
        # dockerd: SIGKILL, the stop signal, or any signal when none is configured means "exit on
        # next": no restart policy brings the container back, and a paused one is resumed after
        # the signal so that it gets it.
        stopping = False
        if manual:
            try:
                stopsig = c.config.get("StopSignal")
                stopping = sig == _signal.SIGKILL or not stopsig or sig == parse_signal(stopsig)
            except errors.InvalidArgument:
                stopping = False
        if not c.running:
            if stopping and c.state.get("Restarting"):
                # Between two runs (dockerd counts that as running): the restart is called off.
                c.manual_stop = True
                if c.restart_task and not c.restart_task.done():
                    c.restart_task.cancel()
                c.state.update({"Restarting": False, "Status": "exited"})
                c.save()
                self.events.emit("container", "kill", c.id, c.event_attrs(signal=str(sig)))
                return
            raise errors.Conflict(f"Cannot kill container: {c.id}: Container {c.id} is not running")
        if stopping:
            c.manual_stop = True
        # As dockerd, `kill` with SIGKILL answers once the container is down (docker-py's
        # `c.kill(); c.remove()` must not meet a running container); stop and rm wait themselves.
        down = None
        if manual and sig == _signal.SIGKILL:
            down = asyncio.get_running_loop().create_future()
            c.exit_waiters.append(down)
        try:
            await self._kill_once(c, sig)
            if stopping and c.state.get("Paused"):
                try:
                    await self.unpause(c)
                except errors.BerthError as e:
                    log.warning("kill %s: resuming it after the signal: %s", c.id, e)
            if down is not None:
                await self._wait_killed(c, down)
        finally:
            if down is not None and not down.done():
                down.cancel()
                if down in c.exit_waiters:
                    c.exit_waiters.remove(down)

    async def _wait_killed(self, c: Container, down: asyncio.Future) -> None:
        """dockerd's wait after a SIGKILL: 10 s, then the pid directly, then until it is down."""
        try:
            await asyncio.wait_for(asyncio.shield(down), 10)
            return
        except TimeoutError:
            pass
        pid = c.state.get("Pid")
        if pid:
            try:
                os.kill(pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            await asyncio.wait_for(asyncio.shield(down), 30)
        except TimeoutError:
            log.warning("kill %s: still not down 40 s after SIGKILL", c.id)

    async def _kill_once(self, c: Container, sig: int) -> None:
        rc, out = await self.runtime_for(c, "kill", c.id, str(sig))
        if rc != 0 and c.running and "not running" not in out and "stopped" not in out:
            # The runtime may race the exit; fall back to the pid we know.
            pid = c.state.get("Pid")
            if pid:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            else:
                raise errors.SystemError_(f"Cannot kill container {c.id}: {out}")
        self.events.emit("container", "kill", c.id, c.event_attrs(signal=str(sig)))

    async def stop(self, c: Container, timeout: int | None, sig: str | None = None) -> bool:
        """Returns False if it was not running (304)."""
        c.manual_stop = True
        if c.restart_task and not c.restart_task.done():
            c.restart_task.cancel()
            c.state["Restarting"] = False
        if not c.running:
            c.save()
            return False
        if c.state.get("Paused"):
            await self.unpause(c)
        stopsig = parse_signal(sig or c.config.get("StopSignal"), _signal.SIGTERM)
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = _STOP_TIMEOUT if timeout is None else int(timeout)
        fut = asyncio.get_running_loop().create_future()
        c.exit_waiters.append(fut)
        try:
            await self.kill(c, stopsig, manual=False)
        except errors.Conflict:
            pass
        try:
            if timeout < 0:
                await fut
            else:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            try:
                await self.kill(c, _signal.SIGKILL, manual=False)
            except errors.Conflict:
                pass
            await asyncio.wait_for(asyncio.shield(fut), 30)
        self.events.emit("container", "stop", c.id, c.event_attrs())
        return True

    async def restart(self, c: Container, timeout: int | None, sig: str | None = None) -> None:
        await self.stop(c, timeout, sig)
        await self.start(c)
        self.events.emit("container", "restart", c.id, c.event_attrs())

    async def pause(self, c: Container) -> None:
        if not c.running:
            raise errors.Conflict(f"Container {c.id} is not running")
        if c.state.get("Paused"):
            raise errors.Conflict(f"Container {c.id} is already paused")
        rc, out = await self.runtime_for(c, "pause", c.id)
        if rc != 0:
            raise errors.SystemError_(f"Cannot pause container {c.id}: {out}")
        c.state.update({"Paused": True, "Status": "paused"})
        c.save()
        self.events.emit("container", "pause", c.id, c.event_attrs())

    async def unpause(self, c: Container) -> None:
        if not c.state.get("Paused"):
            raise errors.Conflict(f"Container {c.id} is not paused")
        rc, out = await self.runtime_for(c, "resume", c.id)
        if rc != 0:
            raise errors.SystemError_(f"Cannot unpause container {c.id}: {out}")
        c.state.update({"Paused": False, "Status": "running"})
        c.save()
        self.events.emit("container", "unpause", c.id, c.event_attrs())

    # -- remove / rename / wait -----------------------------------------------------------------
    async def remove(self, c: Container, force: bool, volumes: bool) -> None:
        if c.removed:
            raise errors.NotFound(f"No such container: {c.id}")
        if c.removing and not c.host_config.get("AutoRemove"):
            raise errors.Conflict(f"removal of container {c.id} is already in progress")
        if c.state.get("Restarting") and not c.running:
            # Waiting out its restart back-off: dockerd counts that as running.
            if not force:
                raise errors.Conflict(f'cannot remove container "/{c.name}": container is restarting: '
                                      "stop the container before removing or force remove")
            c.manual_stop = True  # a restart not begun yet gives up
            t = c.restart_task
            if t is not None and not t.done():
                t.cancel()
                await asyncio.wait([t])  # one mid-start cleans up (or is running: killed below)
        if c.running:
            if not force:
                st = "paused" if c.state.get("Paused") else "running"
                raise errors.Conflict(
                    f"You cannot remove a {st} container {c.id}. Stop the container before attempting removal or force remove")
            c.removing = True
            c.manual_stop = True
            if c.state.get("Paused"):
                try:
                    await self.unpause(c)
                except errors.BerthError:
                    pass
            fut = asyncio.get_running_loop().create_future()
            c.exit_waiters.append(fut)
            try:
                await self.kill(c, _signal.SIGKILL, manual=False)
            except errors.Conflict:
                pass
            try:
                await asyncio.wait_for(asyncio.shield(fut), 30)
            except TimeoutError:
                raise errors.SystemError_(f"could not kill running container {c.id}, cannot remove")
        c.removing = True
        if c.restart_task:
            c.restart_task.cancel()
        c.state["Status"] = "removing"
        try:
            if not c.exit_unsaved:  # (else "running" on disk leads restore to the auto-removal)
                c.save()  # a crash from here on: restore finishes the removal
        except OSError as e:  # a half-gone directory: remove what is left all the same
            log.warning("saving %s before its removal: %s", c.id, e)
        crash.point("daemon-remove-marked")
        for eid in list(c.exec_ids):
            self.execs.pop(eid, None)
        vs = getattr(self.store, "volumes", None)
        for m in c.mounts:
            if m.get("Type") == "volume" and vs is not None:
                try:
                    await self.to_thread(vs.release, m["Name"], c.id)
                    if volumes and m.get("Anonymous"):  # rm -v: anonymous volumes only, as Docker
                        await self.to_thread(vs.remove, m["Name"])
                        self.events.emit("volume", "destroy", m["Name"], {"driver": "local"})
                except Exception as e:
                    log.debug("volume %s: %s", m.get("Name"), e)
        # Before the files go: a crash in between repeats the removal (and the event) on restore,
        # so the history has the destroy at least once.
        self.events.emit("container", "destroy", c.id, c.event_attrs())
        await self._destroy_files(c)
        crash.point("daemon-removed")
        self.containers.pop(c.id, None)
        if self.names.get(c.name) == c.id:
            self.names.pop(c.name, None)
        c.removed = True
        waiters, c.remove_waiters = c.remove_waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(c.state.get("ExitCode", 0))
        for f in c.exit_waiters:
            if not f.done():
                f.set_result(c.state.get("ExitCode", 0))

    async def rename(self, c: Container, new: str) -> None:
        if not new:
            raise errors.InvalidArgument("Neither old nor new names may be empty")
        if not _NAME_RE.match(new):
            raise errors.InvalidArgument(f"Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        new = new.lstrip("/")
        if new == c.name:
            raise errors.InvalidArgument("Renaming a container with the same name as its current name")
        if new in self.names:
            raise errors.Conflict(
                f'Conflict. The container name "/{new}" is already in use by container "{self.names[new]}". '
                "You have to remove (or rename) that container to be able to reuse that name.")
        old = c.name
        self.names[new] = c.id
        self.names.pop(old, None)
        c.name = new
        c.save()
        self.events.emit("container", "rename", c.id, c.event_attrs(oldName="/" + old))

    def wait_future(self, c: Container, condition: str) -> asyncio.Future:
        """A future resolved with the exit code when `condition` holds."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if condition == "removed":
            if c.removed:
                fut.set_result(c.state.get("ExitCode", 0))
            else:
                c.remove_waiters.append(fut)
        elif condition == "next-exit":
            c.exit_waiters.append(fut)
        else:  # not-running (also unknown values, as 20.10 does)
            if not c.running and not c.state.get("Restarting"):
                fut.set_result(c.state.get("ExitCode", 0))
            else:
                c.exit_waiters.append(fut)
        return fut

    # -- update --------------------------------------------------------------------------------
    async def update(self, c: Container, body: dict) -> list[str]:
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: update body must be an object")
        keys = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuPeriod", "CpuQuota",
                "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight", "KernelMemory", "RestartPolicy")
        hc = dict(c.host_config)
        changed = {}
        for k in keys:
            if k in body and body[k] not in (None, "") and not (k != "RestartPolicy" and body[k] == 0 and k != "PidsLimit"):
                changed[k] = body[k]
        if "RestartPolicy" in changed:
            rp = changed["RestartPolicy"] or {}
            if rp.get("Name") and c.host_config.get("AutoRemove"):
                raise errors.InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
        asked = dict(changed)
        warnings = spec.discard_unsupported_blkio(changed, blkio_support())
        changed = {k: v for k, v in changed.items() if v == asked[k]}  # a discarded setting is no change
        hc.update(changed)
        if changed.get("Memory") and "MemorySwap" not in changed:
            old_swap = int(c.host_config.get("MemorySwap") or 0)
            if old_swap > 0 and old_swap < int(changed["Memory"]):
                raise errors.InvalidArgument(
                    "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
        res = spec.resources(hc)
        if c.running and any(k != "RestartPolicy" for k in changed):
            oci = {k: v for k, v in res.items() if k != "memory_disable_oom"}
            if "pids" in changed and int(changed["PidsLimit"] or 0) <= 0:
                oci["pids"] = {"limit": -1}
            path = os.path.join(c.rundir, "update.json")
            write_run_file(path, oci)
            rc, out = await self.runtime_for(c, "update", "-r", path, c.id)
            if rc != 0:
                raise errors.SystemError_(f"Cannot update container {c.id}: {out}")
        c.host_config = hc
        c.save()
        self.events.emit("container", "update", c.id, c.event_attrs())
        return warnings

    # -- restore ------------------------------------------------------------------------------
    async def restore(self) -> None:
        """Load every container from disk; reconnect to live monitors, settle the others."""
        base = os.path.join(self.cfg.root, "containers")
        for cid in sorted(os.listdir(base)):
            cdir = os.path.join(base, cid)
            try:
                with open(os.path.join(cdir, "container.json")) as f:
                    d = json.load(f)
            except (OSError, ValueError):
                log.warning("removing half-created container directory %s", cdir)
                try:
                    await self.to_thread(self.store.remove_container_fs, cid)
                except Exception:
                    pass
                shutil.rmtree(cdir, ignore_errors=True)
                continue
            c = Container.from_disk(d, cdir, os.path.join(self.cfg.exec_root, "containers", cid))
            self.containers[cid] = c
            self.names[c.name] = cid
            for ex in execs_mod.ExecRecord.load_all(c):
                self.execs[ex.id] = ex
                c.exec_ids.add(ex.id)
        for c in list(self.containers.values()):
            await self._restore_one(c)
        # Container filesystems the store holds for containers we do not know (a crash between the
        # store's create and our save): remove them.
        try:
            known = set(self.containers)
            rows = await self.to_thread(self.store.db.query, "SELECT container_id FROM container_fs")
            for (cid,) in rows:
                if cid not in known:
                    log.warning("removing the filesystem of unknown container %s", cid)
                    await self.to_thread(self.store.remove_container_fs, cid)
        except Exception as e:
            log.debug("orphan container filesystems: %s", e)
        # Runtime state for containers we do not know: a crash between create and save.
        try:
            for ent in os.listdir(os.path.join(self.cfg.exec_root, "containers")):
                if ent not in self.containers:
                    shutil.rmtree(os.path.join(self.cfg.exec_root, "containers", ent), ignore_errors=True)
        except OSError:
            pass

    async def _restore_one(self, c: Container) -> None:
        c.state["Restarting"] = False
        if not c.running and os.path.isdir(c.rundir):
            # berthd died between starting the monitor and saving "running": adopt or clean up.
            try:
                st = await monitorctl.call(c.sock, {"op": "ping"})
            except (errors.BerthError, OSError, ValueError):
                st = None
            running = False
            if st and st.get("ok") and not st.get("finished"):
                rc, out = await self.runtime("state", c.id)
                try:
                    running = rc == 0 and json.loads(out).get("status") == "running"
                except ValueError:
                    running = False
            if running:
                c.state.update({"Status": "running", "Running": True, "Pid": st.get("pid") or 0,
                                "StartedAt": now_rfc3339(), "FinishedAt": ZERO_TIME, "ExitCode": 0})
                c.save()
            else:
                # Created but never started (or half torn down): undo it.
                await self.runtime("delete", "--force", c.id)
                try:
                    await self.to_thread(self.store.unmount_container_fs, c.id)
                except Exception:
                    pass
                shutil.rmtree(c.rundir, ignore_errors=True)
        if not c.running:
            if c.state.get("Status") in ("removing",):
                await self.remove(c, force=True, volumes=False)
                return
            if c.state.get("Status") == "restarting":
                c.state["Status"] = "exited"
            if (c.host_config.get("RestartPolicy") or {}).get("Name") in ("always", "unless-stopped") \
                    and not c.manual_stop:
                self.spawn_bg(self._restart_after_restore(c))
            return
        try:
            reader, writer = await monitorctl.connect(c.sock, {"op": "wait"})
        except errors.Unavailable:
            msg = self._read_exit_file(c) if os.path.exists(c.exit_file) else {
                "exit": 255, "oom": False, "error": "the container's monitor was gone when berthd started"}
            if "error" in msg:
                await self.runtime("delete", "--force", c.id)
            await self._on_exit(c, msg)
            return
        c.watcher = self.spawn_bg(self._watch(c, (reader, writer)))
        if "Health" in c.state:
            from berth.daemon.health import run_health

            c.health_task = self.spawn_bg(run_health(self, c))
        if c.commit_pause:  # berthd died mid-commit: the pause was the commit's, not the user's
            c.commit_pause = False
            rc, out = await self.runtime_for(c, "resume", c.id)  # frozen even if "Paused" was not saved yet
            if rc != 0 and c.state.get("Paused"):
                log.warning("resuming %s after an interrupted commit: %s", c.id, out)
            else:
                c.state.update({"Paused": False, "Status": "running"})
            c.save()

    async def _restart_after_restore(self, c: Container) -> None:
        try:
            await self.start(c, restarting=True)
        except Exception as e:
            log.warning("restart %s after daemon start: %s", c.id, e)

    def close(self) -> None:
        self.monitors.close()
        self.events.close()
        self.audit.close()


def _destroy_cgroup(cid: str) -> None:
    """`runtime delete` removes the cgroup, but a rmdir can lose the race with the last exiting
    task: make sure nothing is left behind."""
    try:
        from berth import cgroups

        m = cgroups.new_manager(f"/berth/{cid}", cid)
        if m.exists() and not m.pids():
            m.destroy()
    except Exception as e:
        log.debug("cgroup cleanup of %s: %s", cid, e)


def _is_berth_runtime(path: str) -> bool:
    """True for berth's launcher of berth.runtime.cli (not for runc or any other binary)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return b"berth.runtime.cli" in head


def _oom_files(cid: str) -> tuple[list[str], int]:
    """Where the monitor reads the OOM-kill count before `runtime delete` removes the cgroup."""
    cands = [f"/sys/fs/cgroup/memory/berth/{cid}/memory.oom_control",
             f"/sys/fs/cgroup/berth/{cid}/memory.events"]
    return cands, 0


def _parse_size(s: str) -> int:
    m = re.fullmatch(r"(\d+)([kmg]?)b?", s.strip().lower())
    if not m:
        raise errors.InvalidArgument(f"invalid log max-size {s!r}")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


def _check_types(config: dict, hc: dict) -> None:
    """Wrong JSON types get a 400 naming the field, as Go's decoder does."""
    def want(obj: dict, key: str, types: tuple, what: str, where: str) -> None:
        v = obj.get(key)
        if v is not None and not isinstance(v, types) or isinstance(v, bool) and bool not in types:
            raise errors.InvalidArgument(
                f"json: cannot unmarshal {type(v).__name__} into Go struct field {where}.{key} of type {what}")

    for k in ("Cmd", "Entrypoint"):
        want(config, k, (list, str), "strslice.StrSlice", "Config")
        v = config.get(k)
        if isinstance(v, list) and not all(isinstance(x, str) for x in v):
            raise errors.InvalidArgument(f"json: cannot unmarshal number into Go struct field Config.{k} of type string")
    for k in ("Env",):
        want(config, k, (list,), "[]string", "Config")
    for k in ("Image", "User", "WorkingDir", "Hostname", "StopSignal"):
        want(config, k, (str,), "string", "Config")
    for k in ("Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr"):
        want(config, k, (bool,), "bool", "Config")
    want(config, "Labels", (dict,), "map[string]string", "Config")
    for k in ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuPeriod", "CpuQuota",
              "PidsLimit", "BlkioWeight", "ShmSize", "OomScoreAdj"):
        want(hc, k, (int,), "int64", "HostConfig")
    for k in ("Binds", "CapAdd", "CapDrop", "SecurityOpt", "Dns", "ExtraHosts"):
        want(hc, k, (list,), "[]string", "HostConfig")
    for k in ("Privileged", "ReadonlyRootfs", "AutoRemove", "Init"):
        want(hc, k, (bool,), "bool", "HostConfig")
