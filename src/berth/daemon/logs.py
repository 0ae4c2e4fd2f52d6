"""Reading the json-file logs the monitor writes (rotated files oldest first), with follow."""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable

from berth.daemon.container import parse_rfc3339_ns
from berth.daemon.monitorctl import frame

_POLL = 0.05


def _files(path: str) -> list[str]:
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def _render(rec: dict, tty: bool, timestamps: bool) -> bytes:
    data = rec.get("log", "").encode()
    if timestamps:
        data = rec.get("time", "").encode() + b" " + data
    if tty:
        return data
    return frame(2 if rec.get("stream") == "stderr" else 1, data)


def _keep(rec: dict, stdout: bool, stderr: bool, since: int, until: int) -> bool:
    """since/until: unix nanoseconds (0: unbounded)."""
    s = rec.get("stream")
    if (s == "stdout" and not stdout) or (s == "stderr" and not stderr):
        return False
    if since or until:
        t = parse_rfc3339_ns(rec.get("time", ""))
        if since and t < since:
            return False
        if until and t > until:
            return False
    return True


async def read_logs(path: str, *, tty: bool, stdout: bool, stderr: bool, follow: bool, tail: int | None,
                    since: int, until: int, timestamps: bool,
                    running: Callable[[], bool]) -> AsyncIterator[bytes]:
    files = _files(path)
    recs: deque[dict] | list[dict] = deque(maxlen=tail) if tail is not None and tail >= 0 else []
    offset = 0
    ino = None
    for fp in files:
        try:
            with open(fp, "rb") as f:
                for line in f:
                    if not line.endswith(b"\n"):
                        break  # a partly written record: follow picks it up
                    if fp == path:
                        offset += len(line)
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if _keep(rec, stdout, stderr, since, until):
                        recs.append(rec)
                if fp == path:
                    ino = os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            continue
    if tail == 0:
        recs = []
    batch = b"".join(_render(r, tty, timestamps) for r in recs)
    if batch:
        yield batch
    if not follow:
        return
    buf = b""
    while True:
        alive = running()
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if ino is not None and (st.st_ino != ino or st.st_size < offset):
                    offset, buf = 0, b""  # rotated: the new file starts over
                ino = st.st_ino
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        if data:
            offset += len(data)
            buf += data
            out = []
            *lines, buf = buf.split(b"\n")
            for line in lines:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if _keep(rec, stdout, stderr, since, until):
                    out.append(_render(rec, tty, timestamps))
            if out:
                yield b"".join(out)
            continue
        if not alive:
            return
        await asyncio.sleep(_POLL)
