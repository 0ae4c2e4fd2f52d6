"""Docker-style events: every action is kept in memory (bounded) and appended to events.jsonl, so
`GET /events?since=` replays history across daemon restarts."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from typing import Any

_MEMORY = 5000


class Events:
    def __init__(self, path: str) -> None:
        self.path = path
        self.history: deque[dict] = deque(maxlen=_MEMORY)
        self.subscribers: set[asyncio.Queue] = set()
        self._load()
        self._f = open(path, "a", buffering=1)  # noqa: SIM115

    def _load(self) -> None:
        try:
            with open(self.path) as f:
                lines = f.readlines()[-_MEMORY:]
        except FileNotFoundError:
            return
        for line in lines:
            try:
                ev = json.loads(line)
                actor = ev.get("Actor")
                if isinstance(actor, dict) and isinstance(actor.get("Attributes"), dict):
                    actor["Attributes"] = _sorted(actor["Attributes"])  # written by an older berthd
                self.history.append(ev)
            except (ValueError, AttributeError):
                continue  # a torn last line after a crash
        if len(lines) >= _MEMORY:
            # Compact: keep the file about as long as the memory window.
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                for ev in self.history:
                    f.write(json.dumps(ev) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

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
        self.history.append(ev)
        try:
            self._f.write(json.dumps(ev) + "\n")
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
        self._f.close()


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
