"""Start the RCU grace period a cgroup migration waits for while we are still importing.

Moving a process into a cgroup takes the kernel's cgroup_threadgroup_rwsem for writing; the first
writer after a quiet spell waits for an RCU grace period (5-10 ms here), later ones within about one
grace period are fast. A thread writes our own pid into the cgroup we are already in (a no-op move)
at start-up, so the grace period passes while the interpreter imports, and the container's real
migration right after fork is fast. The thread is finished before any fork.
"""

import _thread
import os

_done = None


def _warm(lock) -> None:
    try:
        with open("/proc/self/cgroup", "rb") as f:
            lines = f.read().decode().splitlines()
        for line in lines:
            _h, ctrl, path = line.split(":", 2)
            base = "/sys/fs/cgroup" if not ctrl else "/sys/fs/cgroup/" + ctrl.split(",")[0].removeprefix("name=")
            try:
                fd = os.open(base + path.rstrip("/") + "/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                os.write(fd, str(os.getpid()).encode())
                return
            except OSError:
                continue
            finally:
                os.close(fd)
    except Exception:
        pass
    finally:
        lock.release()


def start() -> None:
    global _done
    if _done is None:
        _done = _thread.allocate_lock()
        _done.acquire()
        try:
            _thread.start_new_thread(_warm, (_done,))
        except RuntimeError:
            _done.release()


def wait() -> None:
    """Call before fork: the warming thread must not be running then."""
    if _done is not None:
        _done.acquire()
        _done.release()
