"""Forking the container's init (and exec'd processes) from the runtime. Never re-execs.

Without a new user namespace: the runtime unshares (or joins) the pid and time namespaces for its
children only, forks init, and switches its own "for children" namespaces back.
With one: an intermediate child unshares the user namespace, the runtime writes its uid/gid maps,
then the intermediate enters pid/time, forks init, reports init's pid and exits.
"""

import os
import sys

from berth.linux import libc as L
from berth.runtime import trampoline, warm
from berth.runtime.channel import Channel
from berth.runtime.context import NS_FLAGS, Context


def _init():
    """berth.runtime.init, imported in the forked child: its modules load there (while the runtime
    moves it into its cgroup) instead of on the runtime's path before the fork."""
    from berth.runtime import init

    return init


def _flush() -> None:
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:
            pass


def _enter_for_children(ctx: Context) -> list[tuple[int, int]]:
    """Enter/unshare pid and time namespaces for our future children; -> what to restore."""
    restore = []
    if "time" in ctx.new_ns or "time" in ctx.join_ns or "time" in ctx.ns_fds:
        warm.wait()  # setns into a time namespace needs a single-threaded process
    for t in ("pid", "time"):
        flag = NS_FLAGS[t]
        path = ctx.join_ns.get(t)
        fd_ns = ctx.ns_fds.get(t)
        if path is None and fd_ns is None and t not in ctx.new_ns:
            continue
        own = os.open(f"/proc/self/ns/{t}", os.O_RDONLY | os.O_CLOEXEC)
        restore.append((own, flag))
        if fd_ns is not None:
            _setns(fd_ns, flag, f"{t} namespace of the container")
        elif path is not None:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd, flag, f"{t} namespace {path}")
            finally:
                os.close(fd)
        else:
            L.unshare(flag)
            if t == "time":
                _time_offsets(ctx)
    return restore


def _setns(fd: int, flag: int, what: str) -> None:
    """setns; a time namespace wants a single-threaded caller: give the warm-up thread time to end."""
    for _ in range(200):
        try:
            return L.setns(fd, flag, what)
        except OSError as e:
            if e.errno != 87:  # EUSERS: another thread still exists
                raise
            import time

            time.sleep(0.001)
    L.setns(fd, flag, what)


def _restore(restore: list[tuple[int, int]]) -> None:
    for fd, flag in restore:
        _setns(fd, flag, "the runtime's own namespace")
        os.close(fd)


def _time_offsets(ctx: Context) -> None:
    offs = (ctx.config.get("linux") or {}).get("timeOffsets") or {}
    lines = "".join(f"{k} {v.get('secs', 0)} {v.get('nanosecs', 0)}\n" for k, v in offs.items())
    if lines:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(lines)


def _trampoline(ctx: Context) -> None:
    if trampoline.available():
        ctx.tramp_fd = trampoline.memfd(3 + ctx.preserve_fds)


def _close_trampoline(ctx: Context) -> None:
    if ctx.tramp_fd is not None:
        os.close(ctx.tramp_fd)
        ctx.tramp_fd = None


def spawn_init(ctx: Context) -> tuple[int, Channel]:
    """Fork the container's init; it sets up, and waits for "joined" once it needs its cgroup.
    -> (host pid, channel)."""
    _trampoline(ctx)
    try:
        return _spawn_init(ctx)
    finally:
        _close_trampoline(ctx)


def _spawn_init(ctx: Context) -> tuple[int, Channel]:
    if not ctx.userns:
        return _fork_in_namespaces(ctx, lambda chan: _init().container_init(ctx, chan))
    ours, theirs = Channel.pair()
    _flush()
    mid = os.fork()
    if mid == 0:
        ours.close()
        _intermediate(ctx, theirs)
    theirs.close()
    try:
        msg = ours.expect("userns")
        if msg.get("new"):
            _write_maps(mid, ctx.config.get("linux") or {})
            ours.send("mapped")
        pid = ours.expect("pid")["pid"]
    finally:
        os.waitpid(mid, 0)
    return pid, ours


def _fork_in_namespaces(ctx: Context, child) -> tuple[int, Channel]:
    """Fork `child(channel)` into the pid/time namespaces of ctx (entered for children only, then
    left again); -> (pid, our end of the channel)."""
    ours, theirs = Channel.pair()
    _flush()
    restore = _enter_for_children(ctx)
    try:
        pid = os.fork()
        if pid == 0:
            ours.close()
            child(theirs)  # never returns: execve or os._exit
        _start_elsewhere(pid)
    finally:
        _restore(restore)
    theirs.close()
    return pid, ours


def _start_elsewhere(pid: int) -> None:
    """Let a just-forked child start at once on another CPU. The kernel queues it on our CPU, where it
    waits while we go on making its cgroup (2-3 ms measured here, the other CPU idle meanwhile).
    Pinning it elsewhere moves it to another CPU's queue; its own affinity (ours, inherited) is then
    given back at once, which leaves it where it is."""
    try:
        mask = os.sched_getaffinity(0)
        others = mask - {L.sched_getcpu()}
        if not others or len(others) == len(mask):
            return
        os.sched_setaffinity(pid, others)
        os.sched_setaffinity(pid, mask)
    except OSError:
        pass  # e.g. the child has already exited: nothing to speed up


def _intermediate(ctx: Context, chan: Channel):
    try:
        L.prctl(L.PR_SET_DUMPABLE, 0)
        path = ctx.join_ns.get("user")
        if path is not None:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            L.setns(fd, L.CLONE_NEWUSER, f"user namespace {path}")
            os.close(fd)
            chan.send("userns", new=False)
        else:
            L.unshare(L.CLONE_NEWUSER)
            chan.send("userns", new=True)
            chan.expect("mapped")
        try:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        except OSError:
            pass  # container root is not mapped: stay who we are
        _enter_for_children(ctx)
        pid = os.fork()
        if pid == 0:
            _init().container_init(ctx, chan)
        chan.send("pid", pid=pid)
    except BaseException as e:
        try:
            chan.send("error", msg=_init()._message(e))
        finally:
            os._exit(1)
    os._exit(0)


def _write_maps(pid: int, linux: dict) -> None:
    for kind in ("uid", "gid"):
        maps = linux.get(f"{kind}Mappings") or []
        text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
        try:
            with open(f"/proc/{pid}/{kind}_map", "w") as f:
                f.write(text)
        except OSError as e:
            raise OSError(e.errno, f"linux.{kind}Mappings: writing {kind}_map: {e.strerror}") from None


def spawn_exec(ctx: Context) -> tuple[int, Channel]:
    """Fork a process that joins the container (its pid namespace entered through us)."""
    _trampoline(ctx)
    try:
        return _fork_in_namespaces(ctx, lambda chan: _init().exec_child(ctx, chan))
    finally:
        _close_trampoline(ctx)
