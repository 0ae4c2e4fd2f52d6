"""A writer SIGKILLed mid-ingest leaves no visible blob, and the ingest can be resumed."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap

from berth.content import ContentStore

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from berth.content import ContentStore
    cs = ContentStore(sys.argv[1])
    data = bytes(range(256)) * 4096  # 1 MiB
    mode = sys.argv[2]
    if mode == "ingest":
        w = cs.ingest("big")
        for i in range(10_000):
            w.write(data)
            w.flush()
            if i == 2:
                print("ready", flush=True)
            if i >= 2:
                time.sleep(0.01)
    else:
        def gen():
            for i in range(10_000):
                if i == 3:
                    print("ready", flush=True)
                yield data
        class R:
            it = gen()
            def read(self, n=-1):
                return next(self.it, b"")
        cs.write(R())
    """
)


def _run_and_kill(root: str, mode: str) -> None:
    p = subprocess.Popen([sys.executable, "-c", CHILD, root, mode], stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    assert p.returncode == -signal.SIGKILL


def test_kill_during_resumable_ingest(tmp_path):
    root = str(tmp_path / "cs")
    _run_and_kill(root, "ingest")
    cs = ContentStore(root)
    assert list(cs.list()) == []
    [status] = cs.ingests()
    assert status.ref == "big" and status.offset >= 3 << 20
    chunk = bytes(range(256)) * 4096
    w = cs.ingest("big")  # the dead writer's lock went with it
    assert w.offset == status.offset and w.offset % len(chunk) == 0
    full = chunk * (w.offset // len(chunk) + 3)
    w.write(full[w.offset :])
    info = w.commit("sha256:" + hashlib.sha256(full).hexdigest(), len(full))
    assert list(cs.list()) == [info.digest]
    assert cs.read_bytes(info.digest) == full
    assert cs.ingests() == []


def test_kill_during_one_shot_write(tmp_path):
    root = str(tmp_path / "cs")
    _run_and_kill(root, "write")
    cs = ContentStore(root)
    assert list(cs.list()) == []
    assert any(n.startswith("tmp-") for n in os.listdir(os.path.join(root, "ingest")))
    assert cs.clean_ingests(older_than=-1) == 1
    assert os.listdir(os.path.join(root, "ingest")) == []
    d = cs.write(b"redo").digest
    assert list(cs.list()) == [d]


def _same_blob_writer(root: str, n: int) -> None:
    cs = ContentStore(root)
    data = bytes(range(256)) * 8192
    for _ in range(n):
        cs.write(data)


def test_processes_writing_the_same_blob_concurrently(tmp_path):
    import multiprocessing

    root = str(tmp_path / "cs")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_same_blob_writer, args=(root, 20)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cs = ContentStore(root)
    [d] = cs.list()
    assert cs.verify(d).size == 256 * 8192
    assert os.listdir(os.path.join(root, "ingest")) == []
