"""Compat ABIs on x86_64: 32-bit (int 0x80) and x32 calls are covered by the default profile too."""

from __future__ import annotations

import errno

import pytest
import seccomp_child
from seccomp_child import in_child

from berth.oci.defaults import DEFAULT_CAPABILITIES
from berth.seccomp import compile_bpf, default_profile


@pytest.fixture
def ia32():
    fn = seccomp_child.ia32_syscall_fn()
    if fn is None:
        pytest.skip("cannot map executable memory")
    seccomp_child._ia32 = fn
    control = in_child(None, [("ia32_getpid",)])
    if control["ia32_getpid"] < 0:
        pytest.skip(f"no ia32 emulation in this kernel ({control['ia32_getpid']})")
    yield
    seccomp_child._ia32 = None


def test_ia32_calls_are_filtered(cache_dir, ia32):
    control = in_child(None, [("ia32_unshare", 0)])
    assert control["ia32_unshare"] == 0
    bpf = compile_bpf(default_profile(list(DEFAULT_CAPABILITIES)))
    out = in_child(bpf, [("ia32_unshare", 0), ("ia32_mount", 0), ("ia32_getpid",)])
    assert out["ia32_unshare"] == -errno.EPERM and out["ia32_mount"] == -errno.EPERM
    assert out["ia32_getpid"] > 0


def test_ia32_without_the_x86_arch_is_killed(cache_dir, ia32):
    # the native-only filter does not know i386: libseccomp's bad-arch action (kill) applies
    import os

    p = default_profile(list(DEFAULT_CAPABILITIES))
    p["architectures"] = []
    bpf = compile_bpf(p)
    pid = os.fork()
    if pid == 0:
        try:
            seccomp_child._libc.prctl(38, 1, 0, 0, 0)
            from berth.seccomp import load_bpf

            load_bpf(bpf)
            seccomp_child.raw_syscall("ia32_getpid")
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 31


def test_x32_calls_are_filtered(cache_dir):
    bpf = compile_bpf(default_profile(list(DEFAULT_CAPABILITIES)))
    out = in_child(bpf, [("x32_unshare", 0), ("x32_getpid",)])
    assert out["x32_unshare"] == -errno.EPERM  # the filter answers before the kernel looks at the ABI
    assert out["x32_getpid"] != -errno.EPERM  # allowed: a pid, or ENOSYS where x32 is disabled
