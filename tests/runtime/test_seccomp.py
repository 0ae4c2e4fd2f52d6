"""linux.seccomp through the runtime: the filter is installed (Seccomp: 2) and a blocked call gets EPERM."""

from .rt_helpers import in_container


def profile(**extra):
    p = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
         "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    p.update(extra)
    return p


def test_blocked_syscall_returns_eperm(rt, bundle, cid):
    bundle.linux["seccomp"] = profile()
    out = in_container(bundle, rt, cid, "grep -E '^Seccomp' /proc/self/status; mkdir /tmp/d 2>&1; "
                       "touch /tmp/f && echo touch-ok").stdout
    assert "Seccomp:\t2" in out
    assert "Operation not permitted" in out
    assert "touch-ok" in out


def test_seccomp_without_no_new_privs(rt, bundle, cid):
    bundle.process["noNewPrivileges"] = False
    bundle.linux["seccomp"] = profile()
    out = in_container(bundle, rt, cid, "grep -E '^(Seccomp|NoNewPrivs)' /proc/self/status; mkdir /tmp/d 2>&1; true").stdout
    assert "NoNewPrivs:\t0" in out and "Seccomp:\t2" in out and "Operation not permitted" in out


def test_bad_seccomp_profile_fails_cleanly(rt, bundle, cid):
    bundle.linux["seccomp"] = {"defaultAction": "SCMP_ACT_BOGUS"}
    p = in_container(bundle, rt, cid, "true", check=False)
    assert p.returncode != 0 and "seccomp" in p.stderr.lower()
    assert rt.ids() == []
