"""Restart and recovery of berthd: one daemon per root."""

from __future__ import annotations

import os
import subprocess
import sys

from berth.daemon.config import default_runtime  # noqa: F401 - the daemon's module imports cleanly

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_second_berthd_on_the_same_root_refuses(fresh_berthd):
    """Another exec-root and socket, the same root: refused, naming the root and the holder's pid."""
    d = fresh_berthd
    other = os.path.join(d.base, "other")
    os.makedirs(other)
    r = subprocess.run([sys.executable, "-m", "berth.daemon.main", "-H", f"unix://{other}/s.sock",
                        "--root", d.root, "--exec-root", os.path.join(other, "run")],
                       capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": os.path.join(REPO, "src")})
    assert r.returncode != 0
    err = r.stderr.decode()
    assert d.root in err and str(d.proc.pid) in err, err
    assert not os.path.exists(os.path.join(other, "s.sock"))
    d.docker("version")  # the first one is unharmed


def test_root_lock_is_not_inherited_by_the_monitor_host(fresh_berthd, cname):
    d = fresh_berthd
    d.docker("run", "-d", "--name", cname, "busybox", "sleep", "60")
    try:
        lock = os.path.realpath(os.path.join(d.root, "berthd.lock"))
        holders = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                for fd in os.listdir(f"/proc/{p}/fd"):
                    if os.readlink(f"/proc/{p}/fd/{fd}") == lock:
                        holders.append(int(p))
            except OSError:
                continue
        assert holders == [d.proc.pid], holders
    finally:
        d.docker("rm", "-f", cname)


def test_rm_container_that_exited_while_berthd_was_down_is_removed(fresh_berthd, cname):
    """kill -9 of berthd while a `run --rm` container runs; it exits meanwhile; the restart removes it."""
    import signal
    import time

    from berth.testing.waiting import wait_for

    d = fresh_berthd
    d.docker("run", "-d", "--rm", "--name", cname, "busybox", "sleep", "3")
    pid = d.inspect(cname)["State"]["Pid"]
    d.stop(signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), "the container to exit", 30)
    time.sleep(0.5)
    d.start()
    cl = d.client()
    try:
        wait_for(lambda: cname not in [c.name for c in cl.containers.list(all=True)], "the auto-removal", 30)
    finally:
        cl.close()
