"""default_profile: Docker's rules, resolved by capability, arch and kernel, enforced for real."""

from __future__ import annotations

import errno
import json
import os

import pytest
from seccomp_child import in_child

from berth.oci.defaults import ALL_CAPABILITIES, DEFAULT_CAPABILITIES
from berth.seccomp import compile_bpf, default_profile
from berth.seccomp.profile import _data

DANGEROUS = [
    "mount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "keyctl",
    "add_key",
    "request_key",
    "reboot",
    "kexec_load",
    "init_module",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "io_uring_setup",
    "clone3",
    "swapon",
    "acct",
    "settimeofday",
    "syslog",
    "lookup_dcookie",
]


def allowed(profile: dict) -> set[str]:
    """Names allowed without an argument condition."""
    return {
        n
        for r in profile["syscalls"]
        if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
        for n in r["names"]
    }


def rules_for(profile: dict, name: str) -> list[dict]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_shape_for_x86_64():
    p = default_profile(list(DEFAULT_CAPABILITIES), arch="x86_64", kernel="6.1.0")
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = allowed(p)
    assert {"read", "write", "execve", "futex", "arch_prctl", "modify_ldt", "chroot", "ptrace"} <= names
    assert not names & set(DANGEROUS)
    assert "set_tls" not in names and "s390_runtime_instr" not in names  # other arches' syscalls


def test_clone_and_clone3_without_sys_admin():
    p = default_profile(list(DEFAULT_CAPABILITIES), arch="x86_64")
    (clone,) = rules_for(p, "clone")
    assert clone["args"] == [{"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": 0x7E020000}]
    (clone3,) = rules_for(p, "clone3")
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == errno.ENOSYS


def test_capabilities_open_their_syscalls():
    p = default_profile(["SYS_ADMIN", "cap_sys_ptrace", "CAP_SYS_MODULE", "CAP_SYS_BOOT"], arch="x86_64")
    names = allowed(p)
    assert {
        "mount",
        "umount2",
        "unshare",
        "setns",
        "clone",
        "clone3",
        "bpf",
        "kcmp",
        "init_module",
        "reboot",
    } <= names
    assert not rules_for(p, "clone3")[0].get("errnoRet")
    assert "chroot" not in names  # no CAP_SYS_CHROOT asked for
    everything = allowed(default_profile(list(ALL_CAPABILITIES), arch="x86_64"))
    assert {"keyctl", "add_key", "request_key", "kexec_load", "userfaultfd", "io_uring_setup"}.isdisjoint(
        everything
    )


def test_arch_and_kernel_conditions():
    s390 = default_profile([], arch="s390x")
    assert [r["args"][0]["index"] for r in rules_for(s390, "clone")] == [1]
    assert "s390_runtime_instr" in allowed(s390) and "arch_prctl" not in allowed(s390)
    assert default_profile([], arch="aarch64")["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "ptrace" not in allowed(default_profile([], arch="x86_64", kernel="4.4.0"))
    assert "ptrace" in allowed(default_profile([], arch="x86_64", kernel="4.8"))


def test_data_file_is_sane():
    data = _data()
    first = data["rules"][0]["names"]
    assert first == sorted(first) and len(first) == len(set(first))
    for rule in data["rules"]:
        assert set(rule.get("when", {})) <= {"caps", "notCaps", "arches", "notArches", "minKernel"}, rule


def test_result_is_a_fresh_copy():
    a = default_profile([])
    a["syscalls"][0]["names"].append("mount")
    a["syscalls"][2]["args"][0]["value"] = 1
    assert "mount" not in default_profile([])["syscalls"][0]["names"]
    assert json.dumps(default_profile([])) != json.dumps(a)


def test_enforced_blocks_dangerous_allows_normal(cache_dir):
    bpf = compile_bpf(default_profile(list(DEFAULT_CAPABILITIES)))
    calls = [
        ("mount", 0, 0, 0, 0, 0),
        ("umount2", 0, 0),
        ("unshare", 0),
        ("setns", -1, 0),
        ("keyctl", 9999),
        ("add_key", 0, 0, 0, 0, 0),
        ("request_key", 0, 0, 0, 0),
        ("reboot", 0, 0, 0, 0),
        ("kexec_load", 0, 0, 0, 0),
        ("init_module", 0, 0, 0),
        ("bpf", 9999, 0, 0),
        ("userfaultfd", 0),
        ("perf_event_open", 0, 0, 0, 0, 0),
        ("open_by_handle_at", -1, 0, 0),
        ("pivot_root", 0, 0),
    ]
    out = in_child(bpf, calls + [("clone3", 0, 0), ("nr600",), ("getpid",)])
    assert "error" not in out, out
    assert {name: out[name] for name, *_ in calls} == {name: -errno.EPERM for name, *_ in calls}
    assert out["clone3"] == -errno.ENOSYS and out["nr600"] == -errno.ENOSYS
    assert out["getpid"] > 0
    assert out["status"]["Seccomp"] == "2"


def test_control_without_filter_these_calls_are_not_eperm():
    out = in_child(None, [("mount", 0, 0, 0, 0, 0), ("unshare", 0), ("keyctl", 9999), ("clone3", 0, 0)])
    assert out["mount"] != -errno.EPERM and out["unshare"] == 0 and out["keyctl"] != -errno.EPERM
    assert out["clone3"] != -errno.ENOSYS


def test_sys_admin_profile_allows_mount_and_unshare(cache_dir):
    bpf = compile_bpf(default_profile([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]))
    out = in_child(bpf, [("unshare", 0), ("mount", 0, 0, 0, 0, 0), ("keyctl", 9999)])
    assert out["unshare"] == 0 and out["mount"] != -errno.EPERM
    assert out["keyctl"] == -errno.EPERM


def test_busybox_runs_under_the_default_profile(cache_dir):
    """After loading, the child execs busybox: exec, fork (clone without namespace flags), pipes work."""
    bpf = compile_bpf(default_profile(list(DEFAULT_CAPABILITIES)))
    from berth.seccomp import load_bpf

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            import ctypes

            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)
            load_bpf(bpf)
            os.execv(
                "/bin/busybox",
                [
                    "busybox",
                    "sh",
                    "-c",
                    "grep Seccomp: /proc/self/status | (read a b; echo $b); /bin/busybox true; "
                    "/bin/busybox unshare -m true 2>/dev/null || echo unshare-denied",
                ],
            )
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert out.split() == ["2", "unshare-denied"]


@pytest.mark.parametrize("caps", [[], list(ALL_CAPABILITIES)])
def test_compiles_for_any_capability_set(cache_dir, caps):
    assert len(compile_bpf(default_profile(caps))) % 8 == 0
