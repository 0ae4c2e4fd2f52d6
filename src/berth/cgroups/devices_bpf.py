"""Device access rules on cgroup v2: an eBPF program (v1's devices.allow/deny lines: device_rules).

cgroup v2 has no device files; the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program attached to
the cgroup (BPF_CGROUP_DEVICE) on every mknod and open of a device node. We assemble that program
from the OCI rules and load it with the bpf() syscall through ctypes.

Rule semantics match v1's whitelist: the last rule that matches a request decides, and a request no
rule matches is allowed (a fresh v1 cgroup inherits "a *:* rwm"); OCI configs start with a deny-all
rule, which makes everything not allowed afterwards denied.
"""

import errno
import os
import struct

from berth import errors

from .device_rules import normalize

_ACC = {"m": 1, "r": 2, "w": 4}                 # BPF_DEVCG_ACC_MKNOD/READ/WRITE
_TYPE = {"b": 1, "c": 2}                        # BPF_DEVCG_DEV_BLOCK/CHAR


# --- a tiny eBPF assembler (only what this program needs) --------------------------------------

def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


_LDXW = 0x61            # dst = *(u32 *)(src + off)
_AND32K = 0x54
_RSH32K = 0x74
_MOV32X = 0xBC
_MOV64K = 0xB7
_JNEK = 0x55
_JEQK = 0x15
_EXIT = 0x95


def assemble(rules: list[dict]) -> bytes:
    """The filter program. r2 = type, r3 = requested access, r4 = major, r5 = minor."""
    prog = [
        _insn(_LDXW, 2, 1, 0), _insn(_AND32K, 2, imm=0xFFFF),
        _insn(_LDXW, 3, 1, 0), _insn(_RSH32K, 3, imm=16),
        _insn(_LDXW, 4, 1, 4),
        _insn(_LDXW, 5, 1, 8),
    ]
    # last match wins: test the rules newest first, the first hit decides
    for i in reversed(range(len(rules))):
        typ, mj, mn, access = normalize(rules[i], f"linux.resources.devices[{i}]")
        acc = sum(_ACC[a] for a in set(access))
        allow = bool(rules[i].get("allow"))
        block: list[tuple[int, int, int, int]] = []     # (code, dst, src, imm); offsets filled below
        if typ != "a":
            block.append((_JNEK, 2, 0, _TYPE[typ]))
        block.append((_MOV32X, 0, 3, 0))
        if allow:   # an allow rule matches when it grants every requested access bit
            block += [(_AND32K, 0, 0, ~acc & 0xFFFF), (_JNEK, 0, 0, 0)]
        else:       # a deny rule matches when it covers any requested access bit
            block += [(_AND32K, 0, 0, acc), (_JEQK, 0, 0, 0)]
        if mj >= 0:
            block.append((_JNEK, 4, 0, mj))
        if mn >= 0:
            block.append((_JNEK, 5, 0, mn))
        block += [(_MOV64K, 0, 0, 1 if allow else 0), (_EXIT, 0, 0, 0)]
        n = len(block)
        for j, (code, dst, src, imm) in enumerate(block):
            off = (n - j - 1) if code in (_JNEK, _JEQK) else 0      # jump past this block
            prog.append(_insn(code, dst, src, off, imm))
    prog += [_insn(_MOV64K, 0, imm=1), _insn(_EXIT)]
    return b"".join(prog)


# --- the bpf() syscall --------------------------------------------------------------------------

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_BPF_PROG_LOAD, _BPF_PROG_ATTACH, _BPF_PROG_DETACH = 5, 8, 9
_BPF_PROG_GET_FD_BY_ID, _BPF_PROG_QUERY = 13, 16
_PROG_TYPE_CGROUP_DEVICE, _ATTACH_CGROUP_DEVICE = 15, 6
_F_ALLOW_MULTI = 2

_libc = None


def _bpf(cmd: int, attr: bytearray) -> int:  # a ctypes char array (ctypes is imported lazily)
    global _libc
    import ctypes  # lazy: ctypes costs ~2.5 ms to import
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    nr = _SYS_BPF.get(os.uname().machine)
    if nr is None:
        raise errors.Unsupported(f"bpf() syscall number unknown on {os.uname().machine}")
    r = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), attr, ctypes.c_uint(ctypes.sizeof(attr)))
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r


def load(prog: bytes) -> int:
    """BPF_PROG_LOAD; returns the program fd. The verifier's log is in the error when it refuses."""
    import ctypes  # lazy: ctypes costs ~2.5 ms to import
    insns = ctypes.create_string_buffer(prog, len(prog))
    lic = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(65536)
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIQQIIQ", attr, 0, _PROG_TYPE_CGROUP_DEVICE, len(prog) // 8,
                     ctypes.addressof(insns), ctypes.addressof(lic), 1, len(log), ctypes.addressof(log))
    attr[48:48 + 12] = b"berth_devcg\0"
    try:
        return _bpf(_BPF_PROG_LOAD, attr)
    except OSError as e:
        detail = log.value.decode(errors="replace").strip()[-2000:]
        if e.errno == errno.EPERM:
            raise errors.PermissionDenied(f"loading the device-cgroup BPF program: {e.strerror}")
        raise errors.SystemError_(f"the kernel refused the device-cgroup BPF program: {e.strerror}"
                                  + (f"\n{detail}" if detail else ""))


def attached(cgroup_fd: int) -> list[int]:
    """Program ids attached (directly) to the cgroup for device checks."""
    import ctypes  # lazy: ctypes costs ~2.5 ms to import
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, _ATTACH_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), 64)
    _bpf(_BPF_PROG_QUERY, attr)
    cnt = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:cnt])


def apply(cgroup_dir: str, rules: list[dict]) -> None:
    """Replace the cgroup's device program with one built from `rules` (no gap without a filter)."""
    import ctypes  # lazy: ctypes costs ~2.5 ms to import
    prog = assemble(rules)                  # validates before touching the kernel
    try:
        cg = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise errors.NotFound(f"cgroup {cgroup_dir}: {e.strerror}")
    try:
        old = attached(cg)
        fd = load(prog)
        try:
            attr = ctypes.create_string_buffer(128)
            struct.pack_into("<IIII", attr, 0, cg, fd, _ATTACH_CGROUP_DEVICE, _F_ALLOW_MULTI)
            try:
                _bpf(_BPF_PROG_ATTACH, attr)
            except OSError as e:
                raise errors.SystemError_(f"cannot attach the device program to {cgroup_dir}: {e.strerror}")
        finally:
            os.close(fd)
        for pid in old:
            _detach(cg, pid, cgroup_dir)
    finally:
        os.close(cg)


def _detach(cg: int, prog_id: int, cgroup_dir: str) -> None:
    import ctypes  # lazy: ctypes costs ~2.5 ms to import
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<I", attr, 0, prog_id)
    try:
        pfd = _bpf(_BPF_PROG_GET_FD_BY_ID, attr)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        raise errors.SystemError_(f"cannot open the old device program {prog_id}: {e.strerror}")
    try:
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("<IIII", attr, 0, cg, pfd, _ATTACH_CGROUP_DEVICE, 0)
        try:
            _bpf(_BPF_PROG_DETACH, attr)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise errors.SystemError_(f"cannot detach device program {prog_id} from {cgroup_dir}: "
                                          f"{e.strerror}")
    finally:
        os.close(pfd)
