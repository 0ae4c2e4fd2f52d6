"""Leases: rows that mark an operation in flight, so that gc keeps what it has made so far and the
next open can tell a dead operation's leftovers (pid gone, or reused) from a live one's."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from berth.metadata import Database


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: fields start after the last ')'.
    return data.rsplit(")", 1)[1].split()[19]


def alive(pid: int, start_time: str) -> bool:
    return _start_time(pid) == start_time


class Lease:
    def __init__(self, db: Database, op: str) -> None:
        self.db = db
        self.id = f"{op}-{secrets.token_hex(8)}"
        with db.tx() as cur:
            cur.execute(
                "INSERT INTO leases(id, pid, start_time, op, created_at) VALUES (?, ?, ?, ?, ?)",
                (self.id, os.getpid(), _start_time(os.getpid()) or "", op, time.time()),
            )

    def add(self, kind: str, key: str) -> None:
        with self.db.tx() as cur:
            cur.execute("INSERT OR IGNORE INTO lease_refs(lease_id, kind, key) VALUES (?, ?, ?)",
                        (self.id, kind, key))

    def refs(self) -> set[tuple[str, str]]:
        return {(r["kind"], r["key"]) for r in self.db.query(
            "SELECT kind, key FROM lease_refs WHERE lease_id = ?", (self.id,))}

    def release(self) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM leases WHERE id = ?", (self.id,))


@contextmanager
def lease(db: Database, op: str) -> Iterator[Lease]:
    le = Lease(db, op)
    try:
        yield le
    finally:
        le.release()


def split_live(db: Database) -> tuple[list[str], list[str]]:
    """(live lease ids, stale lease ids)."""
    live, stale = [], []
    for row in db.query("SELECT id, pid, start_time FROM leases"):
        (live if alive(row["pid"], row["start_time"]) else stale).append(row["id"])
    return live, stale


def protected(db: Database) -> tuple[set[tuple[str, str]], float | None]:
    """What live leases hold ((kind, key) pairs) and the oldest live lease's start time."""
    live, _ = split_live(db)
    if not live:
        return set(), None
    marks = ",".join("?" * len(live))
    refs = {(r["kind"], r["key"]) for r in db.query(
        f"SELECT kind, key FROM lease_refs WHERE lease_id IN ({marks})", live)}
    oldest = db.query_one(f"SELECT MIN(created_at) FROM leases WHERE id IN ({marks})", live)[0]
    return refs, oldest
