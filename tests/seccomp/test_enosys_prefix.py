"""The ENOSYS prefix, run in a tiny classic-BPF interpreter (covers arches this host cannot call)."""

from __future__ import annotations

import struct

import pytest

from berth.seccomp.enosys import AUDIT_ARCH_X86_64, SCMP_ARCH_X32, X32_SYSCALL_BIT, prefix

X86 = 0x40000003
AARCH64 = 0xC00000B7
MAIN = "main"
ENOSYS = 0x00050000 | 38


def run(prog: bytes, nr: int, arch: int) -> object:
    insns = [struct.unpack("=HBBI", prog[i : i + 8]) for i in range(0, len(prog), 8)]
    data = struct.pack("=iI", nr, arch)
    pc, acc = 0, 0
    while pc < len(insns):
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == 0x06:
            return k
        elif code == 0x05:
            pc += k
        elif code in (0x15, 0x25, 0x45):
            cond = {0x15: acc == k, 0x25: acc > k, 0x45: bool(acc & k)}[code]
            pc += jt if cond else jf
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1
    assert pc == len(insns), "fell off somewhere other than the end"
    return MAIN


@pytest.fixture
def prog() -> bytes:
    return prefix({AUDIT_ARCH_X86_64: 456, X86: 400, SCMP_ARCH_X32: X32_SYSCALL_BIT | 450})


@pytest.mark.parametrize(
    ("nr", "arch", "want"),
    [
        (0, AUDIT_ARCH_X86_64, MAIN),
        (456, AUDIT_ARCH_X86_64, MAIN),
        (457, AUDIT_ARCH_X86_64, ENOSYS),
        (-1, AUDIT_ARCH_X86_64, ENOSYS),  # 0xffffffff has the x32 bit set: above x32's max
        (X32_SYSCALL_BIT | 39, AUDIT_ARCH_X86_64, MAIN),
        (X32_SYSCALL_BIT | 450, AUDIT_ARCH_X86_64, MAIN),
        (X32_SYSCALL_BIT | 451, AUDIT_ARCH_X86_64, ENOSYS),
        (400, X86, MAIN),
        (401, X86, ENOSYS),
        (9999, AARCH64, MAIN),  # an arch not in the filter: libseccomp's program decides
    ],
)
def test_prefix_decisions(prog, nr, arch, want):
    assert run(prog, nr, arch) == want


def test_without_x32_the_x32_calls_go_to_the_program():
    prog = prefix({AUDIT_ARCH_X86_64: 456})
    assert run(prog, X32_SYSCALL_BIT | 9999, AUDIT_ARCH_X86_64) == MAIN
    assert run(prog, 9999, AUDIT_ARCH_X86_64) == ENOSYS


def test_empty_map_is_a_no_op():
    assert run(prefix({}), 9999, AUDIT_ARCH_X86_64) == MAIN
