"""Where the cgroup hierarchies are: /proc/self/mountinfo and /proc/<pid>/cgroup, never hard-coded."""

import os

from berth import errors
from berth.linux.mountinfo import unescape as _unescape


class Hierarchy:
    """One mounted cgroup hierarchy. A plain class: dataclasses/typing cost ~10 ms to import, and
    this sits on the container-start path."""

    __slots__ = ("mountpoint", "root", "controllers", "version")

    def __init__(self, mountpoint: str, root: str, controllers: frozenset[str], version: int):
        self.mountpoint = mountpoint        # e.g. /sys/fs/cgroup/memory
        self.root = root                    # the cgroup the mount shows at its top (mountinfo field 4)
        self.controllers = controllers      # v1: {"memory"}, {"cpu", "cpuacct"}, {"name=systemd"}; v2: {}
        self.version = version              # 1 or 2

    def _key(self) -> tuple:
        return (self.mountpoint, self.root, self.controllers, self.version)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hierarchy) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Hierarchy({self.mountpoint!r}, v{self.version}, {sorted(self.controllers)})"

    def dir_of(self, cgroup: str) -> str:
        """Filesystem directory of an absolute cgroup path in this hierarchy."""
        rel = cgroup
        if self.root != "/" and (cgroup == self.root or cgroup.startswith(self.root + "/")):
            rel = cgroup[len(self.root):]
        return os.path.join(self.mountpoint, rel.lstrip("/")).rstrip("/") or "/"


def _known_subsystems() -> set[str]:
    try:
        with open("/proc/cgroups") as f:
            return {line.split()[0] for line in f if line.strip() and not line.startswith("#")}
    except OSError:
        return set()


def parse_mountinfo(text: str, subsystems: set[str] | None = None) -> list[Hierarchy]:
    """Every cgroup/cgroup2 mount, first mount of each hierarchy wins (bind mounts are skipped)."""
    subsystems = _known_subsystems() if subsystems is None else subsystems
    seen: set[str] = set()
    out: list[Hierarchy] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype, superopts = rfields[0], rfields[2]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        dev = fields[2]
        if dev in seen:
            continue
        seen.add(dev)
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        if fstype == "cgroup2":
            out.append(Hierarchy(mountpoint, root, frozenset(), 2))
            continue
        ctls = frozenset(
            o for o in superopts.split(",") if o in subsystems or o.startswith("name=")
        )
        out.append(Hierarchy(mountpoint, root, ctls, 1))
    return out


def hierarchies() -> list[Hierarchy]:
    with open("/proc/self/mountinfo") as f:
        return parse_mountinfo(f.read())


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup -> {controller: path}; the v2 entry is under key ""."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctls, path = parts
        if not ctls:
            out[""] = path
            continue
        for c in ctls.split(","):
            out[c] = path
    return out


def own_cgroups(pid: int | str = "self") -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return parse_proc_cgroup(f.read())
    except FileNotFoundError:
        raise errors.NotFound(f"process {pid} does not exist (reading /proc/{pid}/cgroup)")


def unified_controllers(h: Hierarchy) -> set[str]:
    """Controllers available at the top of a cgroup2 mount."""
    try:
        with open(os.path.join(h.mountpoint, "cgroup.controllers")) as f:
            return set(f.read().split())
    except OSError:
        return set()
