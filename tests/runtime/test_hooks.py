"""OCI hooks: every kind runs at its point with the state on stdin; failures and timeouts fail cleanly."""

import json
import os
import time

from .rt_helpers import IS_BERTH, gone, in_container


def hook(path, log, kind, timeout=None):
    h = {"path": "/bin/sh", "args": ["sh", "-c", f'echo "{kind} $(cat)" >> {log}'], "env": ["PATH=/bin"]}
    if timeout:
        h["timeout"] = timeout
    return h


def test_all_hooks_in_order_with_state(rt, bundle, cid, tmp_path):
    log = tmp_path / "hooks.log"
    bundle.config["hooks"] = {k: [hook("/bin/sh", log, k)] for k in
                              ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    # startContainer runs inside the container: its path and output are in the container's filesystem.
    bundle.config["hooks"]["startContainer"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", 'echo "startContainer $(cat)" > /hook-start']}]
    bundle.args("sleep", "60")
    rt("create", "--bundle", bundle.write(), cid)
    kinds = [ln.split(" ", 1)[0] for ln in log.read_text().splitlines()]
    assert kinds == ["prestart", "createRuntime", "createContainer"]
    pid = rt.state(cid)["pid"]
    for line in log.read_text().splitlines():
        st = json.loads(line.split(" ", 1)[1])
        assert st["id"] == cid and st["pid"] == pid and st["bundle"] == str(bundle.path)
        assert st["status"] == "creating"
    rt("start", cid)
    kinds = [ln.split(" ", 1)[0] for ln in log.read_text().splitlines()]
    assert kinds[-1] == "poststart"
    assert json.loads(log.read_text().splitlines()[-1].split(" ", 1)[1])["status"] == "running"
    # startContainer runs in the container after `start` let it go: `start` does not wait for it.
    path = os.path.join(bundle.rootfs, "hook-start")
    deadline = time.monotonic() + 30
    while not (os.path.exists(path) and os.path.getsize(path)) and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(path) as f:
        start = f.read()
    assert start.startswith("startContainer ") and json.loads(start.split(" ", 1)[1])["id"] == cid
    rt("kill", cid, "KILL")
    assert gone(pid)
    rt("delete", cid)
    last = log.read_text().splitlines()[-1]
    assert last.startswith("poststop ") and json.loads(last.split(" ", 1)[1])["status"] == "stopped"


def test_failing_prestart_hook_leaves_nothing(rt, bundle, cid, tmp_path):
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}]}
    p = in_container(bundle, rt, cid, "true", check=False)
    assert p.returncode != 0
    if IS_BERTH:
        assert "prestart" in p.stderr and "boom" in p.stderr
    assert rt.ids() == [] and not os.path.exists(os.path.join(rt.root, cid))
    assert not os.path.exists(f"/sys/fs/cgroup/pids/berth/{cid}") and not os.path.exists(f"/sys/fs/cgroup/berth/{cid}")


def test_hook_timeout(rt, bundle, cid):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    p = in_container(bundle, rt, cid, "true", check=False)
    assert p.returncode != 0
    if IS_BERTH:
        assert "timed out" in p.stderr
    assert rt.ids() == []
