"""Restart policies, health checks, events, the audit log, cp/diff/export/commit, images and volumes."""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import time

import pytest

from berth.testing.waiting import wait_for

pytestmark = pytest.mark.interop




def api_get(berthd, path: str) -> tuple[int, bytes]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(berthd.sock)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    if b"chunked" in head.lower():
        out, rest = b"", body
        while rest:
            n, _, rest = rest.partition(b"\r\n")
            size = int(n, 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    return status, body


def test_restart_policies(berthd, cname):
    a, b = cname + "-f", cname + "-a"
    berthd.docker("run", "-d", "--name", a, "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
    berthd.docker("run", "-d", "--name", b, "--restart", "always", "busybox", "sh", "-c", "sleep 0.2; exit 0")
    try:
        wait_for(lambda: berthd.inspect(a)["RestartCount"] == 2 and not berthd.inspect(a)["State"]["Running"]
                 and berthd.inspect(a)["State"]["Status"] == "exited", "on-failure:2 to give up")
        st = berthd.inspect(a)["State"]
        assert st["ExitCode"] == 3
        wait_for(lambda: berthd.inspect(b)["RestartCount"] >= 2, "always to restart")
        berthd.docker("stop", "-t", "1", b)
        n = berthd.inspect(b)["RestartCount"]
        time.sleep(1)
        assert berthd.inspect(b)["RestartCount"] == n and not berthd.inspect(b)["State"]["Running"]
    finally:
        berthd.docker("rm", "-f", a, b, check=False)


def test_health_checks(berthd, cname):
    since = int(time.time()) - 1
    good, bad = cname + "-g", cname + "-b"
    berthd.docker("run", "-d", "--name", good, "--health-cmd", "test -e /tmp/ready", "--health-interval", "300ms",
                  "--health-retries", "2", "busybox", "sh", "-c", "sleep 1; touch /tmp/ready; sleep 300")
    berthd.docker("run", "-d", "--name", bad, "--health-cmd", "exit 1", "--health-interval", "300ms",
                  "--health-retries", "2", "busybox", "sleep", "300")
    try:
        assert berthd.inspect(good)["State"]["Health"]["Status"] in ("starting", "healthy")
        wait_for(lambda: berthd.inspect(good)["State"]["Health"]["Status"] == "healthy", "healthy")
        wait_for(lambda: berthd.inspect(bad)["State"]["Health"]["Status"] == "unhealthy", "unhealthy")
        h = berthd.inspect(bad)["State"]["Health"]
        assert h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1
        assert "(unhealthy)" in berthd.out("ps", "--filter", f"name={bad}", "--format", "{{.Status}}")
        st, body = api_get(berthd, f"/v1.41/events?since={since}&until={int(time.time()) + 1}")
        evs = [json.loads(x) for x in body.splitlines() if x.strip()]
        acts = {(e["Actor"]["Attributes"].get("name"), e["Action"]) for e in evs}
        assert (good, "health_status: healthy") in acts and (bad, "health_status: unhealthy") in acts
    finally:
        berthd.docker("rm", "-f", good, bad, check=False)


def test_events_and_audit(berthd, cname):
    since = time.time() - 0.5
    berthd.docker("run", "--name", cname, "busybox", "true")
    berthd.docker("rm", cname)
    berthd.docker("rm", cname, check=False)  # a 404 is audited too
    until = time.time() + 1
    st, body = api_get(berthd, f"/v1.41/events?since={since}&until={until}"
                               f"&filters=%7B%22container%22%3A%7B%22{cname}%22%3Atrue%7D%7D")
    assert st == 200
    actions = [json.loads(x)["Action"] for x in body.splitlines() if x.strip()]
    for a in ("create", "attach", "start", "die", "destroy"):
        assert a in actions, actions
    assert actions.index("create") < actions.index("start") < actions.index("die") < actions.index("destroy")
    # durable: the history survives in events.jsonl on disk
    with open(os.path.join(berthd.root, "events.jsonl")) as f:
        assert sum(1 for line in f if cname in line) >= 5
    st, body = api_get(berthd, f"/berth/audit?since={since}&uid=0")
    recs = json.loads(body)
    mine = [r for r in recs if r["object"] == cname or cname in r.get("query", "")]
    assert any(r["method"] == "POST" and r["path"] == "/containers/create" and r["status"] == 201 for r in mine)
    dels = [r for r in mine if r["method"] == "DELETE"]
    assert [r["status"] for r in dels] == [204, 404]
    for r in mine:
        assert r["uid"] == 0 and r["gid"] == 0 and r["pid"] > 0
    with open(os.path.join(berthd.root, "audit.jsonl")) as f:
        on_disk = [json.loads(line) for line in f]
    assert any(r["object"] == cname and r["status"] == 404 for r in on_disk)


def test_cp_diff_export_commit(berthd, cname, tmp_path):
    berthd.docker("run", "-d", "--name", cname, "busybox", "sh", "-c", "echo hi > /etc/newfile; rm /etc/group; sleep 300")
    try:
        wait_for(lambda: berthd.docker("exec", cname, "test", "-e", "/etc/newfile", check=False).returncode == 0,
                 "file created")
        diff = berthd.out("diff", cname).splitlines()
        assert "A /etc/newfile" in diff and "D /etc/group" in diff and "C /etc" in diff
        got = tmp_path / "got"
        berthd.docker("cp", f"{cname}:/etc/newfile", str(got))
        assert got.read_text() == "hi\n"
        up = tmp_path / "up.txt"
        up.write_text("uploaded\n")
        berthd.docker("cp", str(up), f"{cname}:/tmp/")
        assert berthd.out("exec", cname, "cat", "/tmp/up.txt") == "uploaded\n"
        out = berthd.docker("export", cname).stdout
        names = tarfile.open(fileobj=io.BytesIO(out)).getnames()  # noqa: SIM115
        assert any(n.endswith("etc/newfile") for n in names) and not any(n.endswith("etc/group") for n in names)
        ref = f"{cname}-img:v1"
        iid = berthd.out("commit", "-c", "ENV X=1", cname, ref).strip()
        assert iid.startswith("sha256:")
        assert berthd.out("run", "--rm", ref, "sh", "-c", "cat /etc/newfile; echo $X") == "hi\n1\n"
        berthd.docker("rmi", ref)
    finally:
        berthd.docker("rm", "-f", cname, check=False)


def test_images_save_load_import_tag_rmi(berthd, cname, tmp_path):
    ref = f"{cname}:t1"
    berthd.docker("tag", "busybox", ref)
    try:
        assert ref in berthd.out("images", "--format", "{{.Repository}}:{{.Tag}}").split()
        img = json.loads(berthd.out("image", "inspect", ref))[0]
        assert img["RepoTags"] and img["RootFS"]["Type"] == "layers"
        assert berthd.out("history", "-q", ref).strip()
        tar = tmp_path / "img.tar"
        berthd.docker("save", "-o", str(tar), ref)
        assert "manifest.json" in tarfile.open(tar).getnames()  # noqa: SIM115
        berthd.docker("rmi", ref)
        assert ref not in berthd.out("images", "--format", "{{.Repository}}:{{.Tag}}").split()
        out = berthd.out("load", "-i", str(tar))
        assert f"Loaded image: {ref}" in out
        assert berthd.out("run", "--rm", ref, "echo", "loaded") == "loaded\n"
        # import a rootfs tar from stdin
        rootfs = berthd.docker("export", berthd.out("create", ref, "true").strip()).stdout
        iid = berthd.out("import", "-c", 'CMD ["echo", "imported"]', "-", f"{cname}-imp:1", input=rootfs).strip()
        assert iid.startswith("sha256:")
        assert berthd.out("run", "--rm", f"{cname}-imp:1") == "imported\n"
        r = berthd.docker("rmi", "nosuchimage-zz", check=False)
        assert r.returncode == 1 and b"No such image" in r.stderr
    finally:
        berthd.docker("container", "prune", "-f", check=False)
        berthd.docker("rmi", "-f", ref, f"{cname}-imp:1", check=False)


def test_volumes(berthd, cname):
    vol = cname + "-v"
    berthd.docker("volume", "create", vol)
    try:
        info = json.loads(berthd.out("volume", "inspect", vol))[0]
        assert info["Driver"] == "local" and os.path.isdir(info["Mountpoint"])
        berthd.docker("run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo persisted > /data/f")
        with open(os.path.join(info["Mountpoint"], "f")) as f:
            assert f.read() == "persisted\n"
        assert berthd.out("run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "cat", "/data/f") == "persisted\n"
        r = berthd.docker("run", "--rm", "-v", f"{vol}:/data:ro", "busybox", "touch", "/data/x", check=False)
        assert r.returncode != 0
        berthd.docker("run", "-d", "--name", cname, "-v", f"{vol}:/data", "-v", "/anon", "busybox", "sleep", "300")
        anon = [m["Name"] for m in berthd.inspect(cname)["Mounts"] if m["Destination"] == "/anon"][0]
        assert anon in berthd.out("volume", "ls", "-q").split()
        r = berthd.docker("volume", "rm", vol, check=False)
        assert r.returncode == 1 and b"in use" in r.stderr
        berthd.docker("rm", "-f", "-v", cname)
        vols = berthd.out("volume", "ls", "-q").split()
        assert vol in vols and anon not in vols  # rm -v: anonymous volumes only
        berthd.docker("volume", "rm", vol)
        assert vol not in berthd.out("volume", "ls", "-q").split()
    finally:
        berthd.docker("rm", "-f", cname, check=False)
        berthd.docker("volume", "rm", "-f", vol, check=False)


def test_stats_stream_and_update_restart_policy(berthd, cname):
    berthd.docker("run", "-d", "--name", cname, "busybox", "sleep", "300")
    try:
        cl = berthd.client()
        try:
            c = cl.containers.get(cname)
            it = c.stats(stream=True, decode=True)
            a, b = next(it), next(it)
            assert a["id"] == c.id and b["precpu_stats"]["cpu_usage"]["total_usage"] == \
                a["cpu_stats"]["cpu_usage"]["total_usage"]
            assert b["memory_stats"]["usage"] > 0 and b["pids_stats"]["current"] == 1
        finally:
            cl.close()
        berthd.docker("update", "--restart", "on-failure:3", cname)
        assert berthd.inspect(cname)["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    finally:
        berthd.docker("rm", "-f", cname, check=False)
