"""compile_bpf + load_bpf on the real kernel, each filter in a forked child."""

from __future__ import annotations

import errno

import pytest
from seccomp_child import _libc, in_child, raw_syscall

from berth import errors
from berth.seccomp import compile_bpf, load_bpf

EACCES, EPERM, ESRCH = errno.EACCES, errno.EPERM, errno.ESRCH
QUERY = 0xFFFFFFFF  # personality(0xffffffff) only reads the persona
PER_LINUX32 = 0x8


def allow_but(*rules: dict, **extra) -> dict:
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules), **extra}


def test_program_shape(cache_dir):
    bpf = compile_bpf(allow_but({"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}))
    assert bpf and len(bpf) % 8 == 0


def test_unfiltered_control():
    # The syscalls below behave differently without a filter: the other tests can fail.
    out = in_child(None, [("getpid",), ("unshare", 0), ("kill", 999999, 0), ("personality", PER_LINUX32)])
    assert out["getpid"] > 0 and out["unshare"] == 0 and out["kill"] == -ESRCH and out["personality"] >= 0
    assert out["status"]["Seccomp"] == "0"


def test_blocked_syscall_gets_eperm_by_default(cache_dir):
    bpf = compile_bpf(allow_but({"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}))
    out = in_child(bpf, [("unshare", 0), ("getpid",)])
    assert out["unshare"] == -EPERM
    assert out["getpid"] > 0
    assert out["status"]["Seccomp"] == "2" and out["status"]["Seccomp_filters"] == "1"


# what a forked child needs to report back through a pipe under a deny-by-default filter
CHILD_NEEDS = ["write", "close", "exit_group", "exit", "openat", "read", "fstat", "newfstatat", "lseek",
               "ioctl", "mmap", "munmap", "brk", "rt_sigprocmask", "rt_sigaction", "getpid", "futex",
               "madvise", "mprotect"]  # fmt: skip


def deny_but(names: list[str], **extra) -> dict:
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        **extra,
    }


def test_errno_ret_and_default_errno_ret(cache_dir):
    bpf = compile_bpf(allow_but({"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}))
    assert in_child(bpf, [("unshare", 0)])["unshare"] == -77
    # getrandom (318) raises the highest named syscall above unshare (272): unshare gets the default
    bpf = compile_bpf(deny_but([*CHILD_NEEDS, "getrandom"], defaultErrnoRet=99))
    out = in_child(bpf, [("unshare", 0), ("getpid",)])
    assert out["unshare"] == -99 and out["getpid"] > 0


def test_syscalls_newer_than_the_profile_get_enosys(cache_dir):
    bpf = compile_bpf(deny_but([*CHILD_NEEDS, "getrandom"]))
    out = in_child(bpf, [("unshare", 0), ("clone3", 0, 0), ("nr600",), ("getpid",)])
    assert out["unshare"] == -EPERM  # below the profile's newest syscall: the default action
    assert out["clone3"] == -errno.ENOSYS and out["nr600"] == -errno.ENOSYS  # above it
    assert out["getpid"] > 0
    with_x32 = compile_bpf(deny_but([*CHILD_NEEDS, "getrandom"], architectures=["SCMP_ARCH_X32"]))
    out = in_child(with_x32, [("unshare", 0), ("x32_nr600",), ("getpid",)])
    assert out == {**out, "unshare": -EPERM, "x32_nr600": -errno.ENOSYS}


def test_no_enosys_prefix_unless_default_is_errno(cache_dir):
    bpf = compile_bpf(allow_but({"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}))
    assert in_child(bpf, [("nr600",)])["nr600"] == -errno.ENOSYS  # the kernel's own answer
    bpf = compile_bpf(deny_but(CHILD_NEEDS, defaultErrnoRet=errno.ENOSYS))
    assert in_child(bpf, [("unshare", 0)])["unshare"] == -errno.ENOSYS


def test_arg_filter_allows_one_value(cache_dir):
    # personality is denied unless arg0 is the query value
    rule = {
        "names": ["personality"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": EACCES,
        "args": [{"index": 0, "value": QUERY, "op": "SCMP_CMP_NE"}],
    }
    bpf = compile_bpf(allow_but(rule))
    assert in_child(bpf, [("personality", PER_LINUX32)])["personality"] == -EACCES
    assert in_child(bpf, [("personality", QUERY)])["personality"] >= 0


def test_args_with_distinct_indexes_are_anded(cache_dir):
    rule = {
        "names": ["kill"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": EACCES,
        "args": [
            {"index": 0, "value": 999999, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
        ],
    }
    bpf = compile_bpf(allow_but(rule))
    assert in_child(bpf, [("kill", 999999, 0)])["kill"] == -EACCES  # both match
    assert in_child(bpf, [("kill", 999998, 0)])["kill"] == -ESRCH  # only arg1 matches


def test_args_with_a_repeated_index_are_ored(cache_dir):
    rule = {
        "names": ["personality"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": EACCES,
        "args": [
            {"index": 0, "value": PER_LINUX32, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 0x20000, "op": "SCMP_CMP_EQ"},
        ],
    }
    bpf = compile_bpf(allow_but(rule))
    assert in_child(bpf, [("personality", PER_LINUX32)])["personality"] == -EACCES
    assert in_child(bpf, [("personality", 0x20000)])["personality"] == -EACCES
    assert in_child(bpf, [("personality", QUERY)])["personality"] >= 0


def test_masked_eq(cache_dir):
    # deny kill when the signal number has bit 0x10 set
    rule = {
        "names": ["kill"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": EACCES,
        "args": [{"index": 1, "value": 0x10, "valueTwo": 0x10, "op": "SCMP_CMP_MASKED_EQ"}],
    }
    bpf = compile_bpf(allow_but(rule))
    assert in_child(bpf, [("kill", 999999, 18)])["kill"] == -EACCES
    assert in_child(bpf, [("kill", 999999, 2)])["kill"] == -ESRCH


def test_unknown_syscall_names_are_skipped(cache_dir):
    bpf = compile_bpf(allow_but({"names": ["no_such_syscall_xyz", "unshare"], "action": "SCMP_ACT_ERRNO"}))
    assert in_child(bpf, [("unshare", 0)])["unshare"] == -EPERM


def test_kill_process_action(cache_dir):
    import os

    bpf = compile_bpf(allow_but({"names": ["unshare"], "action": "SCMP_ACT_KILL_PROCESS"}))
    pid = os.fork()
    if pid == 0:
        try:
            _libc.prctl(38, 1, 0, 0, 0)
            load_bpf(bpf)
            raw_syscall("unshare", 0)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 31  # SIGSYS


def test_flags_are_accepted_by_the_kernel(cache_dir):
    bpf = compile_bpf(allow_but({"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}))
    out = in_child(
        bpf,
        [("unshare", 0)],
        flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    )
    assert "error" not in out and out["unshare"] == -EPERM


def test_log_and_trap_and_trace_actions_compile(cache_dir):
    for action in (
        "SCMP_ACT_LOG",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
    ):
        assert compile_bpf(allow_but({"names": ["unshare"], "action": action}))


def test_architectures(cache_dir):
    bpf = compile_bpf(
        allow_but(
            {"names": ["unshare"], "action": "SCMP_ACT_ERRNO"},
            architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        )
    )
    native_only = compile_bpf(allow_but({"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}))
    assert len(bpf) > len(native_only)  # the extra arches get their own branches
    assert in_child(bpf, [("unshare", 0)])["unshare"] == -EPERM


def test_load_needs_nnp_or_cap_sys_admin(cache_dir):
    import os

    bpf = compile_bpf(allow_but({"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        msg = b"no error"
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)  # drops every capability; no_new_privs left unset
            load_bpf(bpf)
        except errors.PermissionDenied as e:
            msg = f"PermissionDenied: {e}".encode()
        except BaseException as e:
            msg = repr(e).encode()
        finally:
            os.write(w, msg)
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode()
    os.waitpid(pid, 0)
    assert msg.startswith("PermissionDenied") and "no_new_privs" in msg


@pytest.mark.parametrize("bpf", [b"", b"1234567", b"\0" * 8 * 4097])
def test_load_rejects_malformed_programs(bpf):
    with pytest.raises(errors.InvalidArgument, match="seccomp"):
        load_bpf(bpf)


def test_load_rejects_unknown_flags():
    with pytest.raises(errors.InvalidArgument, match="SECCOMP_FILTER_FLAG_BOGUS"):
        load_bpf(b"\0" * 8, ["SECCOMP_FILTER_FLAG_BOGUS"])
