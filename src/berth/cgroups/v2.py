"""cgroup v2 (unified hierarchy) manager; also the unified half of a hybrid manager."""

import errno
import os

from berth import errors

from . import convert, fs
from .base import Manager, undo_created, wait_until, walk_pids, write_procs
from .fs import SIGKILL
from .mounts import Hierarchy, unified_controllers


class V2Manager(Manager):
    version = "v2"

    def __init__(self, path: str, mount: Hierarchy, *, enable_all: bool = True):
        self.path = path
        self.mount = mount
        self.dir = mount.dir_of(path)
        # pure v2: enable every available controller down the path at apply (runc does the same);
        # the unified half of a hybrid host enables a controller only when a knob needs it
        self.enable_all = enable_all

    # -- creation -------------------------------------------------------------------------------
    def _chain(self) -> list[str]:
        """Directories from the mount's top down to ours."""
        rel = os.path.relpath(self.dir, self.mount.mountpoint)
        out, cur = [], self.mount.mountpoint
        for part in rel.split("/"):
            if part in ("", "."):
                continue
            cur = os.path.join(cur, part)
            out.append(cur)
        return out

    def _enable(self, parent: str, ctls: list[str]) -> str | None:
        """Enable controllers in parent's subtree_control; returns an error text or None."""
        try:
            have = set(fs.read(os.path.join(parent, "cgroup.subtree_control")).split())
        except OSError as e:
            return f"cannot read {parent}/cgroup.subtree_control: {e.strerror}"
        want = [c for c in ctls if c not in have]
        if not want:
            return None
        try:
            fd = os.open(os.path.join(parent, "cgroup.subtree_control"), os.O_WRONLY)
            try:
                os.write(fd, " ".join("+" + c for c in want).encode())
            finally:
                os.close(fd)
        except OSError as e:
            hint = ""
            if e.errno == errno.EBUSY:
                hint = " (it holds processes, and cgroup v2 allows controllers only in cgroups without them)"
            return f"cannot enable {', '.join(want)} in {parent}/cgroup.subtree_control: {e.strerror}{hint}"
        return None

    def create(self) -> list[str]:
        """Make the directory (and missing parents); returns the leaf if this call created it."""
        chain = self._chain()
        parent = self.mount.mountpoint
        made: list[str] = []
        for d in chain:
            if self.enable_all:
                self._enable(parent, sorted(unified_controllers_of(parent)))
            try:
                os.mkdir(d, 0o755)
                if d == self.dir:
                    made.append(d)
            except FileExistsError:
                pass
            except OSError as e:
                raise errors.SystemError_(f"cannot create cgroup {d}: {e.strerror}")
            parent = d
        return made

    def ensure_controller(self, ctl: str) -> None:
        """Make `ctl`'s files appear in our cgroup, enabling it down from the top if needed."""
        if ctl in unified_controllers_of(self.dir):
            return
        parent = self.mount.mountpoint
        if ctl not in unified_controllers(self.mount):
            raise errors.Unsupported(f"the {ctl} controller is not available in the cgroup v2 hierarchy "
                                     f"{self.mount.mountpoint}")
        for d in self._chain():
            err = self._enable(parent, [ctl])
            if err:
                raise errors.Unsupported(err)
            parent = d

    def apply(self, pid: int, self_joined: bool = False) -> None:
        made = self.create()
        try:
            write_procs(self.dir, pid)
        except errors.BerthError:
            undo_created(made)
            raise

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def dirs(self) -> dict[str, str]:
        return {self.mount.mountpoint: self.dir}

    def hierarchies(self) -> list[Hierarchy]:
        return [self.mount]

    def dir_for(self, controller: str) -> str | None:
        return self.dir

    def state(self) -> dict:
        return {"version": self.version, "path": self.path, "dirs": self.dirs()}

    # -- resources -------------------------------------------------------------------------------
    def _w(self, name: str, value: str | int, what: str) -> None:
        p = os.path.join(self.dir, name)
        ctl = name.split(".", 1)[0]
        if not os.path.exists(p) and ctl not in ("cgroup",):
            self.ensure_controller(ctl)
        fs.write(p, value, what)

    def set(self, resources: dict) -> None:
        r = resources or {}
        if not self.exists():
            self.create()       # limits may be set before the first process is moved in
        self.set_memory(r.get("memory") or {})
        self.set_cpu(r.get("cpu") or {})
        pids = r.get("pids") or {}
        if pids.get("limit"):
            self._w("pids.max", convert.v2_limit(pids["limit"]), "linux.resources.pids.limit")
        self.set_io(r.get("blockIO") or {})
        self.set_hugetlb(r.get("hugepageLimits") or [])
        if r.get("devices") is not None:
            from . import devices_bpf

            devices_bpf.apply(self.dir, r["devices"])
        if r.get("rdma"):
            for dev, lim in r["rdma"].items():
                val = " ".join(f"{n}={lim[k]}" for k, n in (("hcaHandles", "hca_handle"),
                                                             ("hcaObjects", "hca_object"))
                               if lim.get(k) is not None)
                self._w("rdma.max", f"{dev} {val}", "linux.resources.rdma")
        self.set_unified(r.get("unified") or {})

    def set_memory(self, m: dict) -> None:
        limit, swap = m.get("limit"), m.get("swap")
        sw = convert.swap_to_v2(limit, swap)
        if sw is not None:
            swap_file = os.path.join(self.dir, "memory.swap.max")
            if not os.path.exists(swap_file):
                self.ensure_controller("memory")
            if not os.path.exists(swap_file):
                if sw != -1:
                    raise errors.Unsupported(
                        f"linux.resources.memory.swap={swap} needs swap accounting, but {swap_file} does "
                        "not exist (kernel without CONFIG_MEMCG_SWAP or swapaccount=0)")
            else:
                # lower swap first is never invalid on v2 (limits are independent files)
                fs.write(swap_file, convert.v2_limit(sw), "linux.resources.memory.swap")
        if limit:
            self._w("memory.max", convert.v2_limit(limit), "linux.resources.memory.limit")
        if m.get("reservation"):
            self._w("memory.low", convert.v2_limit(m["reservation"]), "linux.resources.memory.reservation")
        # kernel, kernelTCP, swappiness and disableOOMKiller have no v2 knob; runc ignores them too

    def set_cpu(self, c: dict) -> None:
        if c.get("shares"):
            self._w("cpu.weight", convert.shares_to_weight(c["shares"]), "linux.resources.cpu.shares")
        quota, period = c.get("quota"), c.get("period")
        if quota or period:
            cur_q, cur_p = "max", "100000"
            try:
                cur_q, cur_p = fs.read(os.path.join(self.dir, "cpu.max")).split()
            except (OSError, ValueError):
                pass
            q = cur_q if not quota else convert.v2_limit(quota)
            p = str(period) if period else cur_p
            self._w("cpu.max", f"{q} {p}", "linux.resources.cpu.quota/period")
        if c.get("burst") is not None:
            self._w("cpu.max.burst", c["burst"], "linux.resources.cpu.burst")
        if c.get("idle") is not None:
            self._w("cpu.idle", c["idle"], "linux.resources.cpu.idle")
        if c.get("cpus"):
            self._w("cpuset.cpus", c["cpus"], "linux.resources.cpu.cpus")
        if c.get("mems"):
            self._w("cpuset.mems", c["mems"], "linux.resources.cpu.mems")

    def set_io(self, b: dict) -> None:
        bfq = os.path.join(self.dir, "io.bfq.weight")
        if b.get("weight"):
            if os.path.exists(bfq):     # bfq takes the v1 range (1..1000) as is
                fs.write(bfq, b["weight"], "linux.resources.blockIO.weight")
            else:
                self._w("io.weight", f"default {convert.blkio_weight_to_io_weight(b['weight'])}",
                        "linux.resources.blockIO.weight")
        for wd in b.get("weightDevice") or []:
            dev = f"{wd['major']}:{wd['minor']}"
            if wd.get("weight"):
                if os.path.exists(bfq):
                    fs.write(bfq, f"{dev} {wd['weight']}", "linux.resources.blockIO.weightDevice")
                else:
                    self._w("io.weight", f"{dev} {convert.blkio_weight_to_io_weight(wd['weight'])}",
                            "linux.resources.blockIO.weightDevice")
        for key, field in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                           ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
            for td in b.get(key) or []:
                rate = td.get("rate", 0)
                self._w("io.max", f"{td['major']}:{td['minor']} {field}={rate if rate else 'max'}",
                        f"linux.resources.blockIO.{key}")
        # leafWeight has no v2 equivalent (ignored, as runc does)

    def set_hugetlb(self, limits: list) -> None:
        for h in limits:
            size = h.get("pageSize")
            if not size or "/" in size:
                raise errors.InvalidArgument(f"linux.resources.hugepageLimits: bad pageSize {size!r}")
            self._w(f"hugetlb.{size}.max", h.get("limit", 0), "linux.resources.hugepageLimits")

    def set_unified(self, unified: dict) -> None:
        for key, val in unified.items():
            if "/" in key or key.startswith(".") or key in ("cgroup.procs", "cgroup.threads"):
                raise errors.InvalidArgument(f"linux.resources.unified: {key!r} is not a cgroup v2 file")
            p = os.path.join(self.dir, key)
            if not os.path.exists(p) and "." in key:
                try:
                    self.ensure_controller(key.split(".", 1)[0])
                except errors.Unsupported as e:
                    raise errors.Unsupported(f"linux.resources.unified[{key!r}]: {e}")
            if not os.path.exists(p):
                raise errors.Unsupported(f"linux.resources.unified[{key!r}]: {p} does not exist")
            fs.write(p, val, f"linux.resources.unified[{key!r}]")

    # -- freezer -------------------------------------------------------------------------------
    def freeze(self) -> None:
        fs.write(os.path.join(self.dir, "cgroup.freeze"), "1", "freeze")
        wait_until(lambda: fs.read_kv(os.path.join(self.dir, "cgroup.events")).get("frozen") == 1,
                   f"{self.dir} to freeze")

    def thaw(self) -> None:
        fs.write(os.path.join(self.dir, "cgroup.freeze"), "0", "thaw")
        wait_until(lambda: fs.read_kv(os.path.join(self.dir, "cgroup.events")).get("frozen") == 0,
                   f"{self.dir} to thaw")

    def frozen(self) -> bool:
        return fs.read_int(os.path.join(self.dir, "cgroup.freeze")) == 1

    # -- processes -----------------------------------------------------------------------------
    def pids(self) -> list[int]:
        return walk_pids(self.dir)

    def populated(self) -> bool:
        return fs.read_kv(os.path.join(self.dir, "cgroup.events")).get("populated") == 1

    def kill_all(self, sig: int) -> None:
        kill_file = os.path.join(self.dir, "cgroup.kill")
        if sig == SIGKILL and os.path.exists(kill_file):
            fs.write(kill_file, "1", "kill_all")     # atomic, fork bombs included
            wait_until(lambda: not self.populated(), f"{self.dir} to empty after cgroup.kill")
            return
        super().kill_all(sig)

    def oom_kill_count(self) -> int:
        return fs.read_kv(os.path.join(self.dir, "memory.events")).get("oom_kill", 0)

    # -- stats ---------------------------------------------------------------------------------
    def stats(self) -> dict:
        if not self.exists():
            raise errors.NotFound(f"cgroup {self.path} does not exist")
        from .stats import v2_stats

        return v2_stats(self.dir)


def unified_controllers_of(d: str) -> set[str]:
    try:
        return set(fs.read(os.path.join(d, "cgroup.controllers")).split())
    except OSError:
        return set()
