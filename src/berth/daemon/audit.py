"""A durable audit log: one JSON line per state-changing API request, fsynced before the next.

Each record: time (RFC3339), uid, gid, pid (SO_PEERCRED of the caller), method, path, object (the
container/image/volume the request names, if any), status (the HTTP code) and error (message or null).
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from typing import Any


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def record(self, *, uid: int, gid: int, pid: int, method: str, path: str, obj: str | None,
               status: int, error: str | None, query: str = "") -> dict:
        now = datetime.now(UTC)
        rec: dict[str, Any] = {
            "time": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "timeUnix": now.timestamp(),
            "uid": uid, "gid": gid, "pid": pid, "method": method, "path": path,
            "query": query, "object": obj, "status": status, "error": error,
        }
        line = (json.dumps(rec) + "\n").encode()
        with self._lock:
            if self._fd < 0:
                return rec
            os.write(self._fd, line)
            os.fdatasync(self._fd)
        return rec

    def query(self, since: float | None = None, until: float | None = None, uid: int | None = None,
              obj: str | None = None, limit: int | None = None) -> list[dict]:
        out: list[dict] = []
        try:
            with open(self.path) as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
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
        except FileNotFoundError:
            pass
        if limit is not None and limit >= 0:
            out = out[-limit:] if limit else []
        return out

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
