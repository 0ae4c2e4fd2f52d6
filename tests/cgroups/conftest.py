"""Fixtures for the cgroup tests: managers with unique names that are always torn down."""

from __future__ import annotations

import signal
import subprocess

import pytest

import berth.cgroups as cgroups

BUSYBOX = "/bin/busybox"


@pytest.fixture
def make_manager(unique_name):
    made: list[cgroups.Manager] = []

    def make(path: str | None = None, cid: str | None = None) -> cgroups.Manager:
        m = cgroups.new_manager(path, cid or f"{unique_name}-{len(made)}")   # None: /berth/<id>
        made.append(m)
        return m

    yield make
    for m in made:
        try:
            m.kill_all(signal.SIGKILL)
        finally:
            m.destroy()
        assert not m.exists(), f"{m.path} left behind"


class Waiting:
    """A process parked on `read` so the test can move it into a cgroup before it does its work."""

    def __init__(self, script: str):
        self.proc = subprocess.Popen([BUSYBOX, "sh", "-c", "read x; " + script],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.proc.pid

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        self.proc.stdin = None      # communicate() must not touch it again

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()


@pytest.fixture
def waiting():
    procs: list[Waiting] = []

    def start(script: str) -> Waiting:
        w = Waiting(script)
        procs.append(w)
        return w

    yield start
    for w in procs:
        if w.proc.poll() is None:
            w.proc.kill()
        w.proc.wait()
