"""What every cgroup manager offers (the contract in docs/architecture.md), plus shared helpers."""

import os
import time
from abc import ABC, abstractmethod

from berth import errors

from . import fs
from .fs import SIGKILL


class Manager(ABC):
    path: str                       # the cgroupsPath as resolved (absolute, in the main hierarchy)
    version: str                    # "v1", "v2" or "hybrid"

    @abstractmethod
    def apply(self, pid: int, self_joined: bool = False) -> None:
        """Create the cgroup and move `pid` in. self_joined: the process has already written itself
        into the files of open_self_join(); only the hierarchies those do not cover remain."""

    @abstractmethod
    def create(self) -> list[str]:
        """Make the directories; -> the ones this call created."""

    def open_self_join(self) -> list[int]:
        """Write-only fds (close-on-exec) of the files a single-threaded process writes "0" into to move
        itself: cgroup v1 `tasks`. A single-thread move skips the kernel's threadgroup lock, whose
        writer waits for an RCU grace period (5-13 ms here); cgroup.procs and cgroup v2 always take it.
        The directories must exist (create())."""
        return []
    @abstractmethod
    def set(self, resources: dict) -> None: ...
    @abstractmethod
    def freeze(self) -> None: ...
    @abstractmethod
    def thaw(self) -> None: ...
    @abstractmethod
    def frozen(self) -> bool: ...
    @abstractmethod
    def stats(self) -> dict: ...
    @abstractmethod
    def pids(self) -> list[int]: ...
    @abstractmethod
    def oom_kill_count(self) -> int: ...
    @abstractmethod
    def exists(self) -> bool: ...
    @abstractmethod
    def dirs(self) -> dict[str, str]:
        """Every directory this manager owns: {hierarchy mountpoint: cgroup directory}."""

    @abstractmethod
    def hierarchies(self) -> list:
        """The mounted hierarchies (berth.cgroups.mounts.Hierarchy) this manager's cgroup lives in."""

    @abstractmethod
    def dir_for(self, controller: str) -> str | None:
        """The directory holding `controller`'s files ("memory", "cpu", ...); v2: the one cgroup dir."""

    @abstractmethod
    def state(self) -> dict:
        """JSON-able record for state.json; `berth.cgroups.from_state` rebuilds the manager from it."""

    def kill_all(self, sig: int) -> None:
        """Signal every process; for SIGKILL repeat until the cgroup is empty (a forking process races)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            if sig != SIGKILL:
                return
            time.sleep(0.005)
        raise errors.SystemError_(f"processes keep appearing in cgroup {self.path} while killing them")

    def destroy(self) -> None:
        """Remove every directory (deepest first), retrying while exiting tasks go away; idempotent."""
        for top in self.dirs().values():
            if not os.path.isdir(top):
                continue
            subdirs = [d for d, _, _ in os.walk(top)]
            for d in sorted(subdirs, key=len, reverse=True):
                try:
                    fs.rmdir_retry(d)
                except errors.SystemError_:
                    left = fs.read_pids(os.path.join(d, "cgroup.procs"))
                    if left:
                        raise errors.Conflict(
                            f"cgroup {d} still holds processes {left[:10]}: kill them before destroying it"
                        )
                    raise

    def docker_stats(self) -> dict:
        from .stats import to_docker

        return to_docker(self.stats(), self.version)


def wait_until(cond, what: str, timeout: float = 10.0) -> None:
    delay = 0.001
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise errors.SystemError_(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def walk_pids(top: str) -> list[int]:
    out: list[int] = []
    for d, _, _ in os.walk(top):
        out.extend(fs.read_pids(os.path.join(d, "cgroup.procs")))
    return sorted(set(out))


def write_procs(d: str, pid: int) -> None:
    try:
        fs.write(os.path.join(d, "cgroup.procs"), pid)
    except (errors.SystemError_, errors.InvalidArgument) as e:
        if not os.path.exists(f"/proc/{pid}"):
            raise errors.NotFound(f"process {pid} does not exist (moving it into {d})")
        raise errors.SystemError_(str(e))


def undo_created(made: list[str]) -> None:
    """Best-effort removal of cgroup directories a failed apply created (still empty ones only)."""
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            pass
