"""A durable audit log: one JSON line per state-changing API request, fsynced before the next.

Each record: time (RFC3339), uid, gid, pid (SO_PEERCRED of the caller), method, path, object (the
container/image/volume the request names, if any), status (the HTTP code) and error (message or null).

A request is written twice under one request id ("rid"): when it is routed (status null; written,
not fsynced: a killed berthd keeps the page cache) and when it is answered (fdatasynced). query()
merges the pair; a begin without an end from an earlier berthd is a request the daemon died in.
"""

from __future__ import annotations

import contextvars
import json
import os
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

# Set (by the HTTP layer) while recording the end of a stream or hijack: that answer has already
# gone out, so the record is written at once (a killed berthd keeps the page cache) and synced by a
# background thread instead of the event loop, which the client's next request is waiting for.
SYNC_LATER: contextvars.ContextVar[bool] = contextvars.ContextVar("audit_sync_later", default=False)


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._boot = secrets.token_hex(4)  # this berthd's requests: rid = <boot>-<n>
        self._n = 0
        self._dirty = threading.Condition(self._lock)  # end records written but not yet synced
        self._unsynced = False
        self._syncer: threading.Thread | None = None

    def record(self, *, uid: int, gid: int, pid: int, method: str, path: str, obj: str | None,
               status: int | None, error: str | None, query: str = "", rid: str = "") -> dict:
        """status None is the begin record of a request; the end record passes its rid back."""
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
        line = (json.dumps(rec) + "\n").encode()
        with self._lock:
            if self._fd < 0:
                return rec
            os.write(self._fd, line)
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
        merged: dict[str, dict] = {}  # rid -> the request's latest record, in order of arrival
        try:
            with open(self.path) as f:
                for n, line in enumerate(f):
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    rid = rec.get("rid") or f"line-{n}"
                    if rid in merged and rec.get("status") is None:
                        continue
                    merged[rid] = rec
        except FileNotFoundError:
            pass
        out: list[dict] = []
        for rid, rec in merged.items():
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
