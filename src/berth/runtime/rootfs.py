"""The container's filesystem: propagation, the `mounts` array, /dev, pivot_root, masked and read-only paths.

Runs in the container's init, in its new mount namespace. Every destination is resolved inside the
rootfs (berth.linux.paths), and mounts land on /proc/self/fd/<fd> of a descriptor opened with
RESOLVE_IN_ROOT, so a symlink planted in the image cannot redirect a mount onto the host.
"""

import os
import stat

from berth.errors import InvalidArgument
from berth.linux import libc as L
from berth.linux import mountinfo
from berth.linux.paths import mkdir_in_root, open_in_root
from berth.runtime import mountopts

_PROC_OK = ("/proc", "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
            "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid")
_LOCKED = ((1, L.MS_RDONLY), (2, L.MS_NOSUID), (4, L.MS_NODEV), (8, L.MS_NOEXEC), (1024, L.MS_NOATIME),
           (2048, L.MS_NODIRATIME), (4096, L.MS_RELATIME))


def _statvfs_flags(path: str) -> int:
    f = os.statvfs(path).f_flag
    return sum(ms for st, ms in _LOCKED if f & st)


def _mountinfo() -> list[list[str]]:
    return mountinfo.read()


def _hierarchies(infos: list[list[str]]) -> list:
    """[mount point, root, controllers key, version] of each cgroup mount in mountinfo (first mount of
    a key wins), as the runtime sends them with "joined" (a fallback: reading mountinfo costs ~1 ms)."""
    out, seen = [], set()
    for f in infos:
        sep = f.index("-")
        fstype, opts = f[sep + 1], f[sep + 3].split(",")
        if fstype == "cgroup":
            key = ",".join(sorted(o for o in opts if o not in ("rw", "ro") and "=" not in o or
                                  o.startswith("name=")))
            version = 1
        elif fstype == "cgroup2":
            key, version = "", 2
        else:
            continue
        if (key, version) not in seen:
            seen.add((key, version))
            out.append([f[4], f[3], key, version])
    return out


class Rootfs:
    def __init__(self, rootfs: str, bundle: str, userns: bool, cgroups=None):
        self.cgroups = cgroups  # callable -> /proc/self/cgroup text of the container (once it has joined)
        self.root = rootfs
        self.bundle = bundle
        self.userns = userns
        self.root_fd = -1
        self.dev_bound = False
        self.propagation_flag = 0
        self.final_propagation = 0  # set on "/" after pivot_root (rootfsPropagation)

    # -- preparation ---------------------------------------------------------------------------
    def prepare(self, propagation: str | None) -> None:
        flag = self.propagation_flag = mountopts.PROPAGATION.get(propagation or "", L.MS_SLAVE | L.MS_REC)
        L.mount(None, "/", None, flag)
        self._parent_private()
        L.mount(self.root, self.root, None, L.MS_BIND | L.MS_REC)
        # The requested propagation goes on the new root once it is "/" (pivot): pivot_root refuses a
        # shared new root, and an unbindable one could not be bound.
        self.final_propagation = flag if propagation else 0
        self.root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def _parent_private(self) -> None:
        """pivot_root refuses a new root whose parent mount is shared: make that parent private."""
        if not self.propagation_flag & L.MS_SHARED:
            return  # "/" was just made (r)slave or (r)private: no mount of ours is shared
        best = None
        for f in _mountinfo():
            mp = f[4]
            if (self.root == mp or self.root.startswith(mp.rstrip("/") + "/")) and (
                    best is None or len(mp) > len(best[4])):
                best = f
        if best is not None:
            opt = best[6:best.index("-")]
            if any(o.startswith("shared:") for o in opt):
                L.mount(None, best[4], None, L.MS_PRIVATE)

    def _target(self, dest: str, is_dir: bool) -> tuple[int, str]:
        mkdir_in_root(self.root, dest, is_dir)
        fd = open_in_root(self.root_fd, dest.lstrip("/") or ".")
        return fd, f"/proc/self/fd/{fd}"

    def _reopen(self, dest: str) -> tuple[int, str]:
        fd = open_in_root(self.root_fd, dest.lstrip("/") or ".")
        return fd, f"/proc/self/fd/{fd}"

    # -- the mounts array ------------------------------------------------------------------------
    def mount_all(self, mounts: list[dict]) -> None:
        for i, m in enumerate(mounts):
            try:
                self.mount_one(m)
            except InvalidArgument:
                raise
            except OSError as e:
                raise InvalidArgument(
                    f"config.json: mounts[{i}] ({m.get('type') or 'bind'} {m.get('source', '')} on "
                    f"{m['destination']}): {e.strerror or e}") from None

    def mount_one(self, m: dict) -> None:
        dest = "/" + m["destination"].lstrip("/")
        dest = os.path.normpath(dest)
        typ = m.get("type") or ""
        src = m.get("source") or ""
        flags, props, data, extra = mountopts.parse(m.get("options") or [])
        if dest.startswith("/proc/") and dest not in _PROC_OK:
            raise InvalidArgument(f"config.json: mount destination {dest} is inside /proc: not allowed")
        if "idmap" in data.split(",") or "ridmap" in data.split(","):
            raise InvalidArgument(f"config.json: mount on {dest}: idmapped mounts are not supported")
        if typ == "bind" or flags & L.MS_BIND:
            self._bind(src, dest, flags, props)
        elif typ == "cgroup" or typ == "cgroup2":
            self._cgroup(dest, flags)
        else:
            self._fs(typ, src, dest, flags, props, data, "tmpcopyup" in extra)
        if dest == "/dev" and (typ == "bind" or flags & L.MS_BIND):
            self.dev_bound = True

    def _bind(self, src: str, dest: str, flags: int, props: list[int]) -> None:
        if not src.startswith("/"):
            src = os.path.join(self.bundle, src)
        try:
            st = os.stat(src)
        except OSError as e:
            raise OSError(e.errno, f"bind source {src}: {e.strerror}") from None
        fd, target = self._target(dest, stat.S_ISDIR(st.st_mode))
        try:
            L.mount(src, target, None, L.MS_BIND | (flags & L.MS_REC))
        finally:
            os.close(fd)
        rest = flags & ~(L.MS_BIND | L.MS_REC | L.MS_REMOUNT)
        if rest or props:
            fd, target = self._reopen(dest)
            try:
                if rest:
                    if self.userns:  # flags the kernel locked on the source must be kept
                        rest |= _statvfs_flags(target) & ~L.MS_RDONLY
                    L.mount(None, target, None, L.MS_BIND | L.MS_REMOUNT | rest)
                for p in props:
                    L.mount(None, target, None, p)
            finally:
                os.close(fd)

    def _fs(self, typ: str, src: str, dest: str, flags: int, props: list[int], data: str, copyup: bool) -> None:
        fd, target = self._target(dest, True)
        if typ == "tmpfs" and not copyup and "mode=" not in data:
            # runc keeps the mount point's mode (0711, 1777...) on a tmpfs given no mode= of its own.
            mode = f"mode={os.stat(target).st_mode & 0o7777:o}"
            data = f"{mode},{data}" if data else mode
        under = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if copyup else -1
        try:
            try:
                L.mount(src or typ, target, typ, flags & ~L.MS_REMOUNT, data or None)
            except OSError as e:
                if typ != "sysfs" or e.errno != 1:
                    raise
                # No network namespace of our own: sysfs cannot be mounted, bind the host's /sys.
                L.mount("/sys", target, None, L.MS_BIND | L.MS_REC)
                L.mount(None, target, None, L.MS_BIND | L.MS_REMOUNT | L.MS_REC | flags)
            if copyup:
                # tmpcopyup: the new tmpfs starts with what the image had there; `under` still
                # refers to the directory the tmpfs now hides.
                nfd, ntarget = self._reopen(dest)
                try:
                    os.chmod(ntarget, os.stat(under).st_mode & 0o7777)
                    _copy_tree(under, ntarget)
                finally:
                    os.close(nfd)
        finally:
            os.close(fd)
            if under >= 0:
                os.close(under)
        if props:
            fd, target = self._reopen(dest)
            try:
                for p in props:
                    L.mount(None, target, None, p)
            finally:
                os.close(fd)

    def _cgroup(self, dest: str, flags: int) -> None:
        ro = flags & L.MS_RDONLY
        base = flags & (L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
        hier = None
        if self.cgroups is not None:
            text, hier = self.cgroups()
        else:
            with open("/proc/self/cgroup") as f:
                text = f.read()
        if hier is None:
            hier = _hierarchies(_mountinfo())
        lines = [ln.split(":", 2) for ln in text.splitlines() if ln]
        if any(mp == "/sys/fs/cgroup" and version == 2 for mp, _root, _key, version in hier):
            path = next(p for h, c, p in lines if h == "0")
            fd, target = self._target(dest, True)
            try:
                L.mount("/sys/fs/cgroup" + path.rstrip("/"), target, None, L.MS_BIND | L.MS_REC)
            finally:
                os.close(fd)
            fd, target = self._reopen(dest)
            try:
                L.mount(None, target, None, L.MS_BIND | L.MS_REMOUNT | base | ro)
            finally:
                os.close(fd)
            return
        # cgroup v1 (or hybrid): a tmpfs holding one bind mount per hierarchy of the container's cgroup.
        fd, target = self._target(dest, True)
        try:
            L.mount("cgroup", target, "tmpfs", base, "mode=755")
        finally:
            os.close(fd)
        # The tmpfs is new and ours alone (nothing in it can be a symlink planted by the image): its
        # subdirectories are made and opened relative to it, without resolving the path from the root.
        top = self._reopen(dest)[0]
        try:
            self._cgroup_v1_binds(top, hier, lines, base | ro)
        finally:
            os.close(top)
        if ro:
            fd, target = self._reopen(dest)
            try:
                L.mount(None, target, None, L.MS_REMOUNT | L.MS_RDONLY | base, "mode=755")
            finally:
                os.close(fd)

    def _cgroup_v1_binds(self, top: int, hier: list, lines: list[list[str]], flags: int) -> None:
        """One read-only (per flags) bind per hierarchy of the container's cgroup, in the tmpfs open at top."""
        by_key = {key: (mp, root) for mp, root, key, version in hier
                  if version == 1 or mp.startswith("/sys/fs/cgroup/")}
        names: list[str] = []
        for _h, ctrls, path in lines:
            key = ",".join(sorted(c for c in ctrls.split(",") if c)) if ctrls else ""
            if key not in by_key:
                continue
            mp, mroot = by_key[key]
            rel = path[len(mroot.rstrip("/")):] if path.startswith(mroot) else path
            name = os.path.basename(mp)
            try:
                os.mkdir(name, 0o755, dir_fd=top)
            except FileExistsError:
                pass
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top)
            try:
                L.mount(mp + rel.rstrip("/"), f"/proc/self/fd/{fd}", None, L.MS_BIND)
            finally:
                os.close(fd)
            names.append(name)
        # The binds' flags: one mount_setattr over the tmpfs and all of them (else one remount each).
        try:
            if not flags:
                raise OSError(22, "no flags to set")  # a bind remount without flags clears the source's
            L.mount_setattr_recursive(top, flags)
            names = []
        except OSError:
            pass
        for name in names:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top)  # now the bind
            try:
                L.mount(None, f"/proc/self/fd/{fd}", None, L.MS_BIND | L.MS_REMOUNT | flags)
            finally:
                os.close(fd)
        # Co-mounted controllers have symlinks on the host (cpu -> cpu,cpuacct): same inside.
        for name in os.listdir("/sys/fs/cgroup"):
            p = "/sys/fs/cgroup/" + name
            if os.path.islink(p):
                try:
                    os.symlink(os.readlink(p), name, dir_fd=top)
                except FileExistsError:
                    pass

    # -- switching root --------------------------------------------------------------------------
    def pivot(self, no_pivot: bool, chroot_only: bool = False) -> None:
        if chroot_only and not no_pivot:
            # No mount namespace of our own (inherited or joined): pivot_root would swap the root of a
            # namespace others use; runc chroots into the rootfs instead.
            os.chroot(self.root)
            os.chdir("/")
        elif no_pivot:
            os.chdir(self.root)
            L.mount(self.root, "/", None, L.MS_MOVE)
            os.chroot(".")
            os.chdir("/")
        else:
            old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            new = os.open(self.root, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fchdir(new)
                L.pivot_root(".", ".")
                os.fchdir(old)
                # Keep the unmount of the old root from propagating back to the host.
                L.mount(None, ".", None, L.MS_SLAVE | L.MS_REC)
                L.umount2(".", L.MNT_DETACH)
            finally:
                os.close(old)
                os.close(new)
            os.chdir("/")
        if self.final_propagation:
            L.mount(None, "/", None, self.final_propagation)
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1


def _copy_tree(src_fd: int, dst: str) -> None:
    """Copy the directory open at src_fd into dst: files, dirs, symlinks, nodes, owners and modes."""
    for e in os.scandir(src_fd):
        st = os.stat(e.name, dir_fd=src_fd, follow_symlinks=False)
        d = dst + "/" + e.name
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(d, 0o700)
            sub = os.open(e.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
            try:
                _copy_tree(sub, d)
            finally:
                os.close(sub)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(e.name, dir_fd=src_fd), d)
        elif stat.S_ISREG(mode):
            i = os.open(e.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
            try:
                o = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    while os.sendfile(o, i, None, 1 << 20):
                        pass
                finally:
                    os.close(o)
            finally:
                os.close(i)
        else:
            os.mknod(d, mode, st.st_rdev)
        os.chown(d, st.st_uid, st.st_gid, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(d, mode & 0o7777)


def mask_paths(paths: list[str]) -> None:
    for p in paths:
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                L.mount("tmpfs", p, "tmpfs", L.MS_RDONLY)
            else:
                L.mount("/dev/null", p, None, L.MS_BIND)
        except OSError as e:
            if e.errno not in (2, 20):  # ENOENT, ENOTDIR: nothing to mask
                raise


def readonly_paths(paths: list[str]) -> None:
    for p in paths:
        try:
            L.mount(p, p, None, L.MS_BIND | L.MS_REC)
        except OSError as e:
            if e.errno in (2, 20):
                continue
            raise
        L.mount(None, p, None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | L.MS_REC | _statvfs_flags(p))


def readonly_root() -> None:
    L.mount(None, "/", None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | _statvfs_flags("/"))


def write_sysctl(sysctl: dict[str, str]) -> None:
    for k, v in sysctl.items():
        path = "/proc/sys/" + k.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(v)
        except OSError as e:
            raise InvalidArgument(f"config.json: linux.sysctl[{k!r}]: {e.strerror}") from None
