"""containerd 1.6 (containerd-shim-runc-v2, `ctr run --runc-binary`) drives the OCI runtime under test."""

from __future__ import annotations

import json
import os
import time

import pytest

from interop.helpers import cgroup_dirs, run, run_pty

pytestmark = pytest.mark.interop


def test_echo_output(containerd, unique_name):
    p = containerd.ctr("run", "--rm", *containerd.run_opts(unique_name), containerd.image, unique_name,
                       "echo", "hello from busybox")
    assert p.stdout == "hello from busybox\n"


def test_exit_code(containerd, unique_name):
    p = containerd.ctr("run", "--rm", *containerd.run_opts(unique_name), containerd.image, unique_name,
                       "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert p.returncode == 7, p.stderr
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"


def test_tty(containerd, unique_name):
    rc, out = run_pty(containerd.cmd("run", "--rm", "-t", *containerd.run_opts(unique_name), containerd.image,
                                     unique_name, "sh", "-c", "tty; [ -t 0 ] && echo stdin-is-tty; exit 5"))
    assert rc == 5, out
    lines = [line.strip("\r") for line in out.split("\n")]
    assert "/dev/pts/0" in lines and "stdin-is-tty" in lines, out
    # (no window-size check: ctr 1.6 sends its one resize right after start and may lose it, with runc too)


def test_detached_exec_kill(containerd, unique_name):
    script = "trap 'exit 0' TERM; while :; do sleep 0.2; done"
    containerd.ctr("run", "-d", *containerd.run_opts(unique_name), containerd.image, unique_name,
                   "sh", "-c", script)
    try:
        tasks = containerd.ctr("tasks", "ls").stdout
        assert any(line.split()[:1] == [unique_name] and "RUNNING" in line for line in tasks.splitlines()), tasks
        # the runtime under test holds the container, in the --runc-root the shim was given (+ namespace)
        state = json.loads(run([containerd.runtime, "--root", os.path.join(containerd.runc_root, containerd.NAMESPACE),
                                "state", unique_name]).stdout)
        assert state["status"] == "running", state
        # ctr copies a process's output from fifos after it starts it; once in a full parallel suite run
        # a fast exec's output came back empty (exit code right; not reproduced in 24 isolated runs with
        # berth-runtime or runc): an empty copy is retried, a wrong code or wrong output still fails.
        for attempt in range(3):
            p = containerd.ctr("tasks", "exec", "--fifo-dir", containerd.fifo_dir, "--exec-id", f"e1-{attempt}",
                               unique_name, "sh", "-c", "echo exec-ok; exit 4", check=False)
            if p.stdout or p.returncode != 4:
                break
        assert (p.returncode, p.stdout) == (4, "exec-ok\n"), p.stderr
        rc, out = run_pty(containerd.cmd("tasks", "exec", "--fifo-dir", containerd.fifo_dir, "-t", "--exec-id", "e2",
                                         unique_name, "tty"))
        assert rc == 0 and "/dev/pts/" in out, out
        assert any(os.path.isdir(os.path.join(d, unique_name)) for d in cgroup_dirs(containerd.cgroup_parent))
        containerd.ctr("tasks", "kill", unique_name)  # SIGTERM
        p = containerd.ctr("tasks", "delete", unique_name, check=False, timeout=30)
        for _ in range(50):  # delete refuses a task that has not exited yet
            if p.returncode == 0:
                break
            time.sleep(0.1)
            p = containerd.ctr("tasks", "delete", unique_name, check=False, timeout=30)
        assert p.returncode == 0, p.stderr
    finally:
        containerd.ctr("tasks", "delete", "-f", unique_name, check=False)
        containerd.ctr("containers", "delete", unique_name, check=False)
    assert not any(os.path.isdir(os.path.join(d, unique_name)) for d in cgroup_dirs(containerd.cgroup_parent))
    assert not os.path.exists(os.path.join(containerd.runc_root, containerd.NAMESPACE, unique_name))
