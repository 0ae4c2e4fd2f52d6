"""Resources through the runtime: memory limit (OOM kill), pids limit (fork bomb), pause/resume via the
freezer, events --stats, update, ps."""

import json
import os
import time

import pytest

from .rt_helpers import IS_BERTH, gone, in_container, run


def test_memory_limit_oom_kills(rt, bundle, cid):
    limit = 32 * 1024 * 1024
    bundle.linux["resources"]["memory"] = {"limit": limit, "swap": limit}
    # tail buffers /dev/zero (one endless line) until the kernel kills it.
    p = in_container(bundle, rt, cid, "tail /dev/zero; echo status=$?", check=False)
    assert "status=137" in p.stdout, (p.stdout, p.stderr)


def test_pids_limit_stops_fork_bomb(rt, bundle, cid):
    bundle.linux["resources"]["pids"] = {"limit": 8}
    p = in_container(bundle, rt, cid, "for i in $(seq 30); do sleep 5 & done 2>&1; ls -d /proc/[0-9]* 2>&1; "
                     "kill -9 -1; true", check=False)
    assert "fork" in p.stdout.lower() or "resource temporarily unavailable" in p.stdout.lower(), p.stdout
    assert p.stdout.count("/proc/") <= 8


def test_pause_resume(rt, bundle, cid):
    bundle.sh("while :; do echo tick >> /tmp/ticks; sleep 0.05; done")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    time.sleep(0.3)
    rt("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    pid = rt.state(cid)["pid"]
    with open(f"/proc/{pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in ("D", "S")
    ticks = os.path.join(bundle.rootfs, "tmp", "ticks")
    n = os.path.getsize(ticks)
    time.sleep(0.3)
    assert os.path.getsize(ticks) == n  # frozen: nothing written
    assert rt("pause", cid, check=False).returncode != 0
    rt("resume", cid)
    assert rt.state(cid)["status"] == "running"
    deadline = time.monotonic() + 5
    while os.path.getsize(ticks) == n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.getsize(ticks) > n
    rt("delete", "--force", cid)
    assert gone(pid)


def test_events_stats_and_update(rt, bundle, cid):
    bundle.args("sleep", "60")
    bundle.linux["resources"]["pids"] = {"limit": 50}
    rt("run", "-d", "--bundle", bundle.write(), cid)
    ev = json.loads(rt("events", "--stats", cid).stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    assert ev["data"]["pids"]["current"] >= 1
    assert ev["data"]["pids"]["limit"] == 50
    rt("update", "--pids-limit", "20", "--memory", "64m", cid)
    out = rt("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes "
             "2>/dev/null || cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max")
    assert out.stdout.split() == ["20", str(64 * 1024 * 1024)]
    res = os.path.join(str(bundle.path), "res.json")
    with open(res, "w") as f:
        json.dump({"pids": {"limit": 33}}, f)
    rt("update", "-r", res, cid)
    assert json.loads(rt("events", "--stats", cid).stdout)["data"]["pids"]["limit"] == 33


@pytest.mark.skipif(not IS_BERTH, reason="runc's events keeps running after the container stops")
def test_events_stream(rt, bundle, cid):
    # long enough for `events` to start even in an emulated VM (test_vm_cgroup_v2), where a Python
    # start takes a second or more; the stream ends when the container does
    bundle.args("sleep", "5")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    out = rt("events", "--interval", "200ms", cid, timeout=30).stdout
    events = [json.loads(ln) for ln in out.splitlines()]
    assert events and all(e["type"] == "stats" and e["id"] == cid for e in events)


def test_ps(rt, bundle, cid):
    bundle.sh("sleep 60 & exec sleep 61")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    time.sleep(0.2)
    pids = json.loads(rt("ps", "--format", "json", cid).stdout)
    assert rt.state(cid)["pid"] in pids and len(pids) == 2
    table = rt("ps", cid).stdout.splitlines()
    assert "PID" in table[0] and len(table) == 3


def test_cgroup_removed_after_delete(rt, bundle, cid):
    bundle.linux["cgroupsPath"] = f"/berth-test/{cid}"
    run(rt, bundle, cid)
    for d in ("pids/", "memory/", ""):  # v1 hierarchies, or the v2 tree
        assert not os.path.exists(f"/sys/fs/cgroup/{d}berth-test/{cid}")
