"""Apply a layer tar to a directory: OCI whiteouts, path safety, xattrs, ownership, modes, times.

Every name is resolved by DirTree (dir fds, O_NOFOLLOW, no '..', no absolute names), files are created
with O_EXCL|O_NOFOLLOW after removing whatever was there, so no entry can write outside dest.
"""

from __future__ import annotations

import base64
import errno
import os
import stat
from dataclasses import dataclass, field
from typing import BinaryIO, Literal
from urllib.parse import unquote

from berth.errors import BerthError, InvalidArgument, SystemError_, Unsupported
from berth.layers.compression import decompress
from berth.layers.paths import DirTree, remove_tree, split_entry
from berth.layers.tarread import Member, Reader, Source
from berth.linux import libc

WH_PREFIX = ".wh."
WH_META_PREFIX = ".wh..wh."
WH_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"

_IS_ROOT = os.geteuid() == 0
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

@dataclass(frozen=True)
class Applied:
    diff_id: str       # sha256 of the uncompressed tar
    size: int          # bytes of file content in the layer (docker's layer "Size")
    tar_size: int = 0  # bytes of the uncompressed tar
    compression: str = "none"


def _xattrs(m: Member) -> list[tuple[str, bytes]]:
    if not m.pax_headers:
        return []
    out = []
    for k, v in m.pax_headers.items():
        if k.startswith("SCHILY.xattr."):
            out.append((k[len("SCHILY.xattr."):], v.encode("utf-8", "surrogateescape")))
        elif k.startswith("LIBARCHIVE.xattr."):
            out.append((unquote(k[len("LIBARCHIVE.xattr."):]), base64.b64decode(v + "==")))
    # overlay's own metadata must come only from whiteout translation, never from a layer (a forged
    # trusted.overlay.redirect could expose other directories)
    return [(n, v) for n, v in out if not n.startswith(("trusted.overlay.", "user.overlay."))]


def _ns(value: str | float | int) -> int:
    """Seconds (a pax decimal string keeps every digit) -> nanoseconds, without float rounding."""
    if isinstance(value, str):
        sec, _, frac = value.strip().partition(".")
        neg = sec.startswith("-")
        ns = abs(int(sec or "0")) * 1_000_000_000 + int((frac + "000000000")[:9])
        return -ns if neg else ns
    return int(value) * 1_000_000_000 if isinstance(value, int) else round(value * 1e9)


_MAX_NS = (1 << 63) - 1


def _times_ns(m: Member) -> tuple[int, int]:
    if not m.pax_headers:
        at = mt = int(m.mtime) * 1_000_000_000
    else:
        try:
            mt = _ns(m.pax_headers.get("mtime", m.mtime))
            at = m.pax_headers.get("atime")
            at = _ns(at) if at is not None else mt
        except ValueError:
            raise InvalidArgument(f"layer entry {m.name!r}: malformed pax time")
    if not (-_MAX_NS <= mt <= _MAX_NS and -_MAX_NS <= at <= _MAX_NS):
        raise InvalidArgument(f"layer entry {m.name!r}: timestamp out of range")
    return at, mt


def _syncfs(fd: int) -> None:
    try:
        libc.syncfs(fd)
    except OSError:
        os.sync()  # syncfs refused: flush everything rather than nothing


@dataclass
class _Applier:
    tree: DirTree
    mode: str
    size: int = 0
    unpacked: set[tuple[str, ...]] = field(default_factory=set)
    dir_times: dict[tuple[str, ...], tuple[int, int]] = field(default_factory=dict)

    # -- per entry ---------------------------------------------------------------------------------
    def entry(self, rd: Reader, m: Member) -> None:
        name = m.name
        comps = split_entry(name)
        if WH_META_PREFIX in name and any(c.startswith(WH_META_PREFIX) for c in comps[:-1]):
            return  # aufs metadata (.wh..wh.plnk/...): not part of the filesystem
        if not comps:
            if not m.isdir():
                raise InvalidArgument(f"layer entry {name!r}: the layer root can only be a directory")
            self._meta_fd(self.tree.root_fd, m, name)
            self.dir_times[()] = _times_ns(m)
            return
        base = comps[-1]
        if base.startswith(WH_PREFIX):
            self._whiteout(m, comps)
            return
        if self.mode == "delete":
            # this layer's paths and their parents survive its opaque markers
            for i in range(len(comps), 0, -1):
                if comps[:i] in self.unpacked:
                    break
                self.unpacked.add(comps[:i])
        pfd = self.tree.dir_fd(comps[:-1], name)
        if m.isreg():
            self._file(rd, m, pfd, comps)
        elif m.isdir():
            self._dir(m, pfd, comps)
        elif m.issym():
            self._create(pfd, comps, lambda: os.symlink(m.linkname, base, dir_fd=pfd))
            self._meta_path(pfd, base, m, symlink=True)
        elif m.islnk():
            self._hardlink(m, pfd, comps)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            dev = os.makedev(m.devmajor, m.devminor)
            self._create(pfd, comps, lambda: os.mknod(base, kind | 0o600, dev, dir_fd=pfd))
            self._meta_path(pfd, base, m)
        elif m.isfifo():
            self._create(pfd, comps, lambda: os.mkfifo(base, 0o600, dir_fd=pfd))
            self._meta_path(pfd, base, m)
        else:
            raise InvalidArgument(f"layer entry {name!r}: unsupported tar entry type {m.type!r}")

    def _create(self, pfd: int, comps: tuple[str, ...], make) -> None:
        """Run make(); if the name is taken, remove what is there (never follow it) and retry."""
        try:
            make()
        except FileExistsError:
            self.tree.remove(pfd, comps)
            make()

    def _file(self, rd: Reader, m: Member, pfd: int, comps: tuple[str, ...]) -> None:
        base = comps[-1]
        try:
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        except FileExistsError:
            self.tree.remove(pfd, comps)
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            if m.size:
                rd.copy_data(fd, m)
            self.size += m.size
            self._meta_fd(fd, m, m.name)
            os.utime(fd, ns=_times_ns(m))
        finally:
            os.close(fd)

    def _dir(self, m: Member, pfd: int, comps: tuple[str, ...]) -> None:
        base = comps[-1]
        opaque = False
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            st = os.lstat(base, dir_fd=pfd)
            if not stat.S_ISDIR(st.st_mode):
                # a directory taking the place of this layer's own whiteout: it replaces the lower
                # directory instead of merging with it (what overlayfs does on rmdir + mkdir)
                opaque = self.mode == "overlay" and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
                self.tree.remove(pfd, comps)
                os.mkdir(base, 0o700, dir_fd=pfd)
        fd = self.tree.dir_fd(comps, m.name)
        self._meta_fd(fd, m, m.name)
        if opaque:
            self._setxattr_fd(fd, OVERLAY_OPAQUE_XATTR, b"y", m.name)
        self.dir_times[comps] = _times_ns(m)

    def _hardlink(self, m: Member, pfd: int, comps: tuple[str, ...]) -> None:
        name = m.name
        try:
            tcomps = split_entry(m.linkname, "hardlink target")
        except InvalidArgument:
            raise InvalidArgument(f"layer entry {name!r}: hardlink target {m.linkname!r} is outside the layer")
        if not tcomps:
            raise InvalidArgument(f"layer entry {name!r}: hardlink to the layer root")
        if tcomps == comps:
            return
        try:
            tpfd = self.tree.dir_fd(tcomps[:-1], name, create=False)
            st = os.lstat(tcomps[-1], dir_fd=tpfd)
        except FileNotFoundError:
            raise InvalidArgument(f"layer entry {name!r}: hardlink target {m.linkname!r} does not exist")
        if stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"layer entry {name!r}: hardlink target {m.linkname!r} is a directory")
        self._create(pfd, comps, lambda: os.link(
            tcomps[-1], comps[-1], src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False))

    def _whiteout(self, m: Member, comps: tuple[str, ...]) -> None:
        name, base, pcomps = m.name, comps[-1], comps[:-1]
        if base == WH_OPAQUE:
            if self.mode == "overlay":
                pfd = self.tree.dir_fd(pcomps, name)
                self._setxattr_fd(pfd, OVERLAY_OPAQUE_XATTR, b"y", name)
            else:
                try:
                    pfd = self.tree.dir_fd(pcomps, name, create=False)
                except FileNotFoundError:
                    return
                for child in os.listdir(pfd):
                    if pcomps + (child,) not in self.unpacked:
                        self.tree.remove(pfd, pcomps + (child,))
            return
        if base.startswith(WH_META_PREFIX):
            return  # other aufs metadata
        target = base[len(WH_PREFIX):]
        if target in ("", ".", ".."):
            raise InvalidArgument(f"layer entry {name!r}: invalid whiteout")
        tcomps = pcomps + (target,)
        if self.mode == "overlay":
            pfd = self.tree.dir_fd(pcomps, name)
            self._create(pfd, tcomps, lambda: os.mknod(target, stat.S_IFCHR, 0, dir_fd=pfd))
            if _IS_ROOT:
                os.chown(target, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        else:
            try:
                pfd = self.tree.dir_fd(pcomps, name, create=False)
            except FileNotFoundError:
                return
            self.tree.remove(pfd, tcomps)
            self.unpacked.discard(tcomps)

    # -- metadata ----------------------------------------------------------------------------------
    def _meta_fd(self, fd: int, m: Member, name: str) -> None:
        """Owner, mode (after chown: chown clears setuid), xattrs (after chown: it clears caps)."""
        if _IS_ROOT:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)
        for k, v in _xattrs(m):
            self._setxattr_fd(fd, k, v, name)

    def _meta_path(self, pfd: int, base: str, m: Member, symlink: bool = False) -> None:
        if _IS_ROOT:
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if not symlink:
            # we just created this node (not a symlink), so following is safe here
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
        xs = _xattrs(m)
        if xs:
            path = f"/proc/self/fd/{pfd}/{base}"
            for k, v in xs:
                try:
                    os.setxattr(path, k, v, follow_symlinks=False)
                except OSError as e:
                    self._xattr_error(e, k, m.name)
        os.utime(base, ns=_times_ns(m), dir_fd=pfd, follow_symlinks=False)

    def _setxattr_fd(self, fd: int, k: str, v: bytes, name: str) -> None:
        try:
            os.setxattr(fd, k, v)
        except OSError as e:
            self._xattr_error(e, k, name)

    @staticmethod
    def _xattr_error(e: OSError, key: str, name: str) -> None:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) and key.startswith("security.selinux"):
            return  # labels of another host's policy: nothing to do without SELinux
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise Unsupported(f"layer entry {name!r}: filesystem does not support xattr {key!r}")
        raise SystemError_(f"layer entry {name!r}: setting xattr {key!r}: {e.strerror}")

    def finish(self) -> None:
        """Directory times last: creating their contents changed them."""
        for comps, times in reversed(list(self.dir_times.items())):
            try:
                fd = self.tree.dir_fd(comps, "/".join(comps), create=False)
            except (FileNotFoundError, InvalidArgument):
                continue  # removed or replaced by a later entry
            os.utime(fd, ns=times)


def apply_layer(
    stream: BinaryIO,
    dest: str,
    *,
    whiteouts: Literal["overlay", "delete"] = "delete",
    sync: bool = False,
) -> Applied:
    """Unpack a layer (plain, gzip, zstd, bzip2 or xz tar) into dest.

    On error dest is removed if this call created it; otherwise the caller must remove the half-applied
    dest (remove_tree). Unsafe entries raise InvalidArgument naming the entry.
    """
    if whiteouts not in ("overlay", "delete"):
        raise InvalidArgument(f"whiteouts must be 'overlay' or 'delete', not {whiteouts!r}")
    created = False
    if not os.path.lexists(dest):
        os.makedirs(dest, 0o755)
        created = True
    try:
        raw, kind = decompress(stream)
        src = Source(raw)  # stream errors surface from it as berth errors
        with DirTree(dest) as tree:
            ap = _Applier(tree, whiteouts)
            rd = Reader(src)
            for m in rd:
                tree.release()
                try:
                    ap.entry(rd, m)
                except BerthError:
                    raise
                except OSError as e:
                    raise SystemError_(f"layer entry {m.name!r}: {e.strerror or e}")
                except (ValueError, OverflowError) as e:  # NUL in a link target, absurd numbers
                    raise InvalidArgument(f"layer entry {m.name!r}: {e}")
            src.drain()
            ap.finish()
            if sync:
                _syncfs(tree.root_fd)
        return Applied(f"sha256:{src.h.hexdigest()}", ap.size, src.total, kind)
    except BaseException:
        if created:
            remove_tree(dest)
        raise
