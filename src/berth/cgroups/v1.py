"""cgroup v1 manager: one directory per mounted hierarchy; on hybrid hosts also the unified cgroup."""

import errno
import os

from berth import errors

from . import fs
from .base import Manager, undo_created, wait_until, walk_pids, write_procs
from .fs import SIGKILL
from .mounts import Hierarchy

TYPE_CHECKING = False  # typing costs milliseconds to import on the container-start path
if TYPE_CHECKING:
    from .v2 import V2Manager


class V1Manager(Manager):
    def __init__(self, path: str, dirs: dict[Hierarchy, str], unified: "V2Manager | None" = None):
        self.path = path
        self._dirs = dirs                       # hierarchy -> cgroup directory
        self.unified = unified                  # hybrid: the same cgroup in the cgroup2 mount
        self.version = "hybrid" if unified is not None else "v1"
        self.ctl: dict[str, str] = {}           # controller -> directory
        for h, d in dirs.items():
            for c in h.controllers:
                self.ctl[c] = d

    def dirs(self) -> dict[str, str]:
        out = {h.mountpoint: d for h, d in self._dirs.items()}
        if self.unified is not None:
            out.update(self.unified.dirs())
        return out

    def hierarchies(self) -> list[Hierarchy]:
        return list(self._dirs) + (self.unified.hierarchies() if self.unified is not None else [])

    def dir_for(self, controller: str) -> str | None:
        if controller in self.ctl:
            return self.ctl[controller]
        return self.unified.dir if self.unified is not None else None

    def state(self) -> dict:
        return {"version": self.version, "path": self.path, "dirs": self.dirs()}

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.dirs().values())

    # -- creation -------------------------------------------------------------------------------
    def create(self) -> list[str]:
        """Make the directories; returns the ones this call created (apply undoes those on failure)."""
        made: list[str] = []
        for h, d in self._dirs.items():
            if not os.path.isdir(d):
                made.append(d)
            try:
                os.makedirs(d, 0o755, exist_ok=True)
            except OSError as e:
                undo_created(made)
                raise errors.SystemError_(f"cannot create cgroup {d}: {e.strerror}")
            if "cpuset" in h.controllers:
                _init_cpuset(h.mountpoint, d)
        if self.unified is not None:
            made += self.unified.create()
        return made

    def open_self_join(self) -> list[int]:
        fds: list[int] = []
        try:
            for d in self._dirs.values():
                fds.append(os.open(os.path.join(d, "tasks"), os.O_WRONLY | os.O_CLOEXEC))
        except OSError as e:
            for fd in fds:
                os.close(fd)
            raise errors.SystemError_(f"cannot open {d}/tasks: {e.strerror}")
        return fds

    def apply(self, pid: int, self_joined: bool = False) -> None:
        made = [] if self_joined else self.create()  # self-joined: create() came before open_self_join()
        try:
            if not self_joined:
                for d in self._dirs.values():
                    write_procs(d, pid)
            if self.unified is not None:
                write_procs(self.unified.dir, pid)
        except errors.BerthError:
            undo_created(made)
            raise

    # -- resources -------------------------------------------------------------------------------
    def _file(self, ctl: str, name: str, what: str) -> str:
        d = self.ctl.get(ctl)
        if d is None:
            raise errors.Unsupported(f"{what} needs the cgroup v1 {ctl} controller, which is not mounted")
        return os.path.join(d, name)

    def _w(self, ctl: str, name: str, value: str | int, what: str) -> None:
        fs.write(self._file(ctl, name, what), value, what)

    def set(self, resources: dict) -> None:
        r = resources or {}
        if not self.exists():
            self.create()       # limits may be set before the first process is moved in
        self.set_memory(r.get("memory") or {})
        self.set_cpu(r.get("cpu") or {})
        pids = r.get("pids") or {}
        if pids.get("limit"):
            lim = pids["limit"]
            self._w("pids", "pids.max", "max" if lim < 0 else lim, "linux.resources.pids.limit")
        self.set_blkio(r.get("blockIO") or {})
        if r.get("devices") is not None:
            self.set_devices(r["devices"])
        hp = r.get("hugepageLimits") or []
        if hp:
            if "hugetlb" in self.ctl:
                for h in hp:
                    size = h.get("pageSize")
                    if not size or "/" in size:
                        raise errors.InvalidArgument(f"linux.resources.hugepageLimits: bad pageSize {size!r}")
                    self._w("hugetlb", f"hugetlb.{size}.limit_in_bytes", h.get("limit", 0),
                            "linux.resources.hugepageLimits")
            elif self.unified is not None:
                self.unified.set_hugetlb(hp)
            else:
                raise errors.Unsupported("linux.resources.hugepageLimits: no hugetlb controller is mounted")
        net = r.get("network") or {}
        if net.get("classID") is not None:
            self._w("net_cls", "net_cls.classid", net["classID"], "linux.resources.network.classID")
        for prio in net.get("priorities") or []:
            self._w("net_prio", "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}",
                    "linux.resources.network.priorities")
        if r.get("rdma"):
            for dev, lim in r["rdma"].items():
                val = " ".join(f"{n}={lim[k]}" for k, n in (("hcaHandles", "hca_handle"),
                                                             ("hcaObjects", "hca_object"))
                               if lim.get(k) is not None)
                self._w("rdma", "rdma.max", f"{dev} {val}", "linux.resources.rdma")
        unified = r.get("unified") or {}
        if unified:
            if self.unified is None:
                raise errors.Unsupported(
                    f"linux.resources.unified ({', '.join(unified)}) needs cgroup v2; this host has only v1")
            self.unified.set_unified(unified)

    def set_memory(self, m: dict) -> None:
        limit, swap = m.get("limit"), m.get("swap")
        what = "linux.resources.memory"
        if swap and swap != -1 and limit and limit != -1 and swap < limit:
            raise errors.InvalidArgument(
                f"linux.resources.memory.swap={swap} must be >= memory.limit={limit} (it is memory+swap)")
        memsw_present = "memory" in self.ctl and os.path.exists(
            self._file("memory", "memory.memsw.limit_in_bytes", what))
        if swap and not memsw_present:
            if swap != -1:
                raise errors.Unsupported(
                    f"linux.resources.memory.swap={swap} needs swap accounting, but "
                    f"memory.memsw.limit_in_bytes does not exist in {self.ctl.get('memory')} "
                    "(kernel booted without swapaccount / CONFIG_MEMCG_SWAP)")
            swap = None
        # memsw must stay >= the memory limit at every step: the order depends on growing or shrinking
        if limit and swap:
            new_sw = swap if swap > 0 else -1
            try:
                self._w("memory", "memory.limit_in_bytes", limit, what + ".limit")
            except errors.InvalidArgument:
                # the new limit is above the current memsw limit: raise memsw first
                self._w("memory", "memory.memsw.limit_in_bytes", new_sw, what + ".swap")
                self._w("memory", "memory.limit_in_bytes", limit, what + ".limit")
            else:
                self._w("memory", "memory.memsw.limit_in_bytes", new_sw, what + ".swap")
        elif limit:
            try:
                self._w("memory", "memory.limit_in_bytes", limit, what + ".limit")
            except errors.InvalidArgument:
                if not memsw_present:
                    raise
                # raising the limit above an existing memsw limit: raise memsw along with it
                self._w("memory", "memory.memsw.limit_in_bytes", limit, what + ".swap")
                self._w("memory", "memory.limit_in_bytes", limit, what + ".limit")
        elif swap:
            self._w("memory", "memory.memsw.limit_in_bytes", swap, what + ".swap")
        if m.get("reservation"):
            self._w("memory", "memory.soft_limit_in_bytes", m["reservation"], what + ".reservation")
        if m.get("swappiness") is not None and 0 <= m["swappiness"] <= 100:
            self._w("memory", "memory.swappiness", m["swappiness"], what + ".swappiness")
        elif m.get("swappiness") is not None and m["swappiness"] != -1:
            raise errors.InvalidArgument(f"{what}.swappiness={m['swappiness']} must be 0..100")
        if m.get("disableOOMKiller"):
            self._w("memory", "memory.oom_control", "1", what + ".disableOOMKiller")
        # kernel and kernelTCP limits are deprecated in the kernel and ignored (as runc does)

    def set_cpu(self, c: dict) -> None:
        what = "linux.resources.cpu"
        if c.get("shares"):
            self._w("cpu", "cpu.shares", c["shares"], what + ".shares")
        if c.get("period"):
            self._w("cpu", "cpu.cfs_period_us", c["period"], what + ".period")
        if c.get("quota"):
            self._w("cpu", "cpu.cfs_quota_us", c["quota"] if c["quota"] > 0 else -1, what + ".quota")
        if c.get("burst") is not None:
            self._w("cpu", "cpu.cfs_burst_us", c["burst"], what + ".burst")
        if c.get("idle") is not None:
            self._w("cpu", "cpu.idle", c["idle"], what + ".idle")
        if c.get("cpus"):
            self._w("cpuset", "cpuset.cpus", c["cpus"], what + ".cpus")
        if c.get("mems"):
            self._w("cpuset", "cpuset.mems", c["mems"], what + ".mems")
        # realtimeRuntime/realtimePeriod: ignored (needs CONFIG_RT_GROUP_SCHED budgets in every parent)

    def set_blkio(self, b: dict) -> None:
        what = "linux.resources.blockIO"
        if not b:
            return
        d = self.ctl.get("blkio")
        if d is None:
            raise errors.Unsupported(f"{what} needs the cgroup v1 blkio controller, which is not mounted")

        def weight_file(name: str) -> str:
            # CFQ's blkio.weight, or BFQ's blkio.bfq.weight on newer kernels
            for n in (f"blkio.{name}", f"blkio.bfq.{name}"):
                if os.path.exists(os.path.join(d, n)):
                    return os.path.join(d, n)
            raise errors.Unsupported(
                f"{what}: neither blkio.{name} nor blkio.bfq.{name} exists in {d} "
                "(no proportional-weight I/O scheduler: CFQ or BFQ)")

        if b.get("weight"):
            fs.write(weight_file("weight"), b["weight"], what + ".weight")
        if b.get("leafWeight"):
            fs.write(os.path.join(d, "blkio.leaf_weight"), b["leafWeight"], what + ".leafWeight")
        for wd in b.get("weightDevice") or []:
            dev = f"{wd['major']}:{wd['minor']}"
            if wd.get("weight"):
                fs.write(weight_file("weight_device"), f"{dev} {wd['weight']}", what + ".weightDevice")
            if wd.get("leafWeight"):
                fs.write(os.path.join(d, "blkio.leaf_weight_device"), f"{dev} {wd['leafWeight']}",
                         what + ".weightDevice.leafWeight")
        for key, name in (("throttleReadBpsDevice", "read_bps_device"),
                          ("throttleWriteBpsDevice", "write_bps_device"),
                          ("throttleReadIOPSDevice", "read_iops_device"),
                          ("throttleWriteIOPSDevice", "write_iops_device")):
            for td in b.get(key) or []:
                fs.write(os.path.join(d, f"blkio.throttle.{name}"),
                         f"{td['major']}:{td['minor']} {td.get('rate', 0)}", f"{what}.{key}")

    def set_devices(self, rules: list) -> None:
        from .device_rules import v1_line

        for i, rule in enumerate(rules):
            name = "devices.allow" if rule.get("allow") else "devices.deny"
            self._w("devices", name, v1_line(rule, f"linux.resources.devices[{i}]"),
                    f"linux.resources.devices[{i}]")

    # -- freezer -------------------------------------------------------------------------------
    def _freezer(self) -> str:
        return self._file("freezer", "freezer.state", "freeze/thaw")

    def freeze(self) -> None:
        f = self._freezer()

        def done() -> bool:
            # FREEZING can get stuck behind a task that is just forking; asking again nudges it
            if fs.read(f) == "FROZEN":
                return True
            fs.write(f, "FROZEN", "freeze")
            return fs.read(f) == "FROZEN"

        fs.write(f, "FROZEN", "freeze")
        wait_until(done, f"{f} to become FROZEN")

    def thaw(self) -> None:
        f = self._freezer()
        fs.write(f, "THAWED", "thaw")
        wait_until(lambda: fs.read(f) == "THAWED", f"{f} to become THAWED")

    def frozen(self) -> bool:
        try:
            return fs.read(self._freezer()) in ("FROZEN", "FREEZING")
        except (FileNotFoundError, errors.Unsupported):
            return False

    # -- processes -----------------------------------------------------------------------------
    def pids(self) -> list[int]:
        for ctl in ("pids", "freezer", "memory", "cpu", "name=systemd"):
            if ctl in self.ctl:
                return walk_pids(self.ctl[ctl])
        d = next(iter(self._dirs.values()), None)
        return walk_pids(d) if d else []

    def kill_all(self, sig: int) -> None:

        if sig == SIGKILL and "freezer" in self.ctl and os.path.isdir(self.ctl["freezer"]):
            # freeze first so a forking process cannot outrun us, then kill, then thaw to let them die
            try:
                self.freeze()
            except errors.BerthError:
                pass
            try:
                for p in self.pids():
                    try:
                        os.kill(p, sig)
                    except ProcessLookupError:
                        pass
            finally:
                try:
                    self.thaw()
                except errors.BerthError:
                    pass
        super().kill_all(sig)

    def oom_kill_count(self) -> int:
        d = self.ctl.get("memory")
        if d is None:
            return 0
        return fs.read_kv(os.path.join(d, "memory.oom_control")).get("oom_kill", 0)

    # -- stats ---------------------------------------------------------------------------------
    def stats(self) -> dict:
        if not self.exists():
            raise errors.NotFound(f"cgroup {self.path} does not exist")
        from .stats import v1_stats

        s = v1_stats(self.ctl)
        if self.unified is not None and "hugetlb" not in self.ctl:
            from .stats import v2_hugetlb

            s["hugetlb"] = v2_hugetlb(self.unified.dir)
        return s


def _init_cpuset(mountpoint: str, d: str) -> None:
    """A new v1 cpuset cgroup starts with empty cpus/mems and refuses tasks: copy them from above."""
    rel = os.path.relpath(d, mountpoint)
    cur = mountpoint
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        parent, cur = cur, os.path.join(cur, part)
        for name in ("cpuset.cpus", "cpuset.mems"):
            f = os.path.join(cur, name)
            try:
                if fs.read(f):
                    continue
                fs.write(f, fs.read(os.path.join(parent, name)), "cpuset init")
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise errors.SystemError_(f"cannot initialise {f}: {e.strerror}")
