"""Deterministic layer tars: sorted entries, numeric owners only, PAX, SOURCE_DATE_EPOCH clamp.

The same files (content, modes, owners, xattrs, mtimes) always give the same bytes, hence the same
digest: no user/group names, no atime/ctime, whole-second mtimes, xattrs in name order.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from berth.errors import InvalidArgument

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SKIP_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.", "security.selinux")


def source_date_epoch(value: int | None = None) -> int | None:
    """The clamp to use: the argument, else $SOURCE_DATE_EPOCH, else None (no clamping)."""
    if value is not None:
        return int(value)
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env is None or env.strip() == "":
        return None
    try:
        return int(env)
    except ValueError:
        raise InvalidArgument(f"SOURCE_DATE_EPOCH={env!r} is not an integer number of seconds")


def sort_key(name: str) -> bytes:
    return os.fsencode(name)


def scan(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    """Entries of a directory fd, sorted by their byte names, with lstat results."""
    with os.scandir(dir_fd) as it:
        entries = [(e.name, e.stat(follow_symlinks=False)) for e in it]
    entries.sort(key=lambda x: sort_key(x[0]))
    return entries


def read_xattrs(dir_fd: int, name: str) -> list[tuple[str, bytes]]:
    path = f"/proc/self/fd/{dir_fd}/{name}"
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
    out = []
    for k in sorted(keys):
        if k.startswith(_SKIP_XATTR_PREFIXES):
            continue
        try:
            out.append((k, os.getxattr(path, k, follow_symlinks=False)))
        except OSError:
            continue
    return out


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class LayerWriter:
    """Writes entries into a PAX tar stream in the order given (callers walk in sorted order)."""

    def __init__(self, out: BinaryIO, source_date_epoch_: int | None = None) -> None:
        self.epoch = source_date_epoch(source_date_epoch_)
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8")  # noqa: SIM115
        self._links: dict[tuple[int, int], str] = {}

    def _mtime(self, st: os.stat_result) -> int:
        t = int(st.st_mtime)
        return min(t, self.epoch) if self.epoch is not None else t

    def _info(self, arcname: str, st: os.stat_result) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(arcname)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.mtime = self._mtime(st)
        return ti

    def add(self, dir_fd: int, name: str, arcname: str, st: os.stat_result) -> bool:
        """Add the filesystem entry name (in dir_fd) as arcname; False for what tar cannot hold."""
        ti = self._info(arcname, st)
        mode = st.st_mode
        fobj = None
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._links:
                ti.type = tarfile.LNKTYPE
                ti.linkname = self._links[key]
            else:
                if st.st_nlink > 1:
                    self._links[key] = arcname
                ti.type = tarfile.REGTYPE
                ti.size = st.st_size
                fobj = os.fdopen(os.open(name, _OPEN_FLAGS, dir_fd=dir_fd), "rb", buffering=1 << 20)
        elif stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(name, dir_fd=dir_fd)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
        else:
            return False  # sockets: tar has no type for them
        for k, v in read_xattrs(dir_fd, name):
            ti.pax_headers["SCHILY.xattr." + k] = v.decode("utf-8", "surrogateescape")
        try:
            self.tf.addfile(ti, fobj)
        finally:
            if fobj is not None:
                fobj.close()
        return True

    def add_marker(self, arcname: str, st: os.stat_result) -> None:
        """An empty regular file (whiteout / opaque marker) owned like st, with st's mtime."""
        ti = self._info(arcname, st)
        ti.type = tarfile.REGTYPE
        ti.mode = 0o600
        ti.size = 0
        self.tf.addfile(ti)

    def close(self) -> None:
        self.tf.close()

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def walk(root_fd: int, prefix: str = "") -> Iterator[tuple[int, str, str, os.stat_result]]:
    """Depth-first, sorted: (dir_fd, name, arcname, lstat) for everything below root_fd."""
    for name, st in scan(root_fd):
        arc = prefix + name
        yield root_fd, name, arc, st
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
            try:
                yield from walk(fd, arc + "/")
            finally:
                os.close(fd)


def tar_directory(root: str, out: BinaryIO, *, source_date_epoch: int | None = None) -> None:
    """A flattened, deterministic tar of everything below root (root itself is not an entry)."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        with LayerWriter(out, source_date_epoch) as w:
            for dfd, name, arc, st in walk(fd):
                w.add(dfd, name, arc, st)
    finally:
        os.close(fd)
