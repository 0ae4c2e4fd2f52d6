"""kill -9 of berthd in the middle of `run`, `run --rm` and `commit` (BERTH_CRASH_AT crash points, in
berthd and in the storage core it drives): after a restart every container is whole or gone, logs are
intact, a committed image is whole or absent, the audit log shows the interrupted request, the event
history survives, and removing what is left leaves nothing behind (mounts, cgroups, monitors, dirs)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from berth.testing.waiting import wait_for

pytestmark = pytest.mark.interop

LOOP = "trap 'exit 3' TERM; echo hello; while :; do sleep 0.1; done"




def api_get(d, path: str) -> tuple[int, bytes]:
    """A plain GET over the socket (the events stream closes at `until`)."""
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(d.sock)

    c = Conn("localhost", timeout=60)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def ids_on_disk(d) -> set[str]:
    out: set[str] = set()
    for base in (os.path.join(d.root, "containers"), os.path.join(d.exec_root, "containers"),
                 os.path.join(d.exec_root, "runtime")):
        if os.path.isdir(base):
            out |= {e for e in os.listdir(base) if len(e) == 64}
    return out


def restart_after_crash(d) -> None:
    assert d.wait_killed() == -signal.SIGKILL, d.read_log()
    d.env = None
    d.start()


def procs_of(d) -> list[str]:
    """Processes other than berthd whose command line names the daemon's exec-root: the monitor
    host (and runtimes it forked)."""
    me = d.proc.pid if d.proc else -1
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{p}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        if d.exec_root.encode() in cmd:
            out.append(f"{p}: {cmd[:200]!r}")
    return out


def assert_nothing_left(d, ids: set[str]) -> None:
    """After every container is removed and berthd stopped: no trace of `ids` anywhere."""
    d.stop()
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if d.base in line.split()[4]]
    assert mounts == []
    for cid in ids:
        for ctl in os.listdir("/sys/fs/cgroup"):
            assert not os.path.exists(f"/sys/fs/cgroup/{ctl}/berth/{cid}"), (ctl, cid)
    assert ids_on_disk(d) == set()
    assert procs_of(d) == []
    from berth.images import Store

    s = Store(d.root)  # the store's own consistency: no leases, every image whole, no stray blobs
    try:
        assert s.db.query_one("SELECT COUNT(*) FROM leases")[0] == 0
        assert s.db.query_one("SELECT COUNT(*) FROM container_fs")[0] == 0
        s.gc()
        referenced = {r[0] for r in s.db.query("SELECT digest FROM image_blobs")}
        referenced |= {r[0] for r in s.db.query("SELECT blob_digest FROM layers WHERE blob_digest IS NOT NULL")}
        assert set(s.cs.list()) == referenced
        for img in s.list_images():
            s.inspect_image(img.id)
    finally:
        s.close()


def before_crash(d, cname: str) -> float:
    """A request and an event on record before the crash (an image tag)."""
    since = time.time() - 1
    d.docker("tag", "busybox", f"{cname}-pre:1")
    return since


def check_common_after_restart(d, cname: str, path: str, since: float) -> None:
    """The request berthd died in is in the audit log with its caller (SO_PEERCRED: this test's
    docker CLI runs as root), the requests before it with their status, and the event history from
    before the crash is still served."""
    st, body = api_get(d, "/berth/audit")
    assert st == 200
    recs = [r for r in json.loads(body) if r["timeUnix"] >= since]
    hung = [r for r in recs if re.fullmatch(path, r["path"]) and r["status"] is None]
    assert len(hung) == 1 and hung[0]["error"].startswith("interrupted"), recs
    assert (hung[0]["uid"], hung[0]["gid"]) == (0, 0) and hung[0]["pid"] > 0
    assert [r["status"] for r in recs if r["path"] == "/images/busybox/tag"] == [201]
    st, body = api_get(d, f"/events?since={since}&until={time.time() + 1}")
    assert st == 200
    evs = [json.loads(x) for x in body.splitlines() if x.strip()]
    assert any(e["Action"] == "tag" and f"{cname}-pre:1" in json.dumps(e) for e in evs), evs
    d.docker("rmi", f"{cname}-pre:1")


RUN_POINTS = {
    # crash point: the request berthd dies in
    "container-fs-created": "/containers/create",  # storage core, between the fs and container.json
    "daemon-created": "/containers/create",
    "daemon-monitor-spawned": "/containers/[0-9a-f]{64}/start",
    "daemon-started": "/containers/[0-9a-f]{64}/start",
}


@pytest.mark.parametrize("crash_berthd", list(RUN_POINTS), indirect=True)
def test_kill9_mid_run(crash_berthd, cname):
    d = crash_berthd
    since = before_crash(d, cname)
    point = d.env["BERTH_CRASH_AT"]
    r = d.docker("run", "-d", "--name", cname, "busybox", "sh", "-c", LOOP, check=False)
    assert r.returncode != 0  # the daemon died under the request
    ids = ids_on_disk(d)
    restart_after_crash(d)
    check_common_after_restart(d, cname, RUN_POINTS[point], since)
    r = d.docker("inspect", cname, check=False)
    if r.returncode != 0:  # fully gone
        assert point == "container-fs-created"
        assert "No such" in r.stderr.decode()
    else:
        c = json.loads(r.stdout)[0]
        if not c["State"]["Running"]:
            # undone to "created": no mount, cgroup, runtime state or monitor of it is left
            assert c["State"]["Status"] == "created"
            with open("/proc/self/mountinfo") as f:
                assert [line for line in f if d.base in line.split()[4]] == []
            for ctl in os.listdir("/sys/fs/cgroup"):
                assert not os.path.exists(f"/sys/fs/cgroup/{ctl}/berth/{c['Id']}")
            assert not os.path.exists(os.path.join(d.exec_root, "runtime", c["Id"]))
            assert not os.path.exists(os.path.join(d.exec_root, "containers", c["Id"]))
            assert len(procs_of(d)) <= 1, procs_of(d)  # at most the monitor host, idle
            d.docker("start", cname)
        log = c["LogPath"]
        wait_for(lambda: os.path.exists(log) and "hello" in open(log).read(), "the container's output")  # noqa: SIM115
        pid = d.inspect(cname)["State"]["Pid"]
        assert os.path.exists(f"/proc/{pid}")
        d.docker("stop", "-t", "10", cname)
        st = d.inspect(cname)["State"]
        assert (st["Status"], st["ExitCode"]) == ("exited", 3)
        with open(log) as f:
            assert [json.loads(line)["log"] for line in f] == ["hello\n"]  # intact, no duplicate run
        d.docker("rm", cname)
    d.docker("run", "--rm", "busybox", "true")  # the daemon works normally
    assert_nothing_left(d, ids)


@pytest.mark.parametrize("crash_berthd", ["daemon-exited", "daemon-remove-marked", "daemon-removed"], indirect=True)
def test_kill9_mid_run_rm(crash_berthd, cname):
    """berthd dies auto-removing a `run --rm` container: the restart finishes the removal."""
    d = crash_berthd
    since = time.time() - 1
    r = d.docker("run", "--rm", "--name", cname, "busybox", "echo", "hi", check=False)
    ids = ids_on_disk(d)
    restart_after_crash(d)
    assert r.returncode != 0 or r.stdout == b"hi\n"
    wait_for(lambda: d.docker("inspect", cname, check=False).returncode == 1, "removal after restart")
    _, body = api_get(d, f"/events?since={since}&until={time.time() + 1}")
    actions = [json.loads(x)["Action"] for x in body.splitlines() if x.strip()]
    assert actions[:4] == ["create", "attach", "start", "die"] and "destroy" in actions, actions
    assert_nothing_left(d, ids)


COMMIT_POINTS = ["daemon-commit-paused", "commit-blob-written", "before-image-tx", "after-image-tx"]


@pytest.mark.parametrize("crash_berthd", COMMIT_POINTS, indirect=True)
def test_kill9_mid_commit(crash_berthd, cname):
    d = crash_berthd
    since = before_crash(d, cname)
    point = d.env["BERTH_CRASH_AT"]
    d.docker("run", "-d", "--name", cname, "busybox", "sh", "-c", "echo m > /marker; " + LOOP)
    cid = d.inspect(cname)["Id"]
    wait_for(lambda: "hello" in d.out("logs", cname), "the container's output")
    r = d.docker("commit", cname, f"{cname}:1", check=False)
    assert r.returncode != 0
    ids = ids_on_disk(d)
    restart_after_crash(d)
    check_common_after_restart(d, cname, "/commit", since)
    # The container was paused for the commit: the restart resumes it, and it answers.
    st = d.inspect(cname)["State"]
    assert st["Running"] and not st["Paused"] and st["Status"] == "running"
    assert d.out("exec", cname, "cat", "/marker") == "m\n"
    # The image is whole or absent: `images` and inspect agree, and a whole one runs.
    listed = f"{cname}:1" in d.out("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    inspected = d.docker("image", "inspect", f"{cname}:1", check=False).returncode == 0
    assert listed == inspected
    assert listed == (point == "after-image-tx")
    if not listed:
        d.docker("commit", cname, f"{cname}:1")
    assert d.out("run", "--rm", f"{cname}:1", "cat", "/marker") == "m\n"
    d.docker("stop", "-t", "10", cname)
    assert d.inspect(cname)["State"]["ExitCode"] == 3
    with open(d.inspect(cname)["LogPath"]) as f:
        assert [json.loads(line)["log"] for line in f] == ["hello\n"]
    d.docker("rm", cname)
    d.docker("rmi", f"{cname}:1")
    assert cid in ids
    assert_nothing_left(d, ids)


def test_exec_records_survive_restart_and_go_with_container(fresh_berthd, cname):
    d = fresh_berthd
    cl = d.client()
    try:
        d.docker("run", "-d", "--name", cname, "busybox", "sleep", "300")
        done = cl.api.exec_create(cname, ["sh", "-c", "exit 5"])["Id"]
        cl.api.exec_start(done)
        live = cl.api.exec_create(cname, ["sh", "-c", "sleep 3; exit 6"])["Id"]
        cl.api.exec_start(live, detach=True)
        wait_for(lambda: cl.api.exec_inspect(live)["Running"], "the exec to run")
        pid = cl.api.exec_inspect(live)["Pid"]
        fresh = cl.api.exec_create(cname, ["true"])["Id"]
    finally:
        cl.close()
    d.stop(signal.SIGKILL)
    d.start()
    cl = d.client()
    try:
        e = cl.api.exec_inspect(done)
        assert (e["Running"], e["ExitCode"], e["ProcessConfig"]["entrypoint"]) == (False, 5, "sh")
        e = cl.api.exec_inspect(live)
        assert e["Running"] is True and e["Pid"] == pid
        # A created, never started exec can still be started after the restart.
        cl.api.exec_start(fresh)
        assert cl.api.exec_inspect(fresh)["ExitCode"] == 0
        assert set(d.inspect(cname)["ExecIDs"]) >= {done, live, fresh}
        # it ends while nobody from berthd listens: the monitor kept its exit code
        wait_for(lambda: not cl.api.exec_inspect(live)["Running"], "the adopted exec to end")
        assert cl.api.exec_inspect(live)["ExitCode"] == 6
        d.docker("rm", "-f", cname)
        import docker

        for eid in (done, live, fresh):
            with pytest.raises(docker.errors.NotFound):
                cl.api.exec_inspect(eid)
    finally:
        cl.close()
    d.stop(signal.SIGKILL)
    d.start()
    r = subprocess.run([*d.docker_cmd.split(), "exec", cname, "true"], capture_output=True)
    assert r.returncode != 0
    cl = d.client()
    try:
        import docker

        with pytest.raises(docker.errors.NotFound):
            cl.api.exec_inspect(done)
    finally:
        cl.close()


def test_kill9_under_concurrent_runs(fresh_berthd, cname):
    """SIGKILL while 16 `run -d` requests are in flight, at whatever stage each one is: after the
    restart each container is whole (runs, stops with its code, logged once) or gone."""
    import threading

    d = fresh_berthd
    names = [f"{cname}-{i}" for i in range(16)]
    started = threading.Barrier(len(names) + 1)

    def one(n: str) -> None:
        started.wait()
        subprocess.run([*d.docker_cmd.split(), "run", "-d", "--name", n, "busybox", "sh", "-c", LOOP],
                       capture_output=True, timeout=120)

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    started.wait()
    cdir = os.path.join(d.root, "containers")
    wait_for(lambda: sum(os.path.exists(os.path.join(cdir, e, "container.json")) for e in os.listdir(cdir)) >= 3,
             "some creates", 60)
    d.stop(signal.SIGKILL)
    for t in threads:
        t.join(130)
    ids = ids_on_disk(d)
    d.start()
    whole = 0
    for n in names:
        r = d.docker("inspect", n, check=False)
        if r.returncode != 0:
            continue
        whole += 1
        c = json.loads(r.stdout)[0]
        assert c["State"]["Status"] in ("created", "running"), c["State"]
        if c["State"]["Status"] == "created":
            d.docker("start", n)
        log = c["LogPath"]
        wait_for(lambda log=log: os.path.exists(log) and "hello" in open(log).read(), f"output of {n}")  # noqa: SIM115
    print(f"{whole} of {len(names)} containers whole after the restart")
    assert whole >= 1
    ps = d.out("ps", "-a", "--filter", f"name={cname}-", "--format", "{{.Names}} {{.State}}").split("\n")
    assert sorted(x for x in ps if x) == sorted(f"{n} running" for n in names
                                                 if d.docker("inspect", n, check=False).returncode == 0)
    live = [n for n in names if d.docker("inspect", n, check=False).returncode == 0]
    d.docker("stop", "-t", "10", *live)
    for n in live:
        st = d.inspect(n)["State"]
        assert (st["Status"], st["ExitCode"]) == ("exited", 3), (n, st)
        with open(d.inspect(n)["LogPath"]) as f:
            assert [json.loads(line)["log"] for line in f] == ["hello\n"]
    d.docker("rm", *live)
    assert_nothing_left(d, ids | {c for c in ids_on_disk(d)})
