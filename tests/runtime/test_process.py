"""The process: capabilities, no_new_privs, user, umask, env, cwd, rlimits, fds, observed from /proc."""

import os
import re

import pytest

from .rt_helpers import IS_BERTH, in_container, run

CAP = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21,
       "CAP_AUDIT_WRITE": 29}


def status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


def mask(*names: str) -> int:
    return sum(1 << CAP[n] for n in names)


def test_capability_sets_and_no_new_privs(rt, bundle, cid):
    bundle.process["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_NET_RAW"],
        "effective": ["CAP_KILL", "CAP_CHOWN"],
        "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    bundle.process["noNewPrivileges"] = True
    st = status(in_container(bundle, rt, cid, "cat /proc/self/status").stdout)
    # sh's own sets after execve: ambient caps flow into permitted and effective.
    assert int(st["CapBnd"], 16) == mask("CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_NET_RAW")
    assert int(st["CapInh"], 16) == mask("CAP_NET_BIND_SERVICE")
    assert int(st["CapAmb"], 16) == mask("CAP_NET_BIND_SERVICE")
    # root (uid 0) gets its permitted set back from the bounding set on execve... limited by bounding
    assert int(st["CapPrm"], 16) & ~mask("CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_NET_RAW") == 0
    assert st["NoNewPrivs"] == "1"


def test_non_root_user_keeps_only_ambient_caps(rt, bundle, cid):
    bundle.process["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027}
    bundle.process["capabilities"] = {k: ["CAP_NET_BIND_SERVICE"] for k in
                                      ("bounding", "effective", "permitted", "inheritable", "ambient")}
    bundle.process["noNewPrivileges"] = False
    out = in_container(bundle, rt, cid, "id -u; id -g; id -G; umask; cat /proc/self/status").stdout.splitlines()
    assert out[0] == "1000" and out[1] == "1001"
    assert set(out[2].split()) == {"1001", "10", "20"}
    assert out[3] == "0027"
    st = status("\n".join(out[4:]))
    assert int(st["CapEff"], 16) == mask("CAP_NET_BIND_SERVICE")
    assert int(st["CapAmb"], 16) == mask("CAP_NET_BIND_SERVICE")
    assert st["NoNewPrivs"] == "0"


def test_env_cwd_and_home(rt, bundle, cid):
    bundle.process["env"] = ["PATH=/bin", "FOO=bar baz"]
    bundle.process["cwd"] = "/tmp/work/dir"
    os.makedirs(os.path.join(bundle.rootfs, "tmp/work/dir"))
    out = in_container(bundle, rt, cid, 'echo "$FOO"; pwd; echo $HOME; readlink /proc/self/cwd').stdout.split("\n")
    assert out[:4] == ["bar baz", "/tmp/work/dir", "/root", "/tmp/work/dir"]


def test_cwd_that_cannot_be_made_is_an_error(rt, bundle, cid):
    bundle.process["cwd"] = "/etc/passwd/sub"  # a missing cwd is created (as runc): not below a file
    p = in_container(bundle, rt, cid, "true", check=False)
    assert p.returncode != 0 and "/etc/passwd" in p.stderr
    assert rt.ids() == []


def test_missing_executable_is_an_error(rt, bundle, cid):
    bundle.args("no-such-program")
    p = run(rt, bundle, cid, check=False)
    assert p.returncode != 0 and "no-such-program" in p.stderr
    assert rt.ids() == []


def test_rlimits(rt, bundle, cid):
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
                                 {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    out = in_container(bundle, rt, cid, "cat /proc/self/limits").stdout
    files = re.search(r"Max open files\s+(\d+)\s+(\d+)", out)
    core = re.search(r"Max core file size\s+(\d+)\s+(\d+)", out)
    assert files.groups() == ("512", "1000") and core.groups() == ("0", "0")


def _has_cap_sys_resource() -> bool:
    with open("/proc/self/status") as f:
        eff = int(status(f.read())["CapEff"], 16)
    return bool(eff & (1 << 24))


@pytest.mark.skipif(_has_cap_sys_resource(), reason="CAP_SYS_RESOURCE lets the runtime raise hard limits")
def test_rlimit_above_hard_limit_fails_cleanly(rt, bundle, cid):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1000, "hard": hard + 1000}]
    p = in_container(bundle, rt, cid, "true", check=False)
    assert p.returncode != 0
    if IS_BERTH:
        assert "RLIMIT_NOFILE" in p.stderr
    assert rt.ids() == [] and not os.path.exists(os.path.join(rt.root, cid))


def test_no_host_fds_leak(rt, bundle, cid, tmp_path):
    leaked = tmp_path / "leaked"
    leaked.write_text("host\n")
    bundle.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; readlink /proc/1/cwd")
    out = rt("run", "--bundle", bundle.write(), cid, fd3=str(leaked)).stdout.splitlines()
    assert out[0].split() == ["0", "1", "2", "3"]  # 3 is ls's own directory fd, not the runtime's fd 3
    assert out[1] == "/"


def test_preserve_fds(rt, bundle, cid, tmp_path):
    f = tmp_path / "passed"
    f.write_text("through fd 3\n")
    bundle.sh("cat <&3")
    out = rt("run", "--preserve-fds", "1", "--bundle", bundle.write(), cid, fd3=str(f)).stdout
    assert out == "through fd 3\n"


def test_init_is_not_dumpable_before_exec(rt, bundle, cid):
    """While waiting for `start`, the init runs the runtime's code: /proc/<pid>/exe must not be reachable
    from the container (CVE-2019-5736); after execve it is the container's own program."""
    bundle.args("sleep", "60")
    rt("create", "--bundle", bundle.write(), cid)
    pid = rt.state(cid)["pid"]
    with open(f"/proc/{pid}/status") as f:
        uid_line = [ln for ln in f if ln.startswith("Uid:")][0]
    assert uid_line.split()[1] == "0"
    out = rt("exec", cid, "sh", "-c", "cat /proc/1/exe > /dev/null 2>&1 && echo readable || echo denied")
    assert out.stdout.strip() == "denied"
    rt("start", cid)
    out = rt("exec", cid, "readlink", "/proc/1/exe")
    assert out.stdout.strip() == "/bin/busybox"


@pytest.mark.skipif(not IS_BERTH, reason="berth's exec trampoline")
def test_proc_self_exe_interpreter_never_reaches_host_binary(rt, bundle, cid):
    """CVE-2019-5736: a program whose interpreter is /proc/self/exe must not start the runtime's own
    (host) executable inside the container. berth execs through a sealed memfd, so it finds that."""
    import hashlib
    import sys

    host_exe = os.path.realpath(sys.executable)
    with open(host_exe, "rb") as f:
        before = hashlib.sha256(f.read()).hexdigest()
    evil = os.path.join(bundle.rootfs, "evil")
    with open(evil, "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(evil, 0o755)
    bundle.args("/evil", "a", "b")
    p = run(rt, bundle, cid, check=False, timeout=30)
    assert p.returncode == 127
    with open(host_exe, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == before


def test_oom_score_adj(rt, bundle, cid):
    bundle.process["oomScoreAdj"] = 432
    assert in_container(bundle, rt, cid, "cat /proc/self/oom_score_adj").stdout.strip() == "432"


def test_exec_preserve_fds(rt, bundle, cid, tmp_path):
    bundle.args("sleep", "60")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    f = tmp_path / "exec-passed"
    f.write_text("exec fd 3\n")
    out = rt("exec", "--preserve-fds", "1", cid, "sh", "-c", "cat <&3; ls /proc/self/fd | wc -l",
             fd3=str(f)).stdout.split("\n")
    assert out[0] == "exec fd 3"
    assert out[1].strip() == "5"  # 0, 1, 2, 3 and ls's own directory fd


def _cpu_list(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def test_cpu_affinity_is_the_runtimes(rt, bundle, cid):
    """The runtime moves a just-forked init or exec'd process to another CPU so it starts at once, and
    gives it its affinity back: the container's processes run where the runtime could (here: the
    test's own mask), in init and in exec."""
    bundle.args("sleep", "60")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    ours = os.sched_getaffinity(0)
    assert os.sched_getaffinity(rt.state(cid)["pid"]) == ours
    st = status(rt("exec", cid, "cat", "/proc/self/status").stdout)
    assert _cpu_list(st["Cpus_allowed_list"]) == ours


def test_kill_created_container(rt, bundle, cid):
    bundle.args("sleep", "60")
    rt("create", "--bundle", bundle.write(), cid)
    pid = rt.state(cid)["pid"]
    rt("kill", cid, "KILL")
    from .rt_helpers import gone

    assert gone(pid)
    assert rt.state(cid)["status"] == "stopped"


def test_personality_linux32(rt, bundle, cid):
    bundle.linux["personality"] = {"domain": "LINUX32"}
    assert in_container(bundle, rt, cid, "uname -m").stdout.strip() in ("i686", "i386", "armv7l", "armv8l")


@pytest.mark.parametrize("fd", range(3, 9))
def test_leaked_fd_cwd_cannot_reach_host(rt, bundle, cid, fd):
    """CVE-2024-21626: process.cwd = /proc/self/fd/N must never land on a host directory."""
    bundle.process["cwd"] = f"/proc/self/fd/{fd}"
    p = in_container(bundle, rt, cid, "pwd; ls -a ../../..", check=False)
    if p.returncode == 0:
        assert "work" not in p.stdout.split() and "etc" in p.stdout.split()
    assert rt.ids() == []


def test_cwd_through_host_directory_fd_is_refused(rt, bundle, cid, tmp_path):
    """Even a host directory fd the caller hands over (--preserve-fds) cannot become the cwd."""
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    (hostdir / "host-secret").write_text("x")
    bundle.process["cwd"] = "/proc/self/fd/3"
    bundle.sh("ls")
    p = rt("run", "--preserve-fds", "1", "--bundle", bundle.write(), cid, fd3=str(hostdir), check=False)
    assert "host-secret" not in p.stdout
    assert p.returncode != 0
    assert rt.ids() == []
