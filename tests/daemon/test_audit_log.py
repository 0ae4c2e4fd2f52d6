"""berth.daemon.audit.AuditLog on a real file: begin/end records, and ends recorded after their answer
(streams, hijacks), whose sync a background thread does."""

from __future__ import annotations

import json
import threading

from berth.daemon.audit import SYNC_LATER, AuditLog


def _rec(log: AuditLog, status: int | None, rid: str = "") -> dict:
    return log.record(uid=0, gid=0, pid=1, method="POST", path="/exec/x/start", obj="x", status=status,
                      error=None, rid=rid)


def test_end_records_synced_later_are_in_the_file_at_once(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    log = AuditLog(path)
    try:
        begin = _rec(log, None)
        token = SYNC_LATER.set(True)
        try:
            _rec(log, 200, begin["rid"])
        finally:
            SYNC_LATER.reset(token)
        _rec(log, 201)  # a synced one after it
        with open(path) as f:
            lines = [json.loads(x) for x in f]
        assert [r["status"] for r in lines] == [None, 200, 201]
        assert [r["status"] for r in log.query()] == [200, 201]  # the begin merged into its end
        assert any(t.name == "audit-sync" for t in threading.enumerate())
    finally:
        log.close()
    # closing stops the syncer and leaves the file whole
    with open(path) as f:
        assert len(f.readlines()) == 3


def test_many_deferred_ends_from_threads(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    log = AuditLog(path)

    def work() -> None:
        token = SYNC_LATER.set(True)
        try:
            for _ in range(50):
                _rec(log, 200)
        finally:
            SYNC_LATER.reset(token)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    log.close()
    with open(path) as f:
        assert sum(1 for line in f if json.loads(line)["status"] == 200) == 200
