"""Start the RCU grace period a cgroup migration waits for while we are still importing.

Moving a process into a cgroup takes the kernel's cgroup_threadgroup_rwsem for writing; the first
writer after a quiet spell waits for an RCU grace period (5-10 ms here), later ones within about one
grace period are fast. A thread writes our own pid into the cgroup we are already in (a no-op move)
at start-up, so the grace period runs while the interpreter imports, and the container's real
migration after fork waits only for what is left of it.

The thread may still be inside os.write when the runtime forks: it holds no Python lock then (the GIL
is released around the call), the child has only the forking thread, and the fd it writes is
close-on-exec. The kernel does not hold up fork meanwhile: cgroup_threadgroup_rwsem blocks readers
only once the writer has its grace period.
"""

import _thread
import os

_done = None  # a lock held while the thread runs


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
    """Before calls that need a single-threaded process (setns into a time or user namespace)."""
    if _done is not None:
        _done.acquire()
        _done.release()
        # The thread releases the lock just before it exits: let it finish.
        import time

        for _ in range(100):
            if _thread._count() == 0:
                break
            time.sleep(0.0005)
