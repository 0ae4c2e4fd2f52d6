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


def test_cache_key_json_matches_json_module():
    """The cache key's canonical JSON (built without `import json`) is byte-identical to json.dumps's,
    so keys of entries written before stay valid."""
    import json

    from berth.seccomp import default_profile
    from berth.seccomp.cache import canonical_json

    for p in (profile(), default_profile(["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
              {"b": [1, 2.5, None, True], "a": {"é": "\u2603\n"}, "c": []}):
        assert canonical_json(p) == json.dumps(p, sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=True).encode()


def test_start_path_does_not_import_json():
    """A start with a seccomp profile stays clear of json/re/enum (~10 ms per start) and of the ctypes
    package (~2.5 ms: berth.linux.cdll uses its C core)."""
    import os
    import subprocess
    import sys

    code = ("import sys\nimport berth.runtime.commands, berth.runtime.process, berth.runtime.init, berth.runtime.rootfs\n"
            "import berth.seccomp, berth.cgroups, berth.cgroups.devices_bpf\n"
            "from berth.seccomp import compile_bpf\n"
            "bad = sorted(m for m in ('json', 're', 'enum', 'typing', 'argparse', 'ctypes') if m in sys.modules)\n"
            "print(','.join(bad))\n")
    src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {src!r})\n" + code],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
