"""A durable audit log: one JSON line per state-changing API request, fsynced before the next.

Each record: time (RFC3339), uid, gid, pid (SO_PEERCRED of the caller), method, path, object (the
container/image/volume the request names, if any), status (the HTTP code) and error (message or null),
plus what the handler adds (an exec's create: its command, "cmd").

A request is written twice under one request id ("rid"): when it is routed (status null; written,
not fsynced: a killed berthd keeps the page cache) and when it is answered (fdatasynced). query()
merges the pair; a begin without an end from an earlier berthd is a request the daemon died in.

Rotation and retention. audit.jsonl is rotated when it reaches `max_size` bytes (audit.jsonl.1 is the
newest rotated file), and at most `max_files` files are kept; query() reads them all, oldest first.
When retention takes the oldest file away, the loss is itself on record: a "ROTATE" record, the first
of the new file, names the file, how many requests it held and the time span they cover
({"dropped": {"file", "records", "from", "to", "total"}}, "total" counting every request retention
ever took), and query() returns it whenever that span overlaps the asked one, whatever the other
filters. Why record rather than refuse to drop unexported records: refusing would leave two bad
choices when the disk budget is spent, failing every state-changing request (anyone allowed to make
requests could then stop the daemon by filling its log) or growing past the budget the operator set;
a record of the loss keeps the daemon working within its budget and makes the gap evident and
dated, so nobody mistakes a trimmed log for a quiet one. Whoever needs everything exports the rotated
files (they are plain JSON lines) before they age out, and sizes --audit-log-max-size/-max-files to
match. A crash between taking the file away (renamed audit.jsonl.drop-N) and recording it is
repaired by the next open, which records and removes it.
"""

from __future__ import annotations

import contextvars
import json
import os
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

from berth.daemon import _rotate

DEFAULT_MAX_SIZE = 10 << 20
DEFAULT_MAX_FILES = 5
ROTATE = "ROTATE"  # the method of a retention record

# Set (by the HTTP layer) while recording the end of a stream or hijack: that answer has already
# gone out, so the record is written at once (a killed berthd keeps the page cache) and synced by a
# background thread instead of the event loop, which the client's next request is waiting for.
SYNC_LATER: contextvars.ContextVar[bool] = contextvars.ContextVar("audit_sync_later", default=False)


class AuditLog:
    def __init__(self, path: str, max_size: int = DEFAULT_MAX_SIZE, max_files: int = DEFAULT_MAX_FILES) -> None:
        self.path = path
        self.max_size = max(int(max_size), 1)
        self.max_files = max(int(max_files), 1)
        self._lock = threading.Lock()
        self._fd = _rotate.open_private(path)
        _rotate.chmod_rotated(path)
        self._size = os.fstat(self._fd).st_size
        self._boot = secrets.token_hex(4)  # this berthd's requests: rid = <boot>-<n>
        self._n = 0
        self._dirty = threading.Condition(self._lock)  # end records written but not yet synced
        self._unsynced = False
        self._syncer: threading.Thread | None = None
        self._dropped_total = self._last_total()
        with self._lock:
            leftover = sorted(n for n in os.listdir(os.path.dirname(path) or ".")
                              if n.startswith(os.path.basename(path) + ".drop-"))
            if leftover:  # a crash in the middle of a rotation: the loss still goes on record
                self._record_drops([os.path.join(os.path.dirname(path), n) for n in leftover])
            if self._size >= self.max_size:
                self._rotate_locked()

    def record(self, *, uid: int, gid: int, pid: int, method: str, path: str, obj: str | None,
               status: int | None, error: str | None, query: str = "", rid: str = "",
               extra: dict[str, Any] | None = None) -> dict:
        """status None is the begin record of a request; the end record passes its rid back.
        `extra`: more fields for the record (they cannot replace the standard ones)."""
        now = datetime.now(UTC)
        if not rid:
            with self._lock:
                self._n += 1
                rid = f"{self._boot}-{self._n}"
        rec: dict[str, Any] = {"rid": rid,
            "time": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "timeUnix": now.timestamp(),
            "uid": uid, "gid": gid, "pid": pid, "method": method, "path": path,
            "query": query, "object": obj, "status": status, "error": error,
        }
        for k, v in (extra or {}).items():
            rec.setdefault(k, v)
        line = (json.dumps(rec) + "\n").encode()
        with self._lock:
            if self._fd < 0:
                return rec
            os.write(self._fd, line)
            self._size += len(line)
            if self._size >= self.max_size:
                self._rotate_locked()  # synced there: whatever SYNC_LATER asked
                return rec
            if status is not None:
                if SYNC_LATER.get():
                    self._unsynced = True
                    if self._syncer is None:
                        self._syncer = threading.Thread(target=self._sync_loop, name="audit-sync", daemon=True)
                        self._syncer.start()
                    self._dirty.notify()
                else:
                    os.fdatasync(self._fd)
                    self._unsynced = False
        return rec

    # -- rotation ---------------------------------------------------------------------------------
    def _rotate_locked(self) -> None:
        os.fdatasync(self._fd)
        os.close(self._fd)
        self._unsynced = False
        dropped = _rotate.shift(self.path, self.max_files)
        self._fd = _rotate.open_private(self.path)
        self._size = 0
        self._record_drops(dropped)

    def _record_drops(self, dropped: list[str]) -> None:
        """One ROTATE record per file retention takes, written and synced before it is unlinked."""
        if not dropped:
            return
        for f in dropped:
            n, t1, t2 = _summary(f)
            self._dropped_total += n
            now = datetime.now(UTC)
            self._n += 1
            name = os.path.basename(f).replace(".drop-", ".")
            span = (f"from {_iso(t1)} to {_iso(t2)}" if n else "(none)")
            rec = {"rid": f"{self._boot}-{self._n}", "time": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                   "timeUnix": now.timestamp(), "uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(),
                   "method": ROTATE, "path": "", "query": "", "object": None, "status": 0,
                   "error": f"audit log rotated: dropped file {name} with {n} records {span}",
                   "dropped": {"file": name, "records": n, "from": t1, "to": t2, "total": self._dropped_total}}
            line = (json.dumps(rec) + "\n").encode()
            os.write(self._fd, line)
            self._size += len(line)
        os.fdatasync(self._fd)
        for f in dropped:
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass

    def _last_total(self) -> int:
        """The "total" of the newest ROTATE record: each file rotation made begins with one."""
        for f in reversed(_rotate.files_oldest_first(self.path)):
            try:
                with open(f) as fh:
                    rec = json.loads(fh.readline() or "{}")
            except (OSError, ValueError):
                continue
            if rec.get("method") == ROTATE:
                return int((rec.get("dropped") or {}).get("total") or 0)
        return 0

    def _sync_loop(self) -> None:
        with self._lock:
            while self._fd >= 0:
                while not self._unsynced and self._fd >= 0:
                    self._dirty.wait()
                if self._fd < 0:
                    return
                self._unsynced = False
                fd = os.dup(self._fd)
                self._lock.release()
                try:
                    os.fdatasync(fd)  # outside the lock: records go on being written meanwhile
                except OSError:
                    pass
                finally:
                    os.close(fd)
                    self._lock.acquire()

    def query(self, since: float | None = None, until: float | None = None, uid: int | None = None,
              obj: str | None = None, limit: int | None = None) -> list[dict]:
        """Every file, oldest first (a rotation under way does not change what is read: the files are
        opened together under the lock). ROTATE records pass whenever what they dropped overlaps
        [since, until], so that nobody reads a trimmed log without knowing."""
        with self._lock:
            handles = []
            for p in _rotate.files_oldest_first(self.path):
                try:
                    handles.append(open(p))  # noqa: SIM115 - closed below
                except FileNotFoundError:
                    continue
        merged: dict[str, dict] = {}  # rid -> the request's latest record, in order of arrival
        n = 0
        for f in handles:
            with f:
                for line in f:
                    n += 1
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if not isinstance(rec, dict):
                        continue
                    rid = rec.get("rid") or f"line-{n}"
                    if rid in merged and rec.get("status") is None:
                        continue
                    merged[rid] = rec
        out: list[dict] = []
        for rid, rec in merged.items():
            if rec.get("method") == ROTATE:
                dr = rec.get("dropped") or {}
                lo, hi = dr.get("from") or rec.get("timeUnix", 0), max(dr.get("to") or 0, rec.get("timeUnix", 0))
                if (since is None or hi >= since) and (until is None or lo <= until):
                    out.append(rec)
                continue
            if rec.get("status") is None and not rid.startswith(self._boot + "-"):
                rec = {**rec, "error": "interrupted: berthd stopped before answering"}
            t = rec.get("timeUnix", 0)
            if since is not None and t < since:
                continue
            if until is not None and t > until:
                continue
            if uid is not None and rec.get("uid") != uid:
                continue
            if obj is not None and not (rec.get("object") or "").startswith(obj):
                continue
            out.append(rec)
        if limit is not None and limit >= 0:
            out = out[-limit:] if limit else []
        return out

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                if self._unsynced:
                    os.fdatasync(self._fd)
                os.close(self._fd)
                self._fd = -1
                self._dirty.notify_all()


def _summary(path: str) -> tuple[int, float | None, float | None]:
    """(requests, first time, last time) of a file about to be dropped; ROTATE records aside (their
    counts live on in the totals)."""
    rids: set[str] = set()
    t1 = t2 = None
    try:
        with open(path) as f:
            for n, line in enumerate(f):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(rec, dict) or rec.get("method") == ROTATE:
                    continue
                rids.add(rec.get("rid") or f"line-{n}")
                t = rec.get("timeUnix")
                if isinstance(t, (int, float)):
                    t1 = t if t1 is None else min(t1, t)
                    t2 = t if t2 is None else max(t2, t)
    except FileNotFoundError:
        pass
    return len(rids), t1, t2


def _iso(t: float | None) -> str:
    return datetime.fromtimestamp(t or 0, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
