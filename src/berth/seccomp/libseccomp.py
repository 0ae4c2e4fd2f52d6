"""A thin ctypes binding of libseccomp.so.2: only what compiling an OCI profile needs.

Imported lazily by ``berth.seccomp.compiler`` on a cache miss; the container-start hot path (cache hit +
``load_bpf``) never imports this module, so it never dlopens libseccomp.
"""

from __future__ import annotations

import ctypes
import os

from berth import errors

# libseccomp's action values (seccomp.h); ERRNO and TRACE carry a 16-bit payload.
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_NOTIFY = 0x7FC00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000


def act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def act_trace(code: int) -> int:
    return 0x7FF00000 | (code & 0xFFFF)


# enum scmp_compare
CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ = range(1, 8)

# enum scmp_filter_attr
FLTATR_ACT_DEFAULT = 1
FLTATR_ACT_BADARCH = 2
FLTATR_CTL_NNP = 3
FLTATR_CTL_TSYNC = 4
FLTATR_CTL_LOG = 6
FLTATR_CTL_SSB = 7
FLTATR_CTL_OPTIMIZE = 8

NR_SCMP_ERROR = -1


class ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """The loaded library, with prototypes set (loaded once per process)."""
    global _lib
    if _lib is not None:
        return _lib
    try:
        so = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as e:
        raise errors.Unsupported(f"seccomp: cannot load libseccomp.so.2 (install libseccomp2): {e}")
    ctx = ctypes.c_void_p
    protos = {
        "seccomp_init": (ctx, [ctypes.c_uint32]),
        "seccomp_release": (None, [ctx]),
        "seccomp_arch_add": (ctypes.c_int, [ctx, ctypes.c_uint32]),
        "seccomp_arch_exist": (ctypes.c_int, [ctx, ctypes.c_uint32]),
        "seccomp_arch_native": (ctypes.c_uint32, []),
        "seccomp_arch_resolve_name": (ctypes.c_uint32, [ctypes.c_char_p]),
        "seccomp_syscall_resolve_name": (ctypes.c_int, [ctypes.c_char_p]),
        "seccomp_syscall_resolve_name_arch": (ctypes.c_int, [ctypes.c_uint32, ctypes.c_char_p]),
        "seccomp_rule_add_array": (
            ctypes.c_int,
            [ctx, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ArgCmp)],
        ),
        "seccomp_attr_set": (ctypes.c_int, [ctx, ctypes.c_int, ctypes.c_uint32]),
        "seccomp_export_bpf": (ctypes.c_int, [ctx, ctypes.c_int]),
        "seccomp_version": (ctypes.POINTER(_Version), []),
    }
    for name, (res, args) in protos.items():
        fn = getattr(so, name)
        fn.restype = res
        fn.argtypes = args
    _lib = so
    return so


def version() -> tuple[int, int, int]:
    v = lib().seccomp_version().contents
    return (v.major, v.minor, v.micro)


def check(rc: int, what: str) -> None:
    """libseccomp returns -errno on failure."""
    if rc < 0:
        raise errors.SystemError_(f"seccomp: {what} failed: {os.strerror(-rc)}")


class Filter:
    """An owned scmp_filter_ctx; use as a context manager so it is always released."""

    def __init__(self, default_action: int) -> None:
        self._lib = lib()
        self.ctx = self._lib.seccomp_init(default_action)
        if not self.ctx:
            raise errors.InvalidArgument(f"seccomp: seccomp_init rejected default action {default_action:#x}")

    def __enter__(self) -> Filter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self.ctx:
            self._lib.seccomp_release(self.ctx)
            self.ctx = None

    def arch_add(self, token: int) -> None:
        if self._lib.seccomp_arch_exist(self.ctx, token) == 0:
            return  # already present (the native arch always is)
        check(self._lib.seccomp_arch_add(self.ctx, token), f"seccomp_arch_add({token:#x})")

    def attr_set(self, attr: int, value: int) -> None:
        check(self._lib.seccomp_attr_set(self.ctx, attr, value), f"seccomp_attr_set({attr})")

    def rule_add(self, action: int, syscall: int, args: list[tuple[int, int, int, int]]) -> int:
        """Add one rule; args are (index, op, datum_a, datum_b), ANDed. Returns libseccomp's rc."""
        arr = (ArgCmp * len(args))(*[ArgCmp(i, op, a, b) for i, op, a, b in args]) if args else None
        return self._lib.seccomp_rule_add_array(self.ctx, action, syscall, len(args), arr)

    def export_bpf(self) -> bytes:
        fd = os.memfd_create("berth-seccomp", os.MFD_CLOEXEC)
        try:
            check(self._lib.seccomp_export_bpf(self.ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)


def resolve_syscall(name: str) -> int:
    """The native syscall number (or a negative pseudo-number for another arch's syscall);
    NR_SCMP_ERROR when libseccomp does not know the name."""
    return lib().seccomp_syscall_resolve_name(name.encode())


def resolve_syscall_arch(arch: int, name: str) -> int:
    """The syscall's number on arch (x32's carry the x32 bit); negative when it has none there."""
    return lib().seccomp_syscall_resolve_name_arch(arch, name.encode())


def native_arch() -> int:
    return lib().seccomp_arch_native()


def resolve_arch(name: str) -> int:
    """libseccomp arch token for its lower-case name ("x86_64", "x32", ...); 0 when unknown."""
    return lib().seccomp_arch_resolve_name(name.encode())
