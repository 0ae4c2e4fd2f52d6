"""podman 4.3 + conmon drive the OCI runtime under test (create/start/kill/delete/exec/state, console socket)."""

from __future__ import annotations

import json
import os

import pytest

from interop.helpers import PTY_COLS, PTY_ROWS, WAIT_SIZE, cgroup_dirs, run, run_pty

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


@pytest.mark.parametrize("opts, cmd, expected", [
    (["--user", "65534:65534"], ["id"], "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"),
    (["-w", "/tmp", "-e", "FOO=bar"], ["sh", "-c", "pwd; echo $FOO"], "/tmp\nbar"),
    (["--read-only"], ["sh", "-c", "touch /x 2>/dev/null; echo rc=$?"], "rc=1"),
    (["--memory", "64m"], ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
                                       " || cat /sys/fs/cgroup/memory.max"], "67108864"),
    (["--pids-limit", "50"], ["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null"
                                          " || cat /sys/fs/cgroup/pids.max"], "50"),
    (["--cap-drop", "all"], ["grep", "CapEff", "/proc/self/status"], "CapEff:\t0000000000000000"),
    (["--hostname", "berth-h"], ["hostname"], "berth-h"),
    (["--privileged"], ["sh", "-c", "grep Seccomp: /proc/self/status; [ -e /dev/kmsg ] && echo host-devs"],
     "Seccomp:\t0\nhost-devs"),
], ids=["user", "workdir-env", "read-only", "memory", "pids", "cap-drop", "hostname", "privileged"])
def test_run_options(podman, opts, cmd, expected):
    # podman turns each option into config.json; the runtime must apply it (cgroup files: v1 here, v2 in a VM)
    assert podman("run", "--rm", *podman.run_opts, *opts, IMAGE, *cmd).stdout.strip() == expected


def test_pause_top_kill_restart(podman, unique_name):
    script = "trap 'exit 3' TERM; while :; do sleep 0.1; done"
    podman("run", "-d", "--name", unique_name, *podman.run_opts, IMAGE, "sh", "-c", script)
    try:
        def status() -> str:
            return podman("inspect", "--format", "{{.State.Status}}", unique_name).stdout.strip()

        podman("pause", unique_name)
        assert status() == "paused"
        podman("unpause", unique_name)
        assert status() == "running"
        top = podman("top", unique_name, "pid", "args").stdout
        assert "trap 'exit 3' TERM" in top, top
        assert podman("exec", "-u", "65534", "-w", "/tmp", unique_name, "sh", "-c", "id -u; pwd").stdout == "65534\n/tmp\n"
        podman("kill", "-s", "TERM", unique_name)
        assert podman("wait", unique_name, timeout=30).stdout.strip() == "3"
        podman("restart", "-t", "1", unique_name, timeout=60)
        assert status() == "running"
    finally:
        podman("rm", "-f", "-t", "0", unique_name, check=False)


def test_stdin_passed_through(podman):
    p = podman("run", "--rm", "-i", *podman.run_opts, IMAGE, "sh", "-c", "tr a-z A-Z; exit 3",
               input="piped text\n", check=False, stdin=None)
    assert (p.returncode, p.stdout) == (3, "PIPED TEXT\n"), p.stderr


def test_tty(podman):
    rc, out = run_pty(podman.cmd("run", "--rm", "-t", *podman.run_opts, IMAGE, "sh", "-c",
                                 f"tty; {WAIT_SIZE}; [ -t 0 ] && echo stdin-is-tty; exit 5"), env=podman.env)
    assert rc == 5, out
    lines = [line.strip("\r") for line in out.split("\n")]
    assert "/dev/pts/0" in lines, out  # the container's own devpts instance
    assert "stdin-is-tty" in lines, out
    assert f"{PTY_ROWS} {PTY_COLS}" in lines, out  # conmon passed our window size to the container's tty
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
