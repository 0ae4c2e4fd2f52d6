"""podman 4.3 + conmon drive the OCI runtime under test (create/start/kill/delete/exec/state, console socket)."""

from __future__ import annotations

import json
import os

import pytest

from interop.helpers import cgroup_dirs, run, run_pty

pytestmark = pytest.mark.interop

IMAGE = "localhost/berth-interop/busybox:1"


def test_echo_output(podman):
    p = podman("run", "--rm", *podman.run_opts, IMAGE, "echo", "hello from busybox")
    assert p.stdout == "hello from busybox\n"


def test_exit_code(podman):
    p = podman("run", "--rm", *podman.run_opts, IMAGE, "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert p.returncode == 7, p.stderr
    assert p.stdout == "out\n"
    assert "err\n" in p.stderr


@pytest.mark.parametrize("script, code", [("exit 0", 0), ("exit 255", 255), ("exit 256", 0)])
def test_more_exit_codes(podman, script, code):
    assert podman("run", "--rm", *podman.run_opts, IMAGE, "sh", "-c", script, check=False).returncode == code


def test_seccomp_profile_enforced(podman):
    # podman hands its default seccomp profile to the runtime; the runtime must install it
    out = podman("run", "--rm", *podman.run_opts, IMAGE, "grep", "^Seccomp:", "/proc/self/status").stdout
    assert out.split() == ["Seccomp:", "2"], out
    out = podman("run", "--rm", "--security-opt", "seccomp=unconfined", *podman.run_opts, IMAGE,
                 "grep", "^Seccomp:", "/proc/self/status").stdout
    assert out.split() == ["Seccomp:", "0"], out


def test_stdin_passed_through(podman):
    p = podman("run", "--rm", "-i", *podman.run_opts, IMAGE, "sh", "-c", "tr a-z A-Z; exit 3",
               input="piped text\n", check=False, stdin=None)
    assert (p.returncode, p.stdout) == (3, "PIPED TEXT\n"), p.stderr


def test_tty(podman):
    rc, out = run_pty(podman.cmd("run", "--rm", "-t", *podman.run_opts, IMAGE, "sh", "-c",
                                 "tty; stty size; [ -t 0 ] && echo stdin-is-tty; exit 5"), env=podman.env)
    assert rc == 5, out
    lines = [line.strip("\r") for line in out.split("\n")]
    assert "/dev/pts/0" in lines, out  # the container's own devpts instance
    assert "stdin-is-tty" in lines, out
    assert "\r\n" in out  # the container's terminal turns \n into \r\n (onlcr): it really is a tty


def test_detached_exec_stop_rm(podman, unique_name):
    # sh as pid 1 exits 0 on SIGTERM: a 137 would mean stop had to escalate to SIGKILL
    script = "trap 'echo got-term; exit 0' TERM; echo started; while :; do sleep 0.2; done"
    cid = podman("run", "-d", "--name", unique_name, *podman.run_opts, IMAGE, "sh", "-c", script).stdout.strip()
    podman.created.add(cid)
    try:
        info = json.loads(podman("inspect", unique_name).stdout)[0]
        assert (info["State"]["Status"], info["OCIRuntime"]) == ("running", podman.runtime)
        # the runtime under test (not some default runc) holds the container
        state = json.loads(run([podman.runtime, "state", cid]).stdout)
        assert (state["status"], state["pid"]) == ("running", info["State"]["Pid"]), state
        assert podman("exec", unique_name, "echo", "exec-ok").stdout == "exec-ok\n"
        assert podman("exec", unique_name, "sh", "-c", "exit 4", check=False).returncode == 4
        ps = podman("exec", unique_name, "ps", "-o", "pid,args").stdout
        assert any(line.split()[:1] == ["1"] and "sh -c" in line for line in ps.splitlines()), ps
        rc, out = run_pty(podman.cmd("exec", "-t", unique_name, "sh", "-c", "tty; exit 6"), env=podman.env)
        assert rc == 6 and "/dev/pts/" in out, out
        # the container's cgroup sits under our private parent while it runs
        assert any(cid in d for base in cgroup_dirs(podman.cgroup_parent) for d in _subdirs(base)), cid
        podman("stop", "-t", "10", unique_name, timeout=60)
        state = json.loads(podman("inspect", unique_name).stdout)[0]["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 0), state
        assert "got-term" in podman("logs", unique_name).stdout
    finally:
        podman("rm", "-f", "-t", "0", unique_name, check=False)
    assert podman("ps", "-a", "-q", "--filter", f"name={unique_name}").stdout.strip() == ""
    gone = run([podman.runtime, "state", cid], check=False)
    assert gone.returncode != 0 and not gone.stdout, gone  # the runtime deleted it
    for base in cgroup_dirs(podman.cgroup_parent):  # the runtime's delete removed the container's cgroup
        assert not any(cid in d for d in _subdirs(base)), (base, _subdirs(base))


def _subdirs(base: str) -> list[str]:
    return [d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))]
