"""load_bpf: install a compiled program with seccomp(2); stdlib only, no libseccomp.

The caller (the container's init, as the last step before execve) must ensure ONE of:
- no_new_privs is set (prctl(PR_SET_NO_NEW_PRIVS, 1)) — the OCI ``process.noNewPrivileges`` case; or
- the thread has CAP_SYS_ADMIN in its effective set in its user namespace. When noNewPrivileges is false
  and the process's final capabilities lack CAP_SYS_ADMIN, the runtime has to load the filter before it
  drops capabilities, and the profile must then allow the calls init still makes (capset, prctl,
  setuid/setgid/setgroups, close, execve).
Otherwise the kernel answers EACCES, reported as ``errors.PermissionDenied``.
"""

import os

from berth import errors
from berth.linux import cdll  # the ctypes C core without the ctypes package (~2.5 ms per start)
from berth.seccomp.validate import validate_flags

_SECCOMP_SET_MODE_FILTER = 1
_BPF_MAXINSNS = 4096
_SYS_SECCOMP = {
    "x86_64": 317,
    "i386": 354,
    "i686": 354,
    "aarch64": 277,
    "riscv64": 277,
    "armv7l": 383,
    "armv8l": 383,
    "s390x": 348,
    "ppc64le": 358,
    "ppc64": 358,
}
_FLAG_TSYNC = 1


class _SockFprog(cdll.Structure):
    # filter is c_char_p: assigning the program's bytes stores a pointer to them (kept alive by the struct)
    _fields_ = [("len", cdll.c_ushort), ("filter", cdll.c_char_p)]


_syscall = None


def _libc_syscall():
    global _syscall
    if _syscall is None:
        fn = cdll.Lib().syscall
        fn.restype = cdll.c_long
        _syscall = fn
    return _syscall


def load_bpf(bpf: bytes, flags: list[str] | None = None) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog) for the calling thread (all threads with TSYNC).

    flags are OCI names (SECCOMP_FILTER_FLAG_TSYNC, _LOG, _SPEC_ALLOW, _WAIT_KILLABLE_RECV).
    """
    bits = validate_flags(flags or [], "seccomp flags")
    if not bpf or len(bpf) % 8:
        raise errors.InvalidArgument(
            f"seccomp: a BPF program is a non-empty array of 8-byte instructions, got {len(bpf)} bytes"
        )
    count = len(bpf) // 8
    if count > _BPF_MAXINSNS:
        raise errors.InvalidArgument(
            f"seccomp: program has {count} instructions, the kernel accepts at most {_BPF_MAXINSNS}"
        )
    machine = os.uname().machine
    nr = _SYS_SECCOMP.get(machine)
    if nr is None:
        raise errors.Unsupported(f"seccomp: berth does not know the seccomp syscall number on {machine}")
    prog = _SockFprog(count, bytes(bpf))
    rc = _libc_syscall()(
        cdll.c_long(nr), cdll.c_long(_SECCOMP_SET_MODE_FILTER), cdll.c_long(bits), cdll.byref(prog)
    )
    if rc == 0:
        return
    if rc > 0 and bits & _FLAG_TSYNC:
        raise errors.SystemError_(f"seccomp: thread {rc} could not be synchronised to the filter (TSYNC)")
    err = cdll.get_errno()
    if err == 13:  # EACCES
        raise errors.PermissionDenied(
            "seccomp: loading a filter needs no_new_privs (PR_SET_NO_NEW_PRIVS) or CAP_SYS_ADMIN"
        )
    if err == 22 and bits:  # EINVAL
        raise errors.Unsupported(
            f"seccomp: the kernel rejected the program or the flags {flags}: {os.strerror(err)}"
        )
    raise errors.SystemError_(f"seccomp: seccomp(SET_MODE_FILTER) failed: {os.strerror(err)}")
