"""/_ping, /version, /info, /events, /system/df and berth's own /berth/audit."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time

from berth import __version__, errors
from berth.daemon.engine import Engine
from berth.daemon.events import matches
from berth.daemon.http import API_VERSION, MIN_API_VERSION, Request, Response, Router, Stream, json_response


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def register(r: Router, eng: Engine) -> None:
    ping_headers = [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")]

    async def ping(req: Request):
        return Response(200, b"OK", "text/plain; charset=utf-8", list(ping_headers))

    async def version(req: Request):
        u = os.uname()
        return json_response({
            "Platform": {"Name": "berth"},
            "Components": [
                {"Name": "Engine", "Version": __version__,
                 "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                             "Arch": "amd64", "KernelVersion": u.release, "Experimental": "false",
                             "GitCommit": "", "GoVersion": "python" + platform.python_version()}},
                {"Name": "berth-runtime", "Version": __version__, "Details": {"GitCommit": ""}},
            ],
            "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "", "GoVersion": "python" + platform.python_version(), "Os": "linux",
            "Arch": "amd64" if u.machine == "x86_64" else u.machine, "KernelVersion": u.release,
            "BuildTime": "", "Experimental": False,
        })

    async def info(req: Request):
        cs = list(eng.containers.values())
        running = sum(1 for c in cs if c.running and not c.state.get("Paused"))
        paused = sum(1 for c in cs if c.state.get("Paused"))
        try:
            nimages = len(await eng.to_thread(eng.store.list_images))
        except Exception:
            nimages = 0
        u = os.uname()
        return json_response({
            "ID": _daemon_id(eng), "Containers": len(cs), "ContainersRunning": running,
            "ContainersPaused": paused, "ContainersStopped": len(cs) - running - paused,
            "Images": nimages, "Driver": getattr(eng.store, "driver_name", ""), "DriverStatus": [],
            "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Authorization": None,
                        "Log": ["json-file", "none"]},
            "MemoryLimit": True, "SwapLimit": os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
            "KernelMemory": False, "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
            "PidsLimit": True, "IPv4Forwarding": False, "BridgeNfIptables": False, "BridgeNfIp6tables": False,
            "Debug": eng.cfg.log_level == "debug", "NFd": len(os.listdir("/proc/self/fd")),
            "OomKillDisable": True, "NGoroutines": len(asyncio.all_tasks()),
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) + "Z",
            "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": _cgroup_version(),
            "NEventsListener": len(eng.events.subscribers), "KernelVersion": u.release,
            "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux", "Architecture": u.machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": None,
                               "AllowNondistributableArtifactsHostnames": None,
                               "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": None},
            "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "GenericResources": None,
            "DockerRootDir": eng.cfg.root, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": u.nodename, "Labels": [], "ExperimentalBuild": False, "ServerVersion": __version__,
            "Runtimes": {"berth-runtime": {"path": eng.cfg.runtime}}, "DefaultRuntime": "berth-runtime",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                      "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin"] + (["name=cgroupns"] if _cgroup_version() == "2" else []),
            "Warnings": None,
        })

    async def events(req: Request):
        flt = req.filters()
        since = _float(req.q("since"))
        until = _float(req.q("until"))
        q = eng.events.subscribe()
        history = await eng.to_thread(eng.events.replay, since, until)  # rotated files too

        async def gen():
            try:
                yield b""
                for ev in history:
                    if matches(ev, flt):
                        yield json.dumps(ev).encode() + b"\n"
                last = history[-1]["timeNano"] if history else 0
                while True:
                    timeout = None
                    if until is not None:
                        timeout = until - time.time()
                        if timeout <= 0:
                            return
                    try:
                        ev = await asyncio.wait_for(q.get(), timeout)
                    except TimeoutError:
                        return
                    if ev["timeNano"] <= last:
                        continue
                    if until is not None and ev["timeNano"] > until * 1e9:
                        return
                    if matches(ev, flt):
                        yield json.dumps(ev).encode() + b"\n"
            finally:
                eng.events.unsubscribe(q)

        return Stream(gen(), on_disconnect=lambda: eng.events.unsubscribe(q))

    async def audit(req: Request):
        uid = req.qint("uid")
        recs = await eng.to_thread(eng.audit.query, since=_float(req.q("since")), until=_float(req.q("until")),
                                   uid=uid, obj=req.q("object"), limit=req.qint("limit"))
        return json_response(recs)

    async def df(req: Request):
        from berth.daemon.routers.images import image_summary

        images = []
        layers_size = 0
        try:
            usage = await eng.to_thread(eng.store.disk_usage)
        except Exception:
            usage = {}
        try:
            by_id = {i.get("Id"): i for i in usage.get("Images", [])}
            for img in await eng.to_thread(eng.store.list_images):
                s = image_summary(img)
                s["Containers"] = sum(1 for c in eng.containers.values() if c.image_id == img.id)
                u = by_id.get(img.id)
                if u:
                    s["SharedSize"] = u.get("SharedSize", -1)
                    s["Size"] = u.get("Size", s["Size"])
                images.append(s)
        except Exception:
            pass
        layers_size = usage.get("LayersSize", sum(i["Size"] for i in images))
        containers = []
        for c in eng.containers.values():
            try:
                rw = int(eng.store.container_fs_size(c.id))
            except Exception:
                rw = 0
            containers.append(c.summary((rw, 0)))
        vols = []
        vs = getattr(eng.store, "volumes", None)
        if vs is not None:
            from berth.daemon.routers.volumes import volume_json

            for v in await eng.to_thread(vs.list):
                j = volume_json(v)
                refs = sum(1 for c in eng.containers.values() for m in c.mounts if m.get("Name") == j["Name"])
                j["UsageData"] = {"Size": _dir_size(j["Mountpoint"]), "RefCount": refs}
                vols.append(j)
        return json_response({"LayersSize": layers_size, "Images": images, "Containers": containers,
                              "Volumes": vols, "BuildCache": [], "BuilderSize": 0})

    r.add("GET", "/_ping", ping)
    r.add("HEAD", "/_ping", ping)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)
    r.add("GET", "/events", events)
    r.add("GET", "/system/df", df)
    r.add("GET", "/berth/audit", audit)

    async def plugin(req: Request):
        raise errors.NotFound(f"plugin \"{req.params['name']}\" not found")

    r.add("GET", "/plugins/{name:.*}/json", plugin)


def _float(v: str | None) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        raise errors.InvalidArgument(f"invalid timestamp {v!r}")


def _dir_size(path: str) -> int:
    total = 0
    for dp, _dn, fns in os.walk(path):
        for fn in fns:
            try:
                total += os.lstat(os.path.join(dp, fn)).st_blocks * 512
            except OSError:
                pass
    return total


def _daemon_id(eng: Engine) -> str:
    path = os.path.join(eng.cfg.root, "engine-id")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        import uuid

        i = str(uuid.uuid4())
        with open(path, "w") as f:
            f.write(i)
        return i
