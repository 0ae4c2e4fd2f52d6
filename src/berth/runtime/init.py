"""Code that runs in the forked children: the container's init, and a process joining it (exec).

Neither ever returns: each ends in execve or os._exit. Failures go back to the runtime as an
{"type": "error"} message so `create`/`exec` can report them and clean up.
"""

import os

from berth.linux import caps as C
from berth.linux import libc as L
from berth.oci.runtime_spec import RLIMITS
from berth.runtime import devices, hooks, seccomp_program, trampoline, tty
from berth.runtime.channel import Channel
from berth.runtime.context import NS_FLAGS, Context

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.filename}: {e.strerror}"
    if isinstance(e, OSError) and e.strerror and len(e.args) == 2:
        return str(e.args[1])
    return str(e) or type(e).__name__


def _join_cgroups(ctx: Context) -> None:
    """Move ourselves (one thread, so the whole process) into the cgroup v1 hierarchies whose `tasks`
    files the runtime opened: "0" there skips the RCU grace period a move by pid waits for."""
    for fd in ctx.cgroup_fds:
        try:
            os.write(fd, b"0")
        except OSError as e:
            raise OSError(e.errno, f"joining the container's cgroup ({os.readlink(f'/proc/self/fd/{fd}')}): "
                                   f"{e.strerror}") from None
        os.close(fd)
    ctx.cgroup_fds = []


def container_init(ctx: Context, chan: Channel):
    try:
        L.prctl(L.PR_SET_DUMPABLE, 0)
        _init_setup(ctx, chan)
    except BaseException as e:
        try:
            chan.send("error", msg=_message(e))
        finally:
            os._exit(1)
    os._exit(1)


def _init_setup(ctx: Context, chan: Channel) -> None:
    cfg = ctx.config
    linux = cfg.get("linux") or {}
    # Join namespaces given by path, then create the new ones (pid, time and user were done before fork).
    for t, path in ctx.join_ns.items():
        if t in ("pid", "time", "user"):
            continue
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            L.setns(fd, NS_FLAGS[t], f"{t} namespace {path}")
        finally:
            os.close(fd)
    joined: list = []
    limited: list = []

    def limits() -> None:
        """Wait until the runtime has written the cgroup limits (device rules included)."""
        if not limited:
            cgroups()
            msg = chan.expect("limited")
            if msg.get("bpf"):
                ctx.bpf = bytes.fromhex(msg["bpf"])  # compiled by the runtime meanwhile (user namespace)
            if ctx.bpf:
                import berth.seccomp.loader  # noqa: F401  (loaded after pivot_root: import it while we can)
            limited.append(True)

    def cgroups() -> tuple[str, list | None]:
        """Wait until the runtime has put us in our cgroup ("joined", which also brings the OCI state
        for hooks and the host's cgroup hierarchies); -> (/proc/self/cgroup as the host sees it, the
        hierarchies or None). Only then is the cgroup namespace created (it would show "/")."""
        if not joined:
            if seccomp_program.compiled_by_init(ctx.userns):
                ctx.bpf = seccomp_program.compile_for(cfg)  # meanwhile, the runtime makes our cgroup
            msg, ctx.cgroup_fds = chan.expect_fds("joined")
            _join_cgroups(ctx)
            with open("/proc/self/cgroup") as f:
                joined.extend([f.read(), msg["state"], msg.get("hierarchies")])
            if "cgroup" in ctx.new_ns:
                L.unshare(L.CLONE_NEWCGROUP)
        return joined[0], joined[2]

    flags = 0
    for t in ctx.new_ns:
        if t not in ("pid", "time", "user", "cgroup"):
            flags |= NS_FLAGS[t]
    if flags:
        L.unshare(flags)
    if "network" in ctx.new_ns:
        L.link_up("lo")  # as runc: a new network namespace has its loopback up
    if "uts" in ctx.new_ns or "uts" in ctx.join_ns:
        if cfg.get("hostname"):
            L.sethostname(cfg["hostname"])
        if cfg.get("domainname"):
            L.setdomainname(cfg["domainname"])
    if ctx.new_keyring:
        try:
            L.join_session_keyring("_ses." + ctx.cid)
        except OSError:
            pass  # keyrings disabled (ENOSYS) or over quota in a user namespace: keep the inherited one
    own_mnt = "mount" in ctx.new_ns
    root = None
    if root is None:  # also without a mount namespace of its own: runc sets up the rootfs and chroots there
        from berth.runtime.rootfs import Rootfs

        root = Rootfs(ctx.rootfs, ctx.bundle, ctx.userns, cgroups)
        root.prepare(linux.get("rootfsPropagation"))
        root.mount_all(cfg.get("mounts") or [])
        if not root.dev_bound:
            limits()  # mknod is checked against the device rules: not while they are being written
            devices.create_all(ctx.rootfs, linux.get("devices") or [], ctx.userns)
            devices.symlinks(ctx.rootfs)
    limits()  # from here on, resources are limited and accounted
    state = joined[1]
    hk = cfg.get("hooks") or {}
    if hk.get("prestart") or hk.get("createRuntime"):
        chan.send("hooks")
        chan.expect("hooks_done")
    if hk.get("createContainer"):
        hooks.run_all(hk["createContainer"], "createContainer", state)
    fifo_fd = os.open(ctx.fifo, os.O_PATH | os.O_CLOEXEC)
    if root is not None:
        root.pivot(ctx.no_pivot, chroot_only=not own_mnt)
        _make_cwd(ctx.process.get("cwd"))
    else:
        os.chdir("/")
    p = ctx.process
    if ctx.terminal:
        master, slave, name = tty.open_pty()
        if own_mnt:
            if not os.path.lexists("/dev/console"):
                os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            L.mount(name, "/dev/console", None, L.MS_BIND)
        size = p.get("consoleSize") or {}
        tty.set_size(master, size.get("height", 0), size.get("width", 0))
        chan.send("console", fd=master)
        os.close(master)
        tty.make_controlling(slave)
        os.close(slave)
    else:
        os.setsid()
    if own_mnt:
        from berth.runtime import rootfs as R

        if linux.get("sysctl"):
            R.write_sysctl(linux["sysctl"])
        if (cfg.get("root") or {}).get("readonly"):
            R.readonly_root()
        R.readonly_paths(linux.get("readonlyPaths") or [])
        R.mask_paths(linux.get("maskedPaths") or [])
    elif linux.get("sysctl"):
        from berth.runtime.rootfs import write_sysctl

        write_sysctl(linux["sysctl"])
    pers = linux.get("personality")
    if pers:
        dom = pers.get("domain", "LINUX")
        if dom not in ("LINUX", "LINUX32"):
            raise OSError(22, f"linux.personality.domain: unknown domain {dom!r} (LINUX or LINUX32)")
        L.personality(L.PER_LINUX32 if dom == "LINUX32" else L.PER_LINUX)
    path, env, tramp = _prepare_process(ctx, p)
    chan.send("ready")
    if ctx.start_message:
        # `run`: nothing left to wait for (no exec.fifo, no "start" message: two wake-ups less). The
        # runtime records the state while the program starts; hooks ran or run in order regardless.
        pass
    else:
        # Wait for `start`: opening the fifo for writing blocks until start opens it for reading.
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, b"0")
        os.close(fd)
    chan.close()
    os.close(fifo_fd)
    if hk.get("startContainer"):
        try:
            hooks.run_all(hk["startContainer"], "startContainer", dict(state, status="running"))
        except Exception as e:
            os.write(2, f"berth-runtime: {e}\n".encode())
            os._exit(1)
    _exec(ctx, p, path, env, tramp)


def _make_cwd(cwd: str | None) -> None:
    """As runc: a missing process.cwd is created (root-owned, 0755) before the user is switched. After
    pivot_root the path resolves inside the container's root only, symlinks and ".." included."""
    if not cwd or os.path.isdir(cwd):
        return
    old = os.umask(0o022)
    try:
        os.makedirs(cwd, 0o755, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"process.cwd {cwd}: cannot create it: {e.strerror}") from None
    finally:
        os.umask(old)


def exec_child(ctx: Context, chan: Channel):
    try:
        _join_cgroups(ctx)
        L.prctl(L.PR_SET_DUMPABLE, 0)
        # Join the container: user namespace last, since it takes away our rights in the host's.
        for t in ("ipc", "uts", "network", "cgroup", "mount", "user"):
            fd = ctx.ns_fds.get(t)
            if fd is not None:
                L.setns(fd, NS_FLAGS[t], f"{t} namespace of the container")
        for fd in ctx.ns_fds.values():
            os.close(fd)
        if "mount" not in ctx.ns_fds:
            os.chdir("/")
        p = ctx.process
        if ctx.terminal:
            master, slave, _name = tty.open_pty()
            size = p.get("consoleSize") or {}
            tty.set_size(master, size.get("height", 0), size.get("width", 0))
            chan.send("console", fd=master)
            os.close(master)
            tty.make_controlling(slave)
            os.close(slave)
        else:
            os.setsid()  # as runc: its own session and process group, not the caller's
        chan.expect("joined")  # the runtime has put us in the container's cgroup (v2: by pid)
        path, env, tramp = _prepare_process(ctx, p)
        chan.close()
        _exec(ctx, p, path, env, tramp)
    except BaseException as e:
        try:
            chan.send("error", msg=_message(e))
        finally:
            os._exit(1)
    os._exit(1)


def _prepare_process(ctx: Context, p: dict) -> tuple[str, dict, int | None]:
    """rlimits, executable lookup, cwd, no_new_privs, user and capabilities: everything that can fail."""
    for i, r in enumerate(p.get("rlimits") or ()):
        try:
            L.setrlimit(RLIMITS[r["type"]], r["soft"], r["hard"])
        except OSError as e:
            cur = L.getrlimit(RLIMITS[r["type"]])
            raise OSError(e.errno, f"process.rlimits[{i}] ({r['type']} soft={r['soft']} hard={r['hard']}): "
                          f"cannot set: {os.strerror(e.errno)} (current hard limit {cur[1]}; "
                          "raising it needs CAP_SYS_RESOURCE)") from None
    env = {}
    for e in p.get("env") or ():
        k, _, v = e.partition("=")
        env[k] = v
    user = p.get("user") or {}
    uid = user.get("uid", 0) or 0
    gid = user.get("gid", 0) or 0
    try:
        os.chdir(p.get("cwd") or "/")
    except OSError as e:
        raise OSError(e.errno, f"process.cwd {p.get('cwd')}: {e.strerror}") from None
    # CVE-2024-21626: the working directory must be inside the container's root.
    try:
        if not os.getcwd().startswith("/"):
            raise OSError(1, "process.cwd is outside the container")
    except FileNotFoundError:
        raise OSError(1, "process.cwd is outside the container") from None
    if "HOME" not in env:
        env["HOME"] = _home(uid)
    path = _lookpath(p["args"][0], env)
    tramp = ctx.tramp_fd
    nnp = bool(p.get("noNewPrivileges"))
    if nnp:
        L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
    elif ctx.bpf:
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before dropping capabilities.
        _load_seccomp(ctx)
    capabilities = p.get("capabilities")
    if capabilities is not None:
        C.drop_bounding(C.mask(capabilities.get("bounding")))
        L.prctl(L.PR_SET_KEEPCAPS, 1)
    try:
        os.setgroups(user.get("additionalGids") or [])
    except OSError:
        if user.get("additionalGids"):
            raise
    _chown_stdio(uid)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if capabilities is not None:
        L.prctl(L.PR_SET_KEEPCAPS, 0)
        C.apply(C.mask(capabilities.get("effective")), C.mask(capabilities.get("permitted")),
                C.mask(capabilities.get("inheritable")), C.mask(capabilities.get("ambient")))
    os.umask(user["umask"] if user.get("umask") is not None else 0o022)
    return path, env, tramp


def _chown_stdio(uid: int) -> None:
    """As runc: stdio pipes and sockets made by the caller (root) become the container user's, so that a
    non-root process can reopen /proc/self/fd/0..2 (/dev/stdout). Only the owner changes; files and
    devices are left alone. Where the kernel refuses (unmapped ids in a user namespace), leave it."""
    import stat

    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
            if st.st_uid != uid and (stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode)):
                os.fchown(fd, uid, -1)
        except OSError:
            pass  # closed, or EINVAL/EPERM: not worth failing the start over


def _load_seccomp(ctx: Context) -> None:
    from berth.seccomp import load_bpf

    load_bpf(ctx.bpf, ctx.seccomp_flags)
    ctx.bpf = None


def _exec(ctx: Context, p: dict, path: str, env: dict, tramp: int | None):
    for fd in range(3, 3 + ctx.preserve_fds):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    L.close_range_cloexec(3 + ctx.preserve_fds)
    try:
        if ctx.bpf and p.get("noNewPrivileges"):
            _load_seccomp(ctx)
        trampoline.execve(tramp, path, p["args"], env)
    except BaseException as e:
        os.write(2, f"berth-runtime: exec {p['args'][0]}: {_message(e)}\n".encode())
    os._exit(127)


def _lookpath(name: str, env: dict) -> str:
    if "/" in name:
        if os.access(name, os.X_OK) and not os.path.isdir(name):
            return name
        raise OSError(2, f'exec: "{name}": {"permission denied" if os.path.exists(name) else "no such file or directory"}')
    for d in (env.get("PATH") or DEFAULT_PATH).split(":"):
        cand = (d or ".") + "/" + name
        if os.access(cand, os.X_OK) and not os.path.isdir(cand):
            return cand
    raise OSError(2, f'exec: "{name}": executable file not found in $PATH')


def _home(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"
