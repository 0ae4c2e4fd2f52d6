"""The container lifecycle behind the CLI verbs: create, start, run, kill, delete, exec, pause, resume."""

import _signal as signal  # the C module: `signal` imports enum (5 ms)
import os
import select

from berth.errors import BerthError, Conflict, InvalidArgument, NotFound, Unsupported
from berth.linux import procfs
from berth.oci.runtime_spec import validate, validate_process
from berth.runtime import cgroup, hooks, jsonio, seccomp_program, state, warm
from berth.runtime.channel import Channel, ChannelError
from berth.runtime.context import NS_FLAGS, NS_PROC, Context


class Options:
    def __init__(self, **kw):
        self.root = state.DEFAULT_ROOT
        self.bundle = None
        self.console_socket = None
        self.pid_file = None
        self.no_pivot = False
        self.no_new_keyring = False
        self.preserve_fds = 0
        self.detach = False
        self.keep = False
        self.systemd_cgroup = False
        self.config = None  # --config FILE instead of bundle/config.json
        self.warn = None  # callable(str) for warnings (the log)
        self.__dict__.update(kw)


# -- bundle loading --------------------------------------------------------------------------------
def load_bundle(bundle: str, config: str | None = None) -> dict:
    """bundle/config.json, or `config` (crun's `--config FILE`, relative to the caller's directory)."""
    path = os.path.abspath(config) if config else os.path.join(bundle, "config.json")
    try:
        cfg = jsonio.load_file(path)
    except FileNotFoundError:
        raise NotFound(f"{path} not found" if config else f"bundle {bundle}: config.json not found")
    except ValueError as e:
        raise InvalidArgument(f"{path}: malformed JSON: {e}") from None
    return validate(cfg)


def _namespaces(cfg: dict) -> tuple[list[str], dict[str, str]]:
    new, join = [], {}
    for i, ns in enumerate((cfg.get("linux") or {}).get("namespaces") or []):
        t, path = ns["type"], ns.get("path")
        if not os.path.exists(f"/proc/self/ns/{NS_PROC[t]}"):
            raise Unsupported(f"config.json: linux.namespaces[{i}]: this kernel has no {t} namespace")
        if path:
            if not os.path.exists(path):
                raise InvalidArgument(f"config.json: linux.namespaces[{i}].path: {path} does not exist")
            join[t] = path
        else:
            new.append(t)
    return new, join


def _check_sysctl(cfg: dict, new_ns: list[str], join_ns: dict[str, str]) -> None:
    """Only namespaced sysctls, in namespaces of the container's own (a joined path that is the runtime's
    own namespace is the host's), as runc checks: before anything is made."""
    from berth.oci.sysctl import check

    own = set(new_ns)
    for t, path in join_ns.items():
        try:
            a, b = os.stat(path), os.stat(f"/proc/self/ns/{NS_PROC[t]}")
            if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
                own.add(t)
        except OSError:
            own.add(t)
    why = check(cfg["linux"]["sysctl"], own, bool(cfg.get("hostname")))
    if why:
        raise InvalidArgument(f"config.json: linux.sysctl: {why}")


# Device cgroup rules every container gets (the nodes the runtime creates in /dev, and ptys).
_ALLOWED_DEVICES = [
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
]


def _with_default_devices(res: dict, devices: list[dict]) -> dict:
    if "devices" not in res:
        return res
    extra = [{"allow": True, "type": d["type"], "major": d.get("major"), "minor": d.get("minor"), "access": "rwm"}
             for d in devices if d["type"] in ("c", "b", "u")]
    return dict(res, devices=list(res["devices"]) + _ALLOWED_DEVICES + extra)


def _write_pid_file(path: str, pid: int) -> None:
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _remove_dir(d: str) -> None:
    try:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)
    except FileNotFoundError:
        pass


def _wait_gone(pid: int, started: int | None, timeout: float = 10.0) -> bool:
    """Wait until pid (not necessarily our child) has exited; reap it if it is our child."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return True
    try:
        if not procfs.alive(pid, started):
            return True
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        p.poll(int(timeout * 1000))
    finally:
        os.close(pidfd)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not procfs.alive(pid, started)


# -- create / start / run --------------------------------------------------------------------------
class Created:
    def __init__(self, pid: int, st: dict, chan: Channel, master: int | None, mgr=None):
        self.pid, self.st, self.chan, self.master, self.mgr = pid, st, chan, master, mgr


def create(cid: str, o: Options, foreground_tty: bool = False, start_message: bool = False) -> Created:
    state.check_id(cid)
    if o.systemd_cgroup:
        raise Unsupported("--systemd-cgroup: the systemd cgroup driver is not supported; use cgroupfs paths")
    bundle = os.path.abspath(o.bundle or ".")
    cfg = load_bundle(bundle, o.config)
    proc = cfg["process"]
    rootfs = os.path.join(bundle, cfg["root"]["path"])
    if not os.path.isdir(rootfs):
        raise InvalidArgument(f"config.json: root.path: rootfs {rootfs} does not exist or is not a directory")
    new_ns, join_ns = _namespaces(cfg)
    if (cfg.get("linux") or {}).get("sysctl"):
        _check_sysctl(cfg, new_ns, join_ns)
    terminal = bool(proc.get("terminal"))
    if terminal and not o.console_socket and not foreground_tty:
        raise InvalidArgument("process.terminal is true: a console socket (--console-socket) is needed "
                              "when the runtime detaches")
    if o.console_socket:
        from berth.runtime import tty

        tty.check_socket(o.console_socket)
    sflags = seccomp_program.flags(cfg)  # the program itself is compiled while init sets up
    linux = cfg.get("linux") or {}
    mgr = None
    cdir = state.make_dir(o.root, cid)
    fifo = os.path.join(cdir, "exec.fifo")
    pid = 0
    started = None
    # A TERM/HUP/INT while creating must still clean up (state dir, cgroup, half-made init).
    old_handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        ctx = Context(cid=cid, config=cfg, process=proc, bundle=bundle, rootfs=rootfs, fifo=fifo,
                      no_pivot=o.no_pivot, preserve_fds=o.preserve_fds, terminal=terminal,
                      new_keyring=not o.no_new_keyring, start_message=start_message,
                      new_ns=new_ns, join_ns=join_ns, seccomp_flags=sflags)
        from berth.runtime import process

        # Fork first: init imports its code, unshares, mounts and compiles its seccomp program while we
        # make its cgroup (it waits for "joined" and "limited" before it needs them).
        pid, chan = process.spawn_init(ctx)
        st = {
            "id": cid, "pid": pid, "start_time": None, "bundle": bundle, "rootfs": rootfs,
            "created": state.rfc3339_now(), "ociVersion": cfg.get("ociVersion"),
            "annotations": cfg.get("annotations") or {}, "config": cfg, "cgroups_path": None,
        }
        hstate = state.hook_state(st, "creating")
        mgr = cgroup.manager(linux.get("cgroupsPath"), cid)
        join_fds: list[int] = []
        try:
            if mgr is not None:
                st["cgroups_path"] = mgr.path
                mgr.create()
                # init writes itself into the v1 hierarchies (open_self_join: no RCU grace period); we
                # move it by pid where it cannot: cgroup v2, or anywhere from a new user namespace.
                if not ctx.userns:
                    join_fds = mgr.open_self_join()
                mgr.apply(pid, self_joined=bool(join_fds))
            warm.stop()
            try:
                chan.send("joined", fds=join_fds, state=hstate, hierarchies=_cgroup_hierarchies(cfg, mgr))
            except (BrokenPipeError, ConnectionResetError):
                pass  # init failed meanwhile: its error message is read below
        finally:
            _close_all(join_fds)
        # init's start time: read once "joined" is on its way, not before it (init waits for that)
        started = st["start_time"] = procfs.start_time(pid)
        if mgr is not None and linux.get("resources"):
            mgr.set(_with_default_devices(linux["resources"], linux.get("devices") or []))
        if proc.get("oomScoreAdj") is not None:
            try:
                with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                    f.write(str(proc["oomScoreAdj"]))
            except OSError as e:
                raise InvalidArgument(f"config.json: process.oomScoreAdj {proc['oomScoreAdj']}: {e.strerror} "
                                      "(lowering it needs CAP_SYS_RESOURCE)") from None
        bpf = None if seccomp_program.compiled_by_init(ctx.userns) else seccomp_program.compile_for(cfg)
        try:
            chan.send("limited", bpf=bpf.hex() if bpf else None)
        except (BrokenPipeError, ConnectionResetError):
            pass  # init failed meanwhile: its error message is read below
        master = None
        while True:
            msg, fd = chan.recv(with_fd=True)
            if msg is None:
                raise ChannelError("container init exited unexpectedly")
            typ = msg["type"]
            if typ == "error":
                raise ChannelError(msg["msg"])
            if typ == "hooks":
                hk = cfg.get("hooks") or {}
                hooks.run_all(hk.get("prestart"), "prestart", hstate)
                hooks.run_all(hk.get("createRuntime"), "createRuntime", hstate)
                chan.send("hooks_done")
            elif typ == "console":
                master = _console(o, fd)
            elif typ == "ready":
                break
        state.save(o.root, cid, st)
        if o.pid_file:
            _write_pid_file(o.pid_file, pid)
        return Created(pid, st, chan, master, mgr)
    except BaseException as e:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            _wait_gone(pid, started)
        if mgr is not None:
            try:
                mgr.destroy()
            except Exception:
                pass
        _remove_dir(cdir)
        if isinstance(e, ChannelError):
            raise BerthError(str(e)) from None
        raise
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)


def _console(o: Options, master: int) -> int | None:
    """The pty master init sent: to the caller's --console-socket (-> None), or ours to proxy."""
    if not o.console_socket:
        return master
    from berth.runtime import tty

    try:
        tty.send_to_socket(o.console_socket, master)
    finally:
        os.close(master)
    return None


def _cgroup_hierarchies(cfg: dict, mgr) -> list | None:
    """For init's cgroup mount: [mount point, root, controllers, version] of each hierarchy, as the
    cgroup manager found them (so init does not read mountinfo itself: ~1 ms on its path)."""
    if mgr is None or not any(m.get("type") == "cgroup" for m in cfg.get("mounts") or ()):
        return None
    return [[h.mountpoint, h.root, ",".join(sorted(h.controllers)), h.version] for h in mgr.hierarchies()]


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _interrupt(sig, _frame):
    raise KeyboardInterrupt(f"signal {sig}")


def start(cid: str, o: Options) -> dict:
    st = state.load(o.root, cid)
    stat = state.status(o.root, st)
    if stat != "created":
        raise Conflict({"stopped": "cannot start a container that has stopped",
                        "running": "cannot start an already running container",
                        "paused": "cannot start a paused container"}.get(stat, f"cannot start a container in status {stat}"))
    fifo = os.path.join(o.root, cid, "exec.fifo")
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        while True:
            if p.poll(100) and os.read(fd, 1):
                break
            if not procfs.alive(st["pid"], st.get("start_time")):
                raise Conflict(f"container {cid} exited before it was started")
    finally:
        os.close(fd)
    _started(o, st)
    return st


def _started(o: Options, st: dict) -> None:
    """The program runs: the state turns from created to running (no fifo); poststart hooks."""
    os.unlink(os.path.join(o.root, st["id"], "exec.fifo"))
    hk = (st.get("config") or {}).get("hooks") or {}
    if hk.get("poststart"):
        try:
            hooks.run_all(hk["poststart"], "poststart", state.hook_state(st, "running"))
        except BerthError as e:
            if o.warn:
                o.warn(str(e))


def run(cid: str, o: Options) -> int:
    from berth.linux import libc as L

    if not o.detach:
        # init may be a grandchild (user namespaces): become its reaper so we can wait for it.
        L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
    c = create(cid, o, foreground_tty=not o.detach and not o.console_socket, start_message=True)
    try:
        c.chan.close()  # init goes on to its program by itself after "ready" (start_message)
        _started(o, c.st)
    except BaseException:
        _destroy(o.root, cid, c.st, force=True, mgr=c.mgr)
        raise
    if o.detach:
        return 0
    code = wait_child(c.pid, c.master)
    if not o.keep:
        _destroy(o.root, cid, c.st, force=True, mgr=c.mgr)
    return code


_FORWARD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
            signal.SIGWINCH)


def wait_child(pid: int, master: int | None) -> int:
    """Forward signals to pid, proxy its terminal if we hold the master, return its exit code."""
    import gc

    # GC was disabled for a fast start; this may run for days. Freeze what exists (the import graph)
    # first, or the first collection after enable() walks all of it (~1 ms of CPU per start).
    gc.freeze()
    gc.enable()
    def fwd(sig, _frame):
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    for s in _FORWARD:
        signal.signal(s, fwd)
    status = None

    def done() -> bool:
        nonlocal status
        if status is None:
            try:
                wp, ws = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return True
            if wp == pid:
                status = ws
        return status is not None

    if master is not None:
        from berth.runtime import tty

        tty.proxy(master, done)
        os.close(master)
    while status is None:
        try:
            wp, ws = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if wp == pid:
            status = ws
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


# -- queries and signals ---------------------------------------------------------------------------
def load_with_status(root: str, cid: str) -> tuple[dict, str]:
    st = state.load(root, cid)
    return st, state.status(root, st)


def pids(st: dict) -> list[int]:
    mgr = cgroup.for_state(st)
    if mgr is not None:
        return sorted(mgr.pids())
    return _pidns_members(st)


def _pidns_members(st: dict) -> list[int]:
    try:
        target = os.stat(f"/proc/{st['pid']}/ns/pid").st_ino
    except OSError:
        return []
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/pid").st_ino == target:
                    out.append(int(name))
            except OSError:
                pass
    return sorted(out)


def kill(cid: str, o: Options, sig: int, all_: bool = False) -> None:
    st, stat = load_with_status(o.root, cid)
    if stat in ("stopped", "creating"):
        raise Conflict(f"container not running: {cid}")
    if all_:
        mgr = cgroup.for_state(st)
        if mgr is not None:
            mgr.kill_all(sig)
            return
        for p in _pidns_members(st):
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        return
    pidfd = os.pidfd_open(st["pid"])
    try:
        if not procfs.alive(st["pid"], st.get("start_time")):
            raise Conflict(f"container not running: {cid}")
        signal.pidfd_send_signal(pidfd, sig)
    finally:
        os.close(pidfd)


def delete(cid: str, o: Options, force: bool = False) -> None:
    try:
        st, stat = load_with_status(o.root, cid)
    except NotFound:
        if force:
            return
        raise
    if stat == "creating":
        if not force:
            raise Conflict(f"container {cid} is still being created (use --force)")
        _remove_dir(os.path.join(o.root, cid))
        return
    if stat in ("running", "paused") and not force:
        raise Conflict(f"cannot delete container {cid} that is not stopped: {stat} (use --force)")
    _destroy(o.root, cid, st, force=True)


def _destroy(root: str, cid: str, st: dict, force: bool, mgr=None) -> None:
    if mgr is None:
        mgr = cgroup.for_state(st)
    pid, started = st.get("pid", 0), st.get("start_time")
    if procfs.alive(pid, started) and force:
        if mgr is not None:
            try:
                mgr.thaw()
            except Exception:
                pass
            mgr.kill_all(signal.SIGKILL)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        _wait_gone(pid, started)
    if mgr is not None:
        for _ in range(50):
            if not mgr.exists() or not mgr.pids():
                break
            mgr.kill_all(signal.SIGKILL)
            import time

            time.sleep(0.02)
        mgr.destroy()
    hk = (st.get("config") or {}).get("hooks") or {}
    if hk.get("poststop"):
        try:
            hooks.run_all(hk["poststop"], "poststop", state.hook_state(st, "stopped"))
        except BerthError:
            pass  # the spec: poststop failures are logged, not fatal
    _remove_dir(os.path.join(root, cid))


def pause(cid: str, o: Options) -> None:
    st, stat = load_with_status(o.root, cid)
    if stat != "running":
        raise Conflict(f"container not running: {cid} is {stat}, cannot pause it")
    cgroup.need(st, "pause").freeze()


def resume(cid: str, o: Options) -> None:
    st, stat = load_with_status(o.root, cid)
    if stat != "paused":
        raise Conflict(f"container not paused: {cid} is {stat}, cannot resume it")
    cgroup.need(st, "resume").thaw()


# -- exec ------------------------------------------------------------------------------------------
def exec_(cid: str, o: Options, proc: dict, ignore_paused: bool = False) -> int:
    st, stat = load_with_status(o.root, cid)
    if stat not in ("created", "running", "paused"):
        raise Conflict(f"cannot exec in a {stat} container")
    if stat == "paused" and not ignore_paused:
        raise Conflict(f"container {cid} is paused: resume it first (or --ignore-paused)")
    validate_process(proc, "process")
    terminal = bool(proc.get("terminal"))
    if terminal and not o.console_socket and o.detach:
        raise InvalidArgument("--tty with --detach needs --console-socket")
    if o.console_socket:
        from berth.runtime import tty

        tty.check_socket(o.console_socket)
    cfg = st.get("config") or {}
    bpf, sflags = seccomp_program.compile_for(cfg), seccomp_program.flags(cfg)
    pid = st["pid"]
    fds: dict[str, int] = {}
    ctx = mgr = None
    try:
        for t in NS_FLAGS:
            name = NS_PROC[t]
            try:
                theirs = os.stat(f"/proc/{pid}/ns/{name}").st_ino
                mine = os.stat(f"/proc/self/ns/{name}").st_ino
            except OSError:
                continue
            if theirs != mine:
                fds[t] = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        if not procfs.alive(pid, st.get("start_time")):
            raise Conflict(f"container not running: {cid}")
        ctx = Context(cid=cid, config=cfg, process=proc, bundle=st.get("bundle", ""), rootfs=st.get("rootfs", ""),
                      terminal=terminal, ns_fds=fds, bpf=bpf, seccomp_flags=sflags, is_exec=True,
                      preserve_fds=o.preserve_fds)
        from berth.runtime import process

        if not o.detach:
            from berth.linux import libc as L

            L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
        mgr = cgroup.for_state(st)
        if mgr is not None and mgr.exists():
            ctx.cgroup_fds = mgr.open_self_join()  # the child joins before it enters the namespaces
        child, chan = process.spawn_exec(ctx)
    finally:
        for fd in fds.values():
            os.close(fd)
        _close_all(ctx.cgroup_fds if ctx is not None else [])
    master = None
    try:
        if mgr is not None:
            mgr.apply(child, self_joined=bool(ctx.cgroup_fds))
        warm.stop()
        chan.send("joined")
        while True:
            msg, fd = chan.recv(with_fd=True)
            if msg is None:
                break  # execve closed the channel: the program runs
            if msg["type"] == "error":
                raise BerthError(msg["msg"])
            if msg["type"] == "console":
                master = _console(o, fd)
    except BaseException:
        try:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
        except OSError:
            pass
        raise
    finally:
        chan.close()
    if o.pid_file:
        _write_pid_file(o.pid_file, child)
    if o.detach:
        return 0
    return wait_child(child, master)
