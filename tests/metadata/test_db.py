import multiprocessing
import os
import sqlite3

import pytest

from berth.errors import Conflict, InvalidArgument
from berth.metadata import Database

MIGRATIONS = [
    """
    CREATE TABLE images (id TEXT PRIMARY KEY, size INTEGER NOT NULL);
    CREATE TABLE tags (name TEXT PRIMARY KEY, image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE);
    """,
    "ALTER TABLE images ADD COLUMN created TEXT",
    """
    CREATE TABLE log (msg TEXT);
    CREATE TRIGGER images_log AFTER INSERT ON images BEGIN INSERT INTO log VALUES ('added ' || NEW.id); END;
    """,
]


@pytest.fixture
def db(tmp_path):
    d = Database(str(tmp_path / "meta" / "berth.db"))
    yield d
    d.close()


def test_pragmas(db):
    c = db.conn()
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert c.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000


def test_migrations_step_by_step_and_per_component(db):
    assert db.migrate("images", MIGRATIONS[:1]) == 1
    assert db.version("images") == 1
    assert db.migrate("images", MIGRATIONS) == 3  # runs steps 2 and 3 only
    db.execute("INSERT INTO images(id, size, created) VALUES ('a', 1, 'now')")
    assert [r["msg"] for r in db.query("SELECT msg FROM log")] == ["added a"]
    assert db.migrate("images", MIGRATIONS) == 3  # idempotent
    assert db.migrate("volumes", ["CREATE TABLE volumes (name TEXT PRIMARY KEY)"]) == 1
    assert {r[0]: r[1] for r in db.query("SELECT * FROM schema_versions")} == {"images": 3, "volumes": 1}


def test_newer_schema_is_refused(db):
    db.migrate("images", MIGRATIONS)
    with pytest.raises(Conflict, match="version 3, newer"):
        db.migrate("images", MIGRATIONS[:2])


def test_failed_migration_rolls_back_whole_batch(db):
    bad = MIGRATIONS[:1] + ["CREATE TABLE x (a INT); THIS IS NOT SQL"]
    with pytest.raises(InvalidArgument, match="migration 2 of 'images'"):
        db.migrate("images", bad)
    assert db.version("images") == 0
    assert db.query("SELECT name FROM sqlite_master WHERE name IN ('images', 'x')") == []


def test_callable_migration(db):
    def step(cur: sqlite3.Cursor) -> None:
        cur.execute("CREATE TABLE t (v INT)")
        cur.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(3)])

    db.migrate("t", [step])
    assert db.query_one("SELECT count(*) FROM t")[0] == 3


def test_tx_commit_rollback_and_savepoints(db):
    db.migrate("images", MIGRATIONS)
    with db.tx() as cur:
        cur.execute("INSERT INTO images(id, size) VALUES ('a', 1)")
    with pytest.raises(RuntimeError), db.tx() as cur:
        cur.execute("INSERT INTO images(id, size) VALUES ('b', 2)")
        raise RuntimeError("boom")
    with db.tx() as cur:
        cur.execute("INSERT INTO images(id, size) VALUES ('c', 3)")
        with pytest.raises(sqlite3.IntegrityError), db.tx() as inner:
            inner.execute("INSERT INTO images(id, size) VALUES ('d', 4)")
            inner.execute("INSERT INTO images(id, size) VALUES ('a', 5)")  # duplicate key
    assert [r["id"] for r in db.query("SELECT id FROM images ORDER BY id")] == ["a", "c"]


def test_foreign_keys_enforced(db):
    db.migrate("images", MIGRATIONS)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO tags VALUES ('x:latest', 'missing')")
    db.execute("INSERT INTO images(id, size) VALUES ('a', 1)")
    db.execute("INSERT INTO tags VALUES ('x:latest', 'a')")
    db.execute("DELETE FROM images WHERE id = 'a'")
    assert db.query("SELECT * FROM tags") == []


def _worker(path: str, n: int, wid: int) -> None:
    db = Database(path, busy_timeout=60)
    db.migrate("counter", ["CREATE TABLE counter (k TEXT PRIMARY KEY, v INT); INSERT INTO counter VALUES ('n', 0)",
                           "CREATE TABLE seen (wid INT, i INT)"])
    for i in range(n):
        with db.tx() as cur:  # read-modify-write: lost updates would show in the total
            v = cur.execute("SELECT v FROM counter WHERE k = 'n'").fetchone()[0]
            cur.execute("UPDATE counter SET v = ? WHERE k = 'n'", (v + 1,))
            cur.execute("INSERT INTO seen VALUES (?, ?)", (wid, i))
    db.close()


def test_several_processes_write_concurrently(tmp_path):
    path = str(tmp_path / "shared.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(path, 150, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    db = Database(path)
    assert db.query_one("SELECT v FROM counter")[0] == 600
    assert db.query_one("SELECT count(DISTINCT wid || '-' || i) FROM seen")[0] == 600
    assert db.version("counter") == 2  # migrated exactly once despite four racing processes
    db.close()


def test_connection_not_shared_across_fork(db):
    db.migrate("t", ["CREATE TABLE t (v INT)"])
    db.execute("INSERT INTO t VALUES (1)")
    pid = os.fork()
    if pid == 0:
        try:
            db.execute("INSERT INTO t VALUES (2)")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [r[0] for r in db.query("SELECT v FROM t ORDER BY v")] == [1, 2]


def test_bad_path_fails_clearly(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        Database(str(tmp_path / "file" / "db"))


def test_garbage_file_is_reported(tmp_path):
    from berth.errors import Unavailable

    p = tmp_path / "garbage.db"
    p.write_bytes(os.urandom(8192))
    with pytest.raises(Unavailable, match="garbage.db"):
        Database(str(p))


def test_writer_killed_inside_a_transaction_leaves_nothing_locked(tmp_path):
    import signal
    import subprocess
    import sys
    import textwrap

    path = str(tmp_path / "k.db")
    db = Database(path, busy_timeout=10)
    db.migrate("t", ["CREATE TABLE t (v INT)"])
    db.execute("INSERT INTO t VALUES (1)")
    child = textwrap.dedent(
        """
        import sys, time
        from berth.metadata import Database
        db = Database(sys.argv[1])
        with db.tx() as cur:
            cur.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100, 5000)])
            print("inside", flush=True)
            time.sleep(60)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", child, path], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"inside\n"
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
        p.stdout.close()
    db.execute("INSERT INTO t VALUES (2)")  # the dead writer's lock went with it
    assert [r[0] for r in db.query("SELECT v FROM t ORDER BY v")] == [1, 2]
    assert db.query_one("PRAGMA integrity_check")[0] == "ok"
    db.close()
