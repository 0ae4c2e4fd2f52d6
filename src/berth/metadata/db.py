"""One sqlite database shared by berth's components (and by several processes at once).

Each thread (and each process after a fork) gets its own connection: sqlite connections must not be
shared across forks, and per-thread connections avoid a global lock in the daemon's worker threads.
Writers serialise through `BEGIN IMMEDIATE` + busy_timeout, so a writer never fails with "database is
locked" halfway through a transaction: it waits up to the timeout when it starts.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from berth.errors import Conflict, InvalidArgument, Unavailable

Migration = str | Callable[[sqlite3.Cursor], None]

_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)"""


def split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (triggers with inner ';' stay whole)."""
    out: list[str] = []
    buf = ""
    for part in script.split(";"):
        buf = f"{buf};{part}" if buf else part
        if sqlite3.complete_statement(buf + ";"):
            if buf.strip():
                out.append(buf.strip() + ";")
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


class Database:
    def __init__(self, path: str, busy_timeout: float = 30.0) -> None:
        self.path = os.path.abspath(path)
        self.busy_timeout = busy_timeout
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self.conn()  # open now: a bad path fails here, not at first use
        with self.tx() as cur:
            cur.execute(_SCHEMA_TABLE)

    # -- connections -------------------------------------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is not None and self._local.pid == os.getpid():
            return c
        try:
            c = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            c.row_factory = sqlite3.Row
            c.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise Unavailable(f"sqlite database {self.path}: cannot enable WAL (journal_mode={mode})")
            # WAL + NORMAL: a commit is appended to the WAL (in the page cache, which a killed process
            # does not lose) without an fsync; the WAL is synced at checkpoints. Committed state survives
            # kill -9 at any moment and the database stays consistent even across a power cut (which
            # may drop the last commits before a checkpoint). FULL cost one fsync per transaction, several
            # per `run --rm`.
            c.execute("PRAGMA synchronous = NORMAL")
            c.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as e:
            raise Unavailable(f"sqlite database {self.path}: {e}")
        self._local.conn = c
        self._local.pid = os.getpid()
        self._local.depth = 0
        with self._all_lock:
            self._all.append(c)
        return c

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for c in conns:
            try:
                c.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator[sqlite3.Cursor]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error. Nested use becomes a SAVEPOINT."""
        c = self.conn()
        depth = self._local.depth
        cur = c.cursor()
        if depth == 0:
            cur.execute("BEGIN IMMEDIATE")
        else:
            cur.execute(f"SAVEPOINT sp{depth}")
        self._local.depth = depth + 1
        try:
            yield cur
        except BaseException:
            self._local.depth = depth
            if depth == 0:
                c.execute("ROLLBACK")
            else:
                c.execute(f"ROLLBACK TO sp{depth}")
                c.execute(f"RELEASE sp{depth}")
            raise
        else:
            self._local.depth = depth
            if depth == 0:
                c.execute("COMMIT")
            else:
                c.execute(f"RELEASE sp{depth}")
        finally:
            cur.close()

    # -- conveniences ------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | dict = ()) -> list[sqlite3.Row]:
        return self.conn().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Row | None:
        return self.conn().execute(sql, params).fetchone()

    def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> int:
        """One statement in its own transaction; returns the number of changed rows."""
        with self.tx() as cur:
            cur.execute(sql, params)
            return cur.rowcount

    # -- schema ------------------------------------------------------------------------------------
    def version(self, component: str) -> int:
        row = self.query_one("SELECT version FROM schema_versions WHERE component = ?", (component,))
        return row[0] if row else 0

    def migrate(self, component: str, migrations: list[Migration]) -> int:
        """Bring component's schema to len(migrations); migrations[i] moves version i -> i+1.

        A migration is SQL text (several statements allowed) or a callable taking the cursor. All
        pending steps run in one transaction, so concurrent processes migrate exactly once and a
        failed step leaves the previous version intact. Returns the new version.
        """
        if not component:
            raise InvalidArgument("migrate: empty component name")
        with self.tx() as cur:
            row = cur.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            current = row[0] if row else 0
            if current > len(migrations):
                raise Conflict(
                    f"schema of {component!r} in {self.path} is version {current}, newer than this "
                    f"berth knows ({len(migrations)}); refusing to use it"
                )
            for i in range(current, len(migrations)):
                step = migrations[i]
                try:
                    if callable(step):
                        step(cur)
                    else:
                        for stmt in split_statements(step):
                            cur.execute(stmt)
                except sqlite3.Error as e:
                    raise InvalidArgument(f"migration {i + 1} of {component!r} failed: {e}")
            if len(migrations) != current:
                cur.execute(
                    "INSERT INTO schema_versions(component, version) VALUES (?, ?) "
                    "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                    (component, len(migrations)),
                )
            return len(migrations)
