"""Bad profiles get clear errors naming the field; unknown syscall names do not."""

from __future__ import annotations

import os

import pytest

from berth import errors
from berth.seccomp import compile_bpf


def base(**kw) -> dict:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}],
        **kw,
    }


def rule(**kw) -> dict:
    return base(syscalls=[{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", **kw}])


BAD = [
    ([], errors.InvalidArgument, r"linux\.seccomp: must be an object"),
    ({}, errors.InvalidArgument, r"linux\.seccomp\.defaultAction: is required"),
    (
        base(defaultAction="SCMP_ACT_BOGUS"),
        errors.InvalidArgument,
        r"defaultAction: unknown action 'SCMP_ACT_BOGUS'",
    ),
    (base(defaultErrnoRet=1), errors.InvalidArgument, r"defaultErrnoRet: is only valid with SCMP_ACT_ERRNO"),
    (
        base(architectures=["SCMP_ARCH_Z80"]),
        errors.InvalidArgument,
        r"architectures\[0\]: unknown architecture",
    ),
    (base(flags=["SECCOMP_FILTER_FLAG_NOPE"]), errors.InvalidArgument, r"flags\[0\]: unknown flag"),
    (base(syscalls={"names": []}), errors.InvalidArgument, r"linux\.seccomp\.syscalls: must be a list"),
    (
        base(syscalls=[{"action": "SCMP_ACT_ERRNO"}]),
        errors.InvalidArgument,
        r"syscalls\[0\]\.names: must list",
    ),
    (base(syscalls=[{"names": ["x"]}]), errors.InvalidArgument, r"syscalls\[0\]\.action: is required"),
    (
        rule(action="SCMP_ACT_NOPE"),
        errors.InvalidArgument,
        r"syscalls\[0\]\.action: unknown action 'SCMP_ACT_NOPE'",
    ),
    (rule(errnoRet=-1), errors.InvalidArgument, r"syscalls\[0\]\.errnoRet: must be an integer"),
    (
        rule(action="SCMP_ACT_LOG", errnoRet=5),
        errors.InvalidArgument,
        r"syscalls\[0\]\.errnoRet: is only valid",
    ),
    (
        rule(args=[{"index": 0, "value": 1, "op": "SCMP_CMP_NEQ"}]),
        errors.InvalidArgument,
        r"syscalls\[0\]\.args\[0\]\.op: unknown operator 'SCMP_CMP_NEQ'",
    ),
    (
        rule(args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]),
        errors.InvalidArgument,
        r"syscalls\[0\]\.args\[0\]\.index: must be an integer in \[0, 5\]",
    ),
    (
        rule(args=[{"value": 1, "op": "SCMP_CMP_EQ"}]),
        errors.InvalidArgument,
        r"args\[0\]\.index: is required",
    ),
    (
        rule(args=[{"index": 0, "value": 2**64, "op": "SCMP_CMP_EQ"}]),
        errors.InvalidArgument,
        r"args\[0\]\.value: must be an integer",
    ),
    (
        rule(args=[{"index": 0, "value": True, "op": "SCMP_CMP_EQ"}]),
        errors.InvalidArgument,
        r"args\[0\]\.value: must be an integer",
    ),
    (rule(names="unshare"), errors.InvalidArgument, r"syscalls\[0\]\.names: must be a list of strings"),
    (rule(action="SCMP_ACT_NOTIFY"), errors.Unsupported, r"syscalls\[0\]\.action: SCMP_ACT_NOTIFY"),
    (base(listenerPath="/run/agent.sock"), errors.Unsupported, r"listenerPath"),
    (
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [], "x": {1, 2}},
        errors.InvalidArgument,
        r"not a JSON object",
    ),
]


@pytest.mark.parametrize(("profile", "exc", "msg"), BAD)
def test_bad_profiles(cache_dir, profile, exc, msg):
    with pytest.raises(exc, match=msg):
        compile_bpf(profile)
    assert not os.path.exists(cache_dir) or os.listdir(cache_dir) == []  # nothing cached, nothing left


def test_unknown_syscall_names_only_are_fine(cache_dir):
    assert compile_bpf(base(syscalls=[{"names": ["not_a_syscall"], "action": "SCMP_ACT_ERRNO"}]))


def test_rule_equal_to_default_is_skipped(cache_dir):
    p = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["unshare"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        ],
    }
    assert compile_bpf(p)


def test_profile_too_big_for_the_kernel(cache_dir):
    # one rule per value of arg0: thousands of comparisons
    rules = [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]}
             for v in range(5000)]  # fmt: skip
    with pytest.raises(errors.InvalidArgument, match="at most 4096"):
        compile_bpf(base(syscalls=rules))
    assert not os.path.exists(cache_dir) or os.listdir(cache_dir) == []
