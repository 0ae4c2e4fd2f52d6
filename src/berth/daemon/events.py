"""Docker-style events: every action is kept in memory (bounded) and appended to events.jsonl, so
`GET /events?since=` replays history across daemon restarts. events.jsonl is rotated by size like the
audit log (events.jsonl.1 the newest rotated file, `max_files` files in all) and replay() reads the
rotated files too when the memory window does not reach back far enough; the oldest file simply goes
when retention says so (events are history, not a record of who did what: that is the audit log)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import deque
from typing import Any

from berth.daemon import _rotate

_MEMORY = 5000
DEFAULT_MAX_SIZE = 10 << 20
DEFAULT_MAX_FILES = 5


class Events:
    def __init__(self, path: str, max_size: int = DEFAULT_MAX_SIZE, max_files: int = DEFAULT_MAX_FILES,
                 memory: int = _MEMORY) -> None:
        self.path = path
        self.max_size = max(int(max_size), 1)
        self.max_files = max(int(max_files), 1)
        self.history: deque[dict] = deque(maxlen=memory)
        self.subscribers: set[asyncio.Queue] = set()
        self._lock = threading.Lock()  # rotation against replay()'s readers (threads)
        self._evicted = False  # the memory window no longer holds everything on disk
        self._load()
        self._fd = _rotate.open_private(path)
        _rotate.chmod_rotated(path)
        self._size = os.fstat(self._fd).st_size
        if self._size >= self.max_size:  # e.g. written by a berthd that did not rotate
            self._rotate()

    def _load(self) -> None:
        want = self.history.maxlen or 0
        got: list[dict] = []
        files = _rotate.files_oldest_first(self.path)
        read_all = True
        for i, f in enumerate(reversed(files)):  # newest first, until the memory window is full
            got = _read(f) + got
            if len(got) >= want and i < len(files) - 1:
                read_all = False
                break
        self._evicted = not read_all or len(got) > want
        for ev in got[-want:] if want else []:
            self.history.append(ev)

    def replay(self, since: float | None, until: float | None = None) -> list[dict]:
        """The events from `since` to `until` (unix seconds): from memory when its window reaches back
        that far, else from the files (oldest first). Runs in a thread: it may read them all."""
        if since is None:
            return []
        lo = since * 1e9
        hi = None if until is None else until * 1e9
        hist = list(self.history)
        if not (self._evicted and (not hist or hist[0]["timeNano"] >= lo)):
            return [ev for ev in hist if ev["timeNano"] >= lo and (hi is None or ev["timeNano"] <= hi)]
        with self._lock:
            handles = []
            for p in _rotate.files_oldest_first(self.path):
                try:
                    handles.append(open(p))  # noqa: SIM115 - read and closed by _read
                except FileNotFoundError:
                    continue
        out = []
        for h in handles:
            for ev in _read(h):
                t = ev.get("timeNano", 0)
                if t >= lo and (hi is None or t <= hi):
                    out.append(ev)
        return out

    def _rotate(self) -> None:
        with self._lock:
            os.close(self._fd)
            for f in _rotate.shift(self.path, self.max_files):
                os.unlink(f)
            self._fd = _rotate.open_private(self.path)
            self._size = 0

    def emit(self, type_: str, action: str, actor_id: str, attrs: dict[str, str] | None = None,
             scope: str = "local") -> dict:
        now = time.time_ns()
        ev: dict[str, Any] = {}
        if type_ in ("container", "image"):
            ev["status"] = action
            ev["id"] = actor_id
            if type_ == "container" and attrs and "image" in attrs:
                ev["from"] = attrs["image"]
        ev.update({
            "Type": type_, "Action": action,
            "Actor": {"ID": actor_id, "Attributes": _sorted(attrs)},
            "scope": scope, "time": now // 1_000_000_000, "timeNano": now,
        })
        if self.history.maxlen is not None and len(self.history) == self.history.maxlen:
            self._evicted = True
        self.history.append(ev)
        line = (json.dumps(ev) + "\n").encode()
        try:
            os.write(self._fd, line)
            self._size += len(line)
            if self._size >= self.max_size:
                self._rotate()
        except OSError:
            pass
        for q in list(self.subscribers):
            q.put_nowait(ev)
        return ev

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers.discard(q)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read(f: Any) -> list[dict]:
    """The events in a file (a path or an open file), torn or foreign lines skipped."""
    out = []
    try:
        fh = open(f) if isinstance(f, str) else f  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return out
    with fh:
        for line in fh:
            try:
                ev = json.loads(line)
                actor = ev.get("Actor")
                if isinstance(actor, dict) and isinstance(actor.get("Attributes"), dict):
                    actor["Attributes"] = _sorted(actor["Attributes"])  # written by an older berthd
                if isinstance(ev.get("timeNano"), int):
                    out.append(ev)
            except (ValueError, AttributeError):
                continue  # a torn last line after a crash
    return out


def _sorted(attrs: dict[str, str] | None) -> dict[str, str]:
    """Attributes in key order, as dockerd's JSON has them (Go marshals map keys sorted)."""
    a = attrs or {}
    return {k: a[k] for k in sorted(a)}


def matches(ev: dict, filters: dict[str, list[str]]) -> bool:
    actor = ev.get("Actor", {})
    attrs = actor.get("Attributes", {})
    t = ev.get("Type")
    for key, vals in filters.items():
        if not vals:
            continue
        if key == "type":
            ok = t in vals
        elif key == "event":
            action = ev.get("Action", "")
            ok = action in vals or action.split(":")[0] in vals
        elif key in ("container", "image", "volume", "network"):
            if key == "image" and t == "container":
                ok = attrs.get("image") in vals
            else:
                ok = t == key and any(v == actor.get("ID") or v == attrs.get("name")
                                      or (len(v) >= 3 and actor.get("ID", "").startswith(v)) for v in vals)
        elif key == "label":
            ok = False
            for v in vals:
                k, eq, val = v.partition("=")
                if k in attrs and (not eq or attrs[k] == val):
                    ok = True
        elif key == "scope":
            ok = ev.get("scope") in vals
        else:
            ok = True
        if not ok:
            return False
    return True
