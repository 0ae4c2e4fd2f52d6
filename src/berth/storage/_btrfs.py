"""btrfs subvolume operations through ioctl(2) (no `btrfs` command: one syscall each).

Struct layouts from linux/btrfs.h: btrfs_ioctl_vol_args is {s64 fd; char name[4088]} (4096 bytes),
btrfs_ioctl_vol_args_v2 is {s64 fd; u64 transid; u64 flags; u64 unused[4]; char name[4040]} (4096).
"""

from __future__ import annotations

import fcntl
import os
import struct

_IOC_WRITE = 1
_BTRFS_IOCTL_MAGIC = 0x94


def _iow(nr: int, size: int) -> int:
    return (_IOC_WRITE << 30) | (size << 16) | (_BTRFS_IOCTL_MAGIC << 8) | nr


_VOL_ARGS_SIZE = 4096
_NAME_MAX_V1 = 4088
_NAME_MAX_V2 = 4040
BTRFS_IOC_SNAP_CREATE_V2 = _iow(23, _VOL_ARGS_SIZE)
BTRFS_IOC_SUBVOL_CREATE = _iow(14, _VOL_ARGS_SIZE)
BTRFS_IOC_SNAP_DESTROY = _iow(15, _VOL_ARGS_SIZE)
BTRFS_IOC_SUBVOL_GETFLAGS = (2 << 30) | (8 << 16) | (_BTRFS_IOCTL_MAGIC << 8) | 25
BTRFS_SUBVOL_RDONLY = 1 << 1
BTRFS_FIRST_FREE_OBJECTID = 256


def _split(path: str) -> tuple[str, bytes]:
    parent, name = os.path.split(os.path.abspath(path))
    return parent, os.fsencode(name)


def _dirfd(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _ioctl(fd: int, req: int, buf: bytes, what: str, path: str) -> None:
    try:
        fcntl.ioctl(fd, req, bytearray(buf))
    except OSError as e:
        raise OSError(e.errno, f"btrfs {what} {path}: {e.strerror}", path) from None


def create_subvolume(path: str) -> None:
    parent, name = _split(path)
    args = struct.pack("q", 0) + name.ljust(_NAME_MAX_V1, b"\0")
    fd = _dirfd(parent)
    try:
        _ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, args, "subvolume create", path)
    finally:
        os.close(fd)


def snapshot(src: str, dest: str, readonly: bool = False) -> None:
    parent, name = _split(dest)
    sfd = _dirfd(src)
    try:
        flags = BTRFS_SUBVOL_RDONLY if readonly else 0
        args = struct.pack("qQQ4Q", sfd, 0, flags, 0, 0, 0, 0) + name.ljust(_NAME_MAX_V2, b"\0")
        dfd = _dirfd(parent)
        try:
            _ioctl(dfd, BTRFS_IOC_SNAP_CREATE_V2, args, f"snapshot {src} ->", dest)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def delete_subvolume(path: str) -> None:
    parent, name = _split(path)
    args = struct.pack("q", 0) + name.ljust(_NAME_MAX_V1, b"\0")
    fd = _dirfd(parent)
    try:
        _ioctl(fd, BTRFS_IOC_SNAP_DESTROY, args, "subvolume delete", path)
    finally:
        os.close(fd)


def is_subvolume(path: str) -> bool:
    """A subvolume's root directory always has inode number 256."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return st.st_ino == BTRFS_FIRST_FREE_OBJECTID and os.path.isdir(path)
