"""What the audit log records (decided by the route table, not by the request's path), the modes of
the daemon's logs, and their rotation: a rotated record stays readable, a dropped file is itself on
record, and events are replayed across rotated files."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from berth.daemon.audit import AuditLog
from berth.daemon.events import Events


def _audit(d, **params) -> list[dict]:
    cl = d.client()
    try:
        r = cl.api._get(cl.api._url("/berth/audit"), params=params)
        r.raise_for_status()
        return r.json()
    finally:
        cl.close()


def _rec(log: AuditLog, path: str, status: int | None = 200, rid: str = "") -> dict:
    return log.record(uid=0, gid=0, pid=1, method="POST", path=path, obj=None, status=status, error=None, rid=rid)


# ------------------------------------------------------------------------------ the route decides


def test_container_named_like_a_probe_is_audited(berthd, cname):
    """The old rule skipped every path starting /containers/create_probe: a container so named
    escaped the log for all it did."""
    d = berthd
    name = f"create_probe{cname}"
    since = time.time() - 1
    d.docker("create", "--name", name, "busybox", "sleep", "30")
    try:
        d.docker("start", name)
        d.docker("kill", name)
        d.docker("rename", name, f"{name}-2")
    finally:
        d.docker("rm", "-f", f"{name}-2", check=False)
        d.docker("rm", "-f", name, check=False)
    recs = _audit(d, since=since)
    paths = {(r["method"], r["path"]) for r in recs if r["status"] is not None}
    for p in (f"/containers/{name}/start", f"/containers/{name}/kill", f"/containers/{name}/rename"):
        assert ("POST", p) in paths, recs


def test_read_only_routes_are_not_audited_and_exec_create_is_with_its_command(berthd, cname):
    d = berthd
    since = time.time() - 1
    d.docker("run", "-d", "--name", cname, "busybox", "sleep", "60")
    cl = d.client()
    try:
        eid = cl.api.exec_create(cname, ["echo", "audited-cmd"])["Id"]
        assert cl.api.exec_start(eid) == b"audited-cmd\n"
        cl.api.inspect_container(cname)
        cl.containers.get(cname).logs()
    finally:
        cl.close()
        d.docker("rm", "-f", cname)
    recs = [r for r in _audit(d, since=since) if r["status"] is not None]
    # the session's daemon is shared with other tests: only this container's exec creates
    creates = [r for r in recs if r["path"] == f"/containers/{cname}/exec" and r["method"] == "POST"]
    assert len(creates) == 1, recs
    assert creates[0]["status"] == 201 and creates[0]["cmd"] == ["echo", "audited-cmd"], creates
    assert any(r["path"] == f"/exec/{eid}/start" for r in recs)
    assert not [r for r in recs if r["method"] in ("GET", "HEAD")], recs
    assert not [r for r in recs if r["path"].endswith("/wait")], recs  # docker run waits: no change


def test_router_marks_state_changing_routes():
    from berth.daemon.http import Peer, Request, Router, mutating_of

    async def h(req):  # pragma: no cover - never called
        return None

    r = Router()
    r.add("POST", "/containers/{id}/start", h)
    r.add("POST", "/containers/{id}/wait", h, mutating=False)
    r.add("GET", "/containers/{id}/json", h)
    r.add("POST", "/containers/{id}/attach", h, mutating=lambda req: req.qbool("stdin"))

    def req(method: str, path: str, query: dict | None = None) -> Request:
        return Request(method=method, path=path, api_version="1.41", query=query or {}, headers={},
                       peer=Peer(1, 0, 0), _body=lambda: None)  # type: ignore[arg-type,return-value]

    assert mutating_of(r, req("POST", "/containers/create_probe1/start"))
    assert not mutating_of(r, req("POST", "/containers/x/wait"))
    assert not mutating_of(r, req("GET", "/containers/x/json"))
    assert not mutating_of(r, req("POST", "/containers/x/attach", {"stdout": ["1"]}))
    assert mutating_of(r, req("POST", "/containers/x/attach", {"stdin": ["1"]}))
    assert mutating_of(r, req("DELETE", "/nowhere"))  # no route: an attempt at a change is kept


def test_daemon_route_table_marks(berthd):
    """Every non-GET route of the daemon's table is state-changing but the read-only POSTs."""
    from berth.daemon.http import Router
    from berth.daemon.routers import build_router

    class Eng:  # build_router only stores the engine in the handlers' closures
        pass

    r: Router = build_router(Eng())  # type: ignore[arg-type]
    marks = {(m, rx.pattern): mut for m, rx, _h, mut in r.routes}
    for (m, pat), mut in marks.items():
        if m in ("GET", "HEAD"):
            assert mut is False, pat
    wait = [mut for (m, pat), mut in marks.items() if m == "POST" and pat.endswith("/wait$")]
    assert wait == [False]
    exec_create = [mut for (m, pat), mut in marks.items() if m == "POST" and pat.endswith("/exec$")]
    assert exec_create == [True]


# ------------------------------------------------------------------------------ modes


def test_logs_are_0600_new_and_existing(tmp_path):
    for name in ("audit.jsonl", "events.jsonl"):
        p = tmp_path / name
        p.write_text("")
        os.chmod(p, 0o644)
    a = AuditLog(str(tmp_path / "audit.jsonl"))
    e = Events(str(tmp_path / "events.jsonl"))
    a.close()
    e.close()
    for name in ("audit.jsonl", "events.jsonl"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    os.umask(old := os.umask(0o022))
    a = AuditLog(str(tmp_path / "new-audit.jsonl"))
    e = Events(str(tmp_path / "new-events.jsonl"))
    a.close()
    e.close()
    assert stat.S_IMODE(os.stat(tmp_path / "new-audit.jsonl").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "new-events.jsonl").st_mode) == 0o600
    assert old is not None


def test_berthd_root_logs_are_0600(berthd):
    for name in ("audit.jsonl", "events.jsonl"):
        assert stat.S_IMODE(os.stat(os.path.join(berthd.root, name)).st_mode) == 0o600, name


# ------------------------------------------------------------------------------ rotation


def test_audit_rotates_by_size_and_reads_across_files(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    log = AuditLog(path, max_size=2000, max_files=50)
    try:
        rids = []
        for i in range(60):
            b = _rec(log, f"/containers/c{i}/start", None)
            _rec(log, f"/containers/c{i}/start", 204, b["rid"])
            rids.append(b["rid"])
        files = sorted(os.listdir(tmp_path))
        assert "audit.jsonl.1" in files and len(files) > 3, files
        for f in files:
            assert os.path.getsize(tmp_path / f) <= 2000 + 400, f
            assert stat.S_IMODE(os.stat(tmp_path / f).st_mode) == 0o600
        recs = log.query()
        assert [r["rid"] for r in recs] == rids  # every pair merged, in order, across the files
        assert all(r["status"] == 204 for r in recs)
        assert [r["rid"] for r in log.query(limit=3)] == rids[-3:]
    finally:
        log.close()
    # a restarted daemon reads them all the same
    log = AuditLog(path, max_size=2000, max_files=50)
    try:
        assert [r["rid"] for r in log.query()] == rids
    finally:
        log.close()


def test_audit_retention_records_what_it_drops(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    log = AuditLog(path, max_size=1500, max_files=3)
    try:
        t0 = time.time()
        for i in range(80):
            _rec(log, f"/volumes/v{i}", 201)
        files = sorted(os.listdir(tmp_path))
        assert len(files) <= 3, files
        recs = log.query()
        kept = [r for r in recs if r["path"].startswith("/volumes/")]
        drops = [r for r in recs if r["method"] == "ROTATE"]
        assert drops, recs
        # each drop names its file, how many records went and their time span; no record is lost
        # without one: the dropped counts and the kept records add up to all that was written.
        dropped = drops[-1]["dropped"]["total"]  # every drop so far, the dropped drop records' too
        assert dropped + len(kept) == 80, (dropped, len(kept))
        assert [int(r["path"][len("/volumes/v"):]) for r in kept] == list(range(dropped, 80))
        for r in drops:
            assert r["dropped"]["file"].startswith("audit.jsonl.")
            assert t0 - 1 <= r["dropped"]["from"] <= r["dropped"]["to"] <= time.time()
            assert "dropped" in r["error"] and r["status"] == 0
    finally:
        log.close()


def test_events_rotate_and_replay_across_files(tmp_path):
    path = str(tmp_path / "events.jsonl")
    ev = Events(path, max_size=3000, max_files=100, memory=10)
    t0 = time.time()
    try:
        for i in range(100):
            ev.emit("volume", "create", f"v{i}", {"driver": "local"})
        assert len(ev.history) == 10
        files = os.listdir(tmp_path)
        assert "events.jsonl.1" in files and len(files) > 3, files
        for f in files:
            assert stat.S_IMODE(os.stat(tmp_path / f).st_mode) == 0o600
        got = ev.replay(t0 - 1, None)
        assert [e["Actor"]["ID"] for e in got] == [f"v{i}" for i in range(100)]
    finally:
        ev.close()
    ev = Events(path, max_size=3000, max_files=100, memory=10)  # after a restart
    try:
        got = ev.replay(t0 - 1, time.time() + 1)
        assert [e["Actor"]["ID"] for e in got] == [f"v{i}" for i in range(100)]
        assert [e["Actor"]["ID"] for e in ev.history] == [f"v{i}" for i in range(90, 100)]
    finally:
        ev.close()


def test_events_retention_bounds_the_files(tmp_path):
    path = str(tmp_path / "events.jsonl")
    ev = Events(path, max_size=2000, max_files=2)
    try:
        for i in range(200):
            ev.emit("volume", "create", f"v{i}")
    finally:
        ev.close()
    assert sorted(os.listdir(tmp_path)) == ["events.jsonl", "events.jsonl.1"]


@pytest.fixture
def small_log_berthd(fresh_berthd):
    d = fresh_berthd
    d.stop()
    d.extra_args = ("--audit-log-max-size", "4k", "--audit-log-max-files", "2")
    d.start()
    return d


def test_berthd_audit_rotation_options(small_log_berthd, cname):
    """The daemon's options: a small audit log rotates, GET /berth/audit reads across the files and
    shows what retention dropped."""
    d = small_log_berthd
    for i in range(40):
        d.docker("volume", "create", f"{cname}-{i}")
    d.docker("volume", "rm", *[f"{cname}-{i}" for i in range(40)])
    files = sorted(f for f in os.listdir(d.root) if f.startswith("audit.jsonl"))
    assert files == ["audit.jsonl", "audit.jsonl.1"], files
    recs = _audit(d)
    drops = [r for r in recs if r["method"] == "ROTATE"]
    assert drops and all(r["dropped"]["records"] > 0 for r in drops), recs
    kept = [r for r in recs if r["method"] != "ROTATE"]
    assert kept[-1]["path"] == f"/volumes/{cname}-39" and kept[-1]["method"] == "DELETE"
    assert drops[-1]["dropped"]["total"] + len(kept) >= 80
    assert json.dumps(recs)
