"""create / start / state / kill / delete / list / run --detach, observed through the state directory and /proc."""

import json
import os
import signal
import time

import pytest

from .rt_helpers import IS_BERTH, gone, run


def wait_status(rt, cid, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        st = rt.state(cid)
        if st["status"] == want or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def test_run_foreground_output_and_exit_code(rt, bundle, cid):
    bundle.sh("echo hello from $(hostname); exit 7")
    p = run(rt, bundle, cid, check=False)
    assert p.returncode == 7, p.stderr
    assert p.stdout.strip() == "hello from berth"
    assert cid not in rt.ids()  # run without --keep deletes the container


def test_create_start_state_kill_delete(rt, bundle, cid, tmp_path):
    bundle.args("sleep", "60")
    bundle.config["annotations"] = {"org.example/key": "value"}
    pidfile = tmp_path / "init.pid"
    rt("create", "--bundle", bundle.write(), "--pid-file", str(pidfile), cid)
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid and st["bundle"] == str(bundle.path)
    assert st["annotations"] == {"org.example/key": "value"}
    assert st["pid"] > 0 and int(pidfile.read_text()) == st["pid"]
    assert set(st) >= {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner", "annotations"}
    # The process is waiting before the user's program: it is not "sleep" yet.
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert b"sleep" not in f.read()
    rt("start", cid)
    st = wait_status(rt, cid, "running")
    assert st["status"] == "running"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
            if f.read().split(b"\0")[0] == b"sleep":
                break
        time.sleep(0.01)
    else:
        pytest.fail("the container's program never started")
    # Not stopped: delete refuses without --force.
    assert rt("delete", cid, check=False).returncode != 0
    assert rt("start", cid, check=False).returncode != 0  # already running
    rt("kill", cid, "KILL")
    st = wait_status(rt, cid, "stopped")
    assert st["status"] == "stopped" and st["pid"] == 0
    assert rt("kill", cid, "KILL", check=False).returncode != 0  # not running any more
    rt("delete", cid)
    assert rt("state", cid, check=False).returncode != 0
    assert not os.path.exists(os.path.join(rt.root, cid))


@pytest.mark.parametrize("sig", ["SIGUSR1", "USR1", str(int(signal.SIGUSR1))])
def test_kill_signal_names_and_numbers(rt, bundle, cid, sig):
    bundle.sh("trap 'echo got; exit 3' USR1; echo ready; while :; do sleep 0.05; done")
    rt("run", "--detach", "--bundle", bundle.write(), cid)
    st = rt.state(cid)
    time.sleep(0.3)  # let sh install its trap
    rt("kill", cid, sig)
    wait_status(rt, cid, "stopped")
    assert not os.path.exists(f"/proc/{st['pid']}/stat") or rt.state(cid)["status"] == "stopped"


def test_kill_all_and_delete_force(rt, bundle, cid):
    bundle.sh("sleep 60 & sleep 60 & exec sleep 60")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    st = rt.state(cid)
    time.sleep(0.2)
    pids = json.loads(rt("ps", "--format", "json", cid).stdout)
    assert st["pid"] in pids and len(pids) >= 3
    rt("kill", "--all", cid, "9")
    wait_status(rt, cid, "stopped")
    for p in pids:
        assert gone(p)
    rt("delete", cid)


def test_delete_force_running(rt, bundle, cid):
    bundle.args("sleep", "60")
    rt("run", "--detach", "--bundle", bundle.write(), cid)
    pid = rt.state(cid)["pid"]
    rt("delete", "--force", cid)
    assert cid not in rt.ids()
    assert gone(pid)


def test_delete_created_container(rt, bundle, cid):
    rt("create", "--bundle", bundle.write(), cid)
    pid = rt.state(cid)["pid"]
    rt("delete", cid)  # a created container can be deleted without --force
    assert cid not in rt.ids()
    assert gone(pid)


def test_delete_force_missing_is_ok(rt, cid):
    assert rt("delete", cid, check=False).returncode != 0
    rt("delete", "--force", cid)


def test_list_table_and_json(rt, bundle, cid):
    bundle.args("sleep", "60")
    rt("create", "--bundle", bundle.write(), cid)
    rows = json.loads(rt("list", "--format", "json").stdout)
    assert [r["id"] for r in rows] == [cid]
    assert rows[0]["status"] == "created" and rows[0]["bundle"] == str(bundle.path)
    table = rt("list").stdout.splitlines()
    assert table[0].split()[:6] == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[0] == cid and table[1].split()[2] == "created"
    assert rt("list", "-q").stdout.split() == [cid]


def test_state_of_missing_container(rt, cid):
    p = rt("state", cid, check=False)
    assert p.returncode != 0 and cid in p.stderr


@pytest.mark.skipif(not IS_BERTH, reason="reads berth's own state.json")
def test_reused_pid_is_not_the_container(rt, bundle, cid):
    """A pid that lives on with a different start time is a different process: the container is stopped."""
    bundle.args("sleep", "60")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    path = os.path.join(rt.root, cid, "state.json")
    with open(path) as f:
        st = json.load(f)
    rt("kill", cid, "KILL")
    wait_status(rt, cid, "stopped")
    st["pid"] = os.getpid()  # alive, but started at another time
    with open(path, "w") as f:
        json.dump(st, f)
    assert rt.state(cid)["status"] == "stopped"
    rt("delete", cid)


def test_run_detach_and_pid_file(rt, bundle, cid, tmp_path):
    bundle.args("sleep", "60")
    pf = tmp_path / "pid"
    rt("run", "--detach", "--pid-file", str(pf), "--bundle", bundle.write(), cid)
    st = rt.state(cid)
    assert st["status"] == "running" and int(pf.read_text()) == st["pid"]


def test_run_keep(rt, bundle, cid):
    bundle.args("true")
    run(rt, bundle, cid, "--keep")
    assert rt.state(cid)["status"] == "stopped"
    rt("delete", cid)
