"""A prefix for a compiled filter: syscalls newer than any the profile names get ENOSYS, not the default.

A deny-by-default profile written before a syscall existed would answer it with EPERM, and libcs only
fall back to an older syscall on ENOSYS (faccessat2 -> faccessat, clone3 -> clone, ...). So, per
architecture in the filter, any syscall number above the highest the profile names returns
ENOSYS; everything else goes on to the libseccomp program unchanged. The prefix can only deny (with
ENOSYS), never allow, so it cannot widen a profile.
"""

from __future__ import annotations

import struct

_INSN = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k (host byte order)
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGT_K = 0x25
_JSET_K = 0x45
_JA = 0x05
_RET_K = 0x06
_OFF_NR, _OFF_ARCH = 0, 4  # struct seccomp_data
_RET_ERRNO = 0x00050000
_ENOSYS = 38

AUDIT_ARCH_X86_64 = 0xC000003E
SCMP_ARCH_X32 = 0x4000003E  # libseccomp's token; the kernel reports x32 calls as x86_64 + this bit:
X32_SYSCALL_BIT = 0x40000000


def prefix(max_nr: dict[int, int]) -> bytes:
    """BPF instructions to put before the libseccomp program.

    max_nr: arch token -> highest syscall number the profile names on that arch (x32's with its bit).
    """
    arches = [a for a in max_nr if a != SCMP_ARCH_X32]
    # Layout: [ld arch] [jeq per arch] [ja main] [block per arch...] [ret ENOSYS] (main follows)
    # Each block: ld nr; (x86_64 only: jset x32-bit -> x32 check or main); jgt max -> enosys else main;
    # the x32 check (when x32 is in the filter): jgt max_x32 -> enosys else main.
    blocks: list[list[tuple]] = []
    for a in arches:
        block: list[tuple] = [(_LD_W_ABS, None, None, _OFF_NR)]
        if a == AUDIT_ARCH_X86_64:
            x32 = max_nr.get(SCMP_ARCH_X32)
            # jt: skip the native check (1 insn) to the x32 check, or straight to main
            block.append((_JSET_K, "x32" if x32 is not None else "main", 0, X32_SYSCALL_BIT))
            block.append((_JGT_K, "enosys", "main", max_nr[a]))
            if x32 is not None:
                block.append((_JGT_K, "enosys", "main", x32))
        else:
            block.append((_JGT_K, "enosys", "main", max_nr[a]))
        blocks.append(block)

    head = 1 + len(arches) + 1
    starts = []
    pos = head
    for b in blocks:
        starts.append(pos)
        pos += len(b)
    enosys = pos
    main = pos + 1

    out = [_INSN.pack(_LD_W_ABS, 0, 0, _OFF_ARCH)]
    for i, a in enumerate(arches):
        pc = 1 + i
        out.append(_INSN.pack(_JEQ_K, _rel(starts[i], pc), 0, a))
    out.append(_INSN.pack(_JA, 0, 0, main - (head - 1) - 1))
    for start, block in zip(starts, blocks, strict=True):
        for j, (code, jt, jf, k) in enumerate(block):
            pc = start + j
            labels = {"enosys": enosys, "main": main, "x32": start + len(block) - 1}
            jt_off = _rel(labels[jt], pc) if isinstance(jt, str) else (jt or 0)
            jf_off = _rel(labels[jf], pc) if isinstance(jf, str) else (jf or 0)
            out.append(_INSN.pack(code, jt_off, jf_off, k))
    out.append(_INSN.pack(_RET_K, 0, 0, _RET_ERRNO | _ENOSYS))
    return b"".join(out)


def _rel(target: int, pc: int) -> int:
    off = target - pc - 1
    if not 0 <= off <= 255:
        raise ValueError(f"BPF jump offset {off} out of range")
    return off
