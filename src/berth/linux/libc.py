"""Thin ctypes wrappers over the libc calls Python 3.11 lacks (unshare, setns, mount, pivot_root, ...).

The ctypes objects come from berth.linux.cdll: the same C core without the ctypes package (~2.5 ms less
per container start).

Every wrapper raises OSError(errno, "<call> <what>: <strerror>") so callers can name what failed.
"""

import errno
import os

from berth.linux import cdll

_libc = cdll.Lib()
_syscall = _libc.syscall
_syscall.restype = cdll.c_long

# x86_64 syscall numbers for calls glibc 2.36 does not wrap (or wraps differently).
SYS_capget = 125
SYS_capset = 126
SYS_pivot_root = 155
SYS_close_range = 436
SYS_openat2 = 437
SYS_pidfd_send_signal = 424
# the new mount API (the same numbers on every architecture but alpha)
SYS_move_mount = 429
SYS_fsopen = 430
SYS_fsconfig = 431
SYS_fsmount = 432

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

# fsopen/fsconfig/fsmount/move_mount
FSOPEN_CLOEXEC = 1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
MOUNT_ATTR_RDONLY = 1
MOVE_MOUNT_F_EMPTY_PATH = 4
AT_FDCWD = -100

BTRFS_SUPER_MAGIC = 0x9123683E  # statfs f_type

# clone / namespace flags
CLONE_NEWTIME = 0x80
CLONE_NEWNS = 0x20000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# prctl options
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


def _fail(what: str) -> OSError:
    e = cdll.get_errno()
    return OSError(e, f"{what}: {os.strerror(e)}")


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    if _libc.mount(_b(source), _b(target), _b(fstype), cdll.c_ulong(flags), _b(data)) != 0:
        raise _fail(f"mount {source or ''} on {target} (type {fstype or '-'}, flags {flags:#x}, data {data or ''})")


def umount2(target: str, flags: int = 0) -> None:
    if _libc.umount2(_b(target), flags) != 0:
        raise _fail(f"umount {target}")


def umount(target: str, *, detach_if_busy: bool = True) -> None:
    """Unmount target, and only raise if it stays mounted: a busy mount is detached lazily (unless
    detach_if_busy is False), a target that is not (any more) a mount point is no error."""
    if _libc.umount2(_b(target), 0) == 0:
        return
    e = cdll.get_errno()
    if e == errno.EBUSY and detach_if_busy and _libc.umount2(_b(target), MNT_DETACH) == 0:
        return
    if e not in (errno.EINVAL, errno.ENOENT):
        raise OSError(e, f"umount {target}: {os.strerror(e)}")


def _check(r: int, what: str) -> int:
    if r < 0:
        raise _fail(what)
    return r


def mount_fsconfig(fstype: str, target: str, options: list[tuple[str, str | None]],
                   readonly: bool = False) -> None:
    """Mount with fsopen/fsconfig/fsmount/move_mount: every option is its own string, so a long option
    list (many overlay `lowerdir+` entries) is not bound by mount(2)'s one-page data limit."""
    fsfd = _check(_syscall(SYS_fsopen, fstype.encode(), cdll.c_uint(FSOPEN_CLOEXEC)), f"fsopen {fstype}")
    try:
        for key, value in options:
            _check(_syscall(SYS_fsconfig, fsfd, cdll.c_uint(FSCONFIG_SET_STRING), key.encode(), _b(value), 0),
                   f"fsconfig {fstype} {key}={value}")
        _check(_syscall(SYS_fsconfig, fsfd, cdll.c_uint(FSCONFIG_CMD_CREATE), None, None, 0),
               f"fsconfig {fstype} create (for {target})")
        attrs = cdll.c_uint(MOUNT_ATTR_RDONLY if readonly else 0)
        mfd = _check(_syscall(SYS_fsmount, fsfd, cdll.c_uint(FSMOUNT_CLOEXEC), attrs),
                     f"fsmount {fstype} (for {target})")
        try:
            _check(_syscall(SYS_move_mount, mfd, b"", AT_FDCWD, _b(target),
                            cdll.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount {fstype} to {target}")
        finally:
            os.close(mfd)
    finally:
        os.close(fsfd)


def mount_in_dir(cwd: str, source: str, target: str, fstype: str, flags: int, data: str) -> None:
    """mount(2) with relative paths in data, resolved against cwd. The chdir happens in a short-lived
    child so the caller's (possibly threaded) process keeps its working directory."""
    args = (_b(source), _b(target), _b(fstype), cdll.c_ulong(flags), _b(data))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no Python-level work beyond the syscall
        try:
            os.close(r)
            os.chdir(cwd)
            rc = _libc.mount(*args)
            os.write(w, str(0 if rc == 0 else cdll.get_errno()).encode())
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
        raise OSError(code if code > 0 else errno.EIO, f"mount {fstype} on {target} (in {cwd}): "
                      f"{os.strerror(code) if code > 0 else 'child failed'}")


class _Statfs(cdll.Structure):
    # struct statfs is 120 bytes on LP64 with f_type first; the rest is room for what the call fills in
    _fields_ = [("f_type", cdll.c_long)] + [(f"_{i}", cdll.c_long) for i in range(15)]


def fs_magic(path: str) -> int:
    """statfs(2) f_type of the filesystem holding path (e.g. BTRFS_SUPER_MAGIC)."""
    buf = _Statfs()
    if _libc.statfs(_b(path), cdll.byref(buf)) != 0:
        raise _fail(f"statfs {path}")
    return buf.f_type & 0xFFFFFFFF


def syncfs(fd: int, what: str = "") -> None:
    """Flush the whole filesystem holding the file open at fd (what: its path, for the error)."""
    if _libc.syncfs(fd) != 0:
        raise _fail(f"syncfs {what or fd}")


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        raise _fail(f"unshare {flags:#x}")


def setns(fd: int, nstype: int = 0, what: str = "") -> None:
    if _libc.setns(fd, nstype) != 0:
        raise _fail(f"setns {what or fd}")


def pivot_root(new_root: str, put_old: str) -> None:
    if _syscall(SYS_pivot_root, _b(new_root), _b(put_old)) != 0:
        raise _fail("pivot_root")


def sethostname(name: str) -> None:
    b = name.encode()
    if _libc.sethostname(b, len(b)) != 0:
        raise _fail(f"sethostname {name!r}")


def setdomainname(name: str) -> None:
    b = name.encode()
    if _libc.setdomainname(b, len(b)) != 0:
        raise _fail(f"setdomainname {name!r}")


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    r = _libc.prctl(option, cdll.c_ulong(a2), cdll.c_ulong(a3), cdll.c_ulong(a4), cdll.c_ulong(a5))
    if r < 0:
        raise _fail(f"prctl {option}")
    return r


def sched_getcpu() -> int:
    """The CPU this thread runs on now (-1 if unknown)."""
    return _libc.sched_getcpu()


def chroot(path: str) -> None:
    os.chroot(path)


def close_range_cloexec(first: int) -> None:
    """Mark every fd >= first close-on-exec (CLOSE_RANGE_CLOEXEC), so nothing of the host leaks through execve."""
    if _syscall(SYS_close_range, cdll.c_uint(first), cdll.c_uint(0xFFFFFFFF), cdll.c_uint(4)) != 0:
        # Older kernels: walk /proc/self/fd.
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd >= first:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass


class _OpenHow(cdll.Structure):
    _fields_ = [("flags", cdll.c_uint64), ("mode", cdll.c_uint64), ("resolve", cdll.c_uint64)]


RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


SYS_mount_setattr = 442
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
# MOUNT_ATTR_RDONLY/NOSUID/NODEV/NOEXEC have the values of MS_RDONLY/NOSUID/NODEV/NOEXEC.
_MOUNT_ATTRS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC


class _MountAttr(cdll.Structure):
    _fields_ = [("attr_set", cdll.c_uint64), ("attr_clr", cdll.c_uint64), ("propagation", cdll.c_uint64),
                ("userns_fd", cdll.c_uint64)]


def mount_setattr_recursive(fd: int, ms_flags: int) -> None:
    """Set ro/nosuid/nodev/noexec (given as MS_* flags) on the mount open at fd and every mount below."""
    if ms_flags & ~_MOUNT_ATTRS:
        raise ValueError(f"mount_setattr: flags {ms_flags:#x} beyond ro/nosuid/nodev/noexec")
    attr = _MountAttr(ms_flags, 0, 0, 0)
    if _syscall(SYS_mount_setattr, fd, b"", AT_EMPTY_PATH | AT_RECURSIVE, cdll.byref(attr),
                cdll.sizeof(attr)) != 0:
        raise _fail("mount_setattr")


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    how = _OpenHow(flags, mode, resolve)
    fd = _syscall(SYS_openat2, dirfd, _b(path), cdll.byref(how), cdll.sizeof(how))
    if fd < 0:
        raise _fail(f"open {path}")
    return fd


class _CapHeader(cdll.Structure):
    _fields_ = [("version", cdll.c_uint32), ("pid", cdll.c_int)]


class _CapData(cdll.Structure):
    _fields_ = [("effective", cdll.c_uint32), ("permitted", cdll.c_uint32), ("inheritable", cdll.c_uint32)]


_CAP_V3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        sh = 32 * i
        data[i].effective = (effective >> sh) & 0xFFFFFFFF
        data[i].permitted = (permitted >> sh) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> sh) & 0xFFFFFFFF
    if _syscall(SYS_capset, cdll.byref(hdr), data) != 0:
        raise _fail("capset")


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    if _syscall(SYS_pidfd_send_signal, pidfd, sig, None, 0) != 0:
        raise _fail(f"pidfd_send_signal {sig}")


def ioctl_int(fd: int, request: int, arg: int = 0) -> int:
    v = cdll.c_int(arg)
    r = _libc.ioctl(fd, cdll.c_ulong(request), cdll.byref(v))
    if r < 0:
        raise _fail(f"ioctl {request:#x}")
    return v.value


def ioctl_val(fd: int, request: int, arg: int = 0) -> None:
    if _libc.ioctl(fd, cdll.c_ulong(request), cdll.c_ulong(arg)) < 0:
        raise _fail(f"ioctl {request:#x}")


class _Rlimit(cdll.Structure):
    _fields_ = [("cur", cdll.c_uint64), ("max", cdll.c_uint64)]


_RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF


def setrlimit(resource: int, soft: int, hard: int) -> None:
    """setrlimit via prlimit(0, ...): no `resource` module (a shared library to load on every start)."""
    new = _Rlimit(min(soft, _RLIM_INFINITY), min(hard, _RLIM_INFINITY))
    if _libc.prlimit(0, resource, cdll.byref(new), None) != 0:
        raise _fail(f"setrlimit {resource}")


def getrlimit(resource: int) -> tuple[int, int]:
    old = _Rlimit()
    if _libc.prlimit(0, resource, None, cdll.byref(old)) != 0:
        raise _fail(f"getrlimit {resource}")
    return old.cur, old.max


SYS_keyctl = 250
KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name: str) -> None:
    """A fresh session keyring, so the container does not share the caller's keys."""
    if _syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, _b(name)) < 0:
        raise _fail("keyctl join session keyring")


PER_LINUX = 0x0000
PER_LINUX32 = 0x0008


def personality(persona: int) -> None:
    if _libc.personality(cdll.c_ulong(persona)) == -1:
        raise _fail(f"personality {persona:#x}")


class _IfreqFlags(cdll.Structure):
    # struct ifreq: a 16-byte name, then a 24-byte union whose first member is ifr_flags
    _fields_ = [("name0", cdll.c_ulong), ("name1", cdll.c_ulong), ("flags", cdll.c_ushort),
                ("_pad0", cdll.c_ushort), ("_pad1", cdll.c_uint), ("_pad2", cdll.c_ulong), ("_pad3", cdll.c_ulong)]


SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def link_up(name: str) -> None:
    """Set IFF_UP on a network interface of our network namespace (SIOCGIFFLAGS/SIOCSIFFLAGS)."""
    import _socket

    raw = name.encode()[:15].ljust(16, b"\0")
    req = _IfreqFlags(int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little"), 0, 0, 0, 0, 0)
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        if _libc.ioctl(s.fileno(), cdll.c_ulong(SIOCGIFFLAGS), cdll.byref(req)) < 0:
            raise _fail(f"ioctl SIOCGIFFLAGS {name}")
        if not req.flags & IFF_UP:
            req.flags |= IFF_UP
            if _libc.ioctl(s.fileno(), cdll.c_ulong(SIOCSIFFLAGS), cdll.byref(req)) < 0:
                raise _fail(f"ioctl SIOCSIFFLAGS {name}")
    finally:
        s.close()
