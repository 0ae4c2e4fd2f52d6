"""The few kernel calls the storage drivers need: mount(2), umount2(2), the new mount API, statfs.

Kept stdlib-only (ctypes on libc) so the drivers never spawn `mount`/`umount`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

from berth import errors

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long
_libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

MNT_DETACH = 0x2

# The new mount API has one syscall number on every architecture but alpha.
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
_FSOPEN_CLOEXEC = 1
_FSMOUNT_CLOEXEC = 1
_MOUNT_ATTR_RDONLY = 0x1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4

BTRFS_SUPER_MAGIC = 0x9123683E


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _oserror(what: str, path: str) -> OSError:
    e = ctypes.get_errno()
    return OSError(e, f"{what} {path}: {os.strerror(e)}", path)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        raise _oserror(f"mount {fstype or ''} {source or ''} on", target)


def umount(target: str, *, detach_if_busy: bool = True) -> None:
    """Unmount `target`; a busy mount is detached lazily so that nothing is left mounted under home."""
    if _libc.umount2(_b(target), 0) == 0:
        return
    e = ctypes.get_errno()
    if e == errno.EBUSY and detach_if_busy and _libc.umount2(_b(target), MNT_DETACH) == 0:
        return
    if e in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more)
        return
    ctypes.set_errno(e)
    raise _oserror("umount", target)


def _syscall(nr: int, *args) -> int:
    r = _libc.syscall(ctypes.c_long(nr), *args)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def mount_fsconfig(fstype: str, target: str, options: list[tuple[str, str | None]], readonly: bool = False) -> None:
    """Mount with fsopen/fsconfig/fsmount/move_mount: every option is its own string, so a long
    option list (many `lowerdir+` entries) is not bound by mount(2)'s one-page data limit."""
    fsfd = _syscall(_SYS_FSOPEN, ctypes.c_char_p(fstype.encode()), ctypes.c_uint(_FSOPEN_CLOEXEC))
    try:
        for key, value in options:
            try:
                _syscall(
                    _SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_SET_STRING),
                    ctypes.c_char_p(key.encode()), ctypes.c_char_p(_b(value)), ctypes.c_int(0),
                )
            except OSError as e:
                raise OSError(e.errno, f"fsconfig {fstype} {key}={value}: {e.strerror}") from None
        _syscall(_SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_CMD_CREATE), None, None, ctypes.c_int(0))
        mfd = _syscall(
            _SYS_FSMOUNT, ctypes.c_int(fsfd), ctypes.c_uint(_FSMOUNT_CLOEXEC),
            ctypes.c_uint(_MOUNT_ATTR_RDONLY if readonly else 0),
        )
        try:
            _syscall(
                _SYS_MOVE_MOUNT, ctypes.c_int(mfd), ctypes.c_char_p(b""), ctypes.c_int(-100),
                ctypes.c_char_p(_b(target)), ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH),
            )
        finally:
            os.close(mfd)
    finally:
        os.close(fsfd)


def mount_in_dir(cwd: str, source: str, target: str, fstype: str, flags: int, data: str) -> None:
    """mount(2) with relative paths in `data`, resolved against `cwd`. The chdir happens in a
    short-lived child so the caller's (possibly threaded) process keeps its working directory."""
    args = (_b(source), _b(target), _b(fstype), flags, _b(data))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no Python-level work beyond the syscall
        try:
            os.close(r)
            os.chdir(cwd)
            rc = _libc.mount(*args)
            os.write(w, str(0 if rc == 0 else ctypes.get_errno()).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        out = os.read(r, 32)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    code = int(out or b"-1")
    if code:
        raise OSError(code if code > 0 else errno.EIO, f"mount {fstype} on {target}: "
                      f"{os.strerror(code) if code > 0 else 'child failed'}", target)


def unescape_mountinfo(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(prefix: str) -> list[tuple[str, str]]:
    """(mount point, fstype) of every mount at or below `prefix`, deepest first (unmount order)."""
    prefix = os.path.realpath(prefix).rstrip("/")
    found: list[tuple[str, str]] = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            parts = line.split(" ")
            mp = unescape_mountinfo(parts[4])
            if mp == prefix or mp.startswith(prefix + "/"):
                sep = parts.index("-")
                found.append((mp, parts[sep + 1]))
    found.sort(key=lambda m: m[0].count("/"), reverse=True)
    return found


def is_mountpoint(path: str) -> bool:
    path = os.path.realpath(path)
    return any(mp == path for mp, _ in mounts_under(path))


def fs_magic(path: str) -> int:
    """statfs(2) f_type of the filesystem holding `path`."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit; f_type comes first
    if _libc.statfs(_b(path), buf) != 0:
        raise _oserror("statfs", path)
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def syncfs(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            raise _oserror("syncfs", path)
    finally:
        os.close(fd)


def page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise errors.PermissionDenied(f"{what} needs root")
