"""Keep the cgroup v2 migration fast: hold the kernel's migration lock "warm" until the container has moved.

(cgroup v1 needs none of this: the container's process writes itself into v1 `tasks` files, a
single-thread move that does not take the lock; see Manager.open_self_join.) Moving a process into a
cgroup by pid takes the kernel's cgroup_threadgroup_rwsem for writing; a writer that
comes after a quiet spell waits for an RCU grace period (5-12 ms here), a writer within about one grace
period of the previous one is fast. A thread writes our own pid into the cgroup we are already in (a
no-op move) at start-up, so the first grace period runs while the interpreter imports, then repeats
the no-op every 2 ms until the runtime has moved the container (stop()), so the real migration after
fork never pays a grace period of its own (measured: one shot alone missed the window, and the
container's move then waited 12 ms). It gives up after 0.5 s.

The thread may still be inside os.write when the runtime forks: it holds no Python lock then (the GIL
is released around the call), the child has only the forking thread, and the fd it writes is
close-on-exec. The kernel does not hold up fork meanwhile: cgroup_threadgroup_rwsem blocks readers
only once the writer has its grace period.
"""

import _thread
import os
import time

_done = None  # a lock held while the thread runs
_stop = False
_PERIOD = 0.002
_LIMIT = 0.5


def _candidates() -> list[str]:
    """cgroup.procs of our cgroup in the cgroup2 hierarchy (pure v2, or a hybrid host's unified mount):
    only there does the runtime move the container by pid (cgroup v1 joins go through `tasks`)."""
    with open("/proc/self/cgroup", "rb") as f:
        lines = f.read().decode().splitlines()
    for line in lines:
        if line.startswith("0::"):
            path = line[3:].rstrip("/")
            return [f"/sys/fs/cgroup{path}/cgroup.procs", f"/sys/fs/cgroup/unified{path}/cgroup.procs"]
    return []


def _open(paths: list[str]) -> int | None:
    while paths:
        try:
            return os.open(paths.pop(0), os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
    return None


def _warm(lock, started, fd: int | None, rest: list[str], pid: bytes) -> None:
    try:
        started.release()
        while fd is not None:  # the first write waits for the grace period
            try:
                os.write(fd, pid)
                break
            except OSError:
                os.close(fd)
                fd = _open(rest)
        if fd is None:
            return
        end = time.monotonic() + _LIMIT
        while not _stop and time.monotonic() < end:
            time.sleep(_PERIOD)
            os.write(fd, pid)
    except Exception:
        pass
    finally:
        if fd is not None:
            os.close(fd)
        lock.release()


def start() -> None:
    global _done
    if _done is None:
        # The files are opened here, so the thread needs the GIL only once before its first write
        # (each GIL hand-over can wait for the importing main thread: that delayed the write ~5 ms).
        try:
            paths = _candidates()
        except Exception:
            return
        fd = _open(paths)
        if fd is None:
            return
        _done = _thread.allocate_lock()
        _done.acquire()
        started = _thread.allocate_lock()
        started.acquire()
        try:
            _thread.start_new_thread(_warm, (_done, started, fd, paths, str(os.getpid()).encode()))
        except RuntimeError:
            os.close(fd)
            _done.release()
            return
        # Hand the GIL over until the thread is at its write (else it waits for the importing main
        # thread to let go: ~2 ms later); bounded, in case the thread is slow to be scheduled.
        started.acquire(True, 0.002)


def stop() -> None:
    """The container has moved (or has no cgroup): no more no-op moves."""
    global _stop
    _stop = True


def wait() -> None:
    """Stop the thread and wait for its end (before calls that need a single-threaded process: setns
    into a time or user namespace)."""
    stop()
    if _done is not None:
        _done.acquire()
        _done.release()
        # The thread releases the lock just before it exits: let it finish.
        for _ in range(100):
            if _thread._count() == 0:
                break
            time.sleep(0.0005)
