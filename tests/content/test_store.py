import hashlib
import io
import os

import pytest

from berth.content import ContentStore
from berth.errors import Conflict, DataCorruption, InvalidArgument, NotFound
from berth.oci import digest as dg


@pytest.fixture
def cs(tmp_path):
    return ContentStore(str(tmp_path / "content"))


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def test_write_bytes_and_stream(cs):
    info = cs.write(b"hello")
    assert info == (sha(b"hello"), 5)
    assert cs.path(info.digest).endswith("blobs/sha256/" + info.digest[7:])
    big = os.urandom(3 << 20)
    d, size = cs.write(io.BytesIO(big), expected=sha(big), size=len(big))
    assert (d, size) == (sha(big), len(big))
    assert cs.read_bytes(d) == big
    assert sorted(cs.list()) == sorted([sha(b"hello"), sha(big)])
    assert cs.info(d).size == len(big) and cs.exists(d)


def test_write_rejects_wrong_digest_or_size_and_leaves_nothing(cs):
    with pytest.raises(DataCorruption, match="digest mismatch"):
        cs.write(b"hello", expected=sha(b"other"))
    with pytest.raises(DataCorruption, match="size mismatch"):
        cs.write(b"hello", expected=sha(b"hello"), size=4)
    assert list(cs.list()) == []
    assert os.listdir(os.path.join(cs.root, "ingest")) == []
    with pytest.raises(InvalidArgument):
        cs.write(b"x", expected="sha256:nothex")


def test_missing_blob(cs):
    d = sha(b"nope")
    with pytest.raises(NotFound):
        cs.open(d)
    with pytest.raises(NotFound):
        cs.info(d)
    with pytest.raises(NotFound):
        cs.delete(d)
    cs.delete(d, missing_ok=True)
    assert not cs.exists(d)


def test_delete(cs):
    d = cs.write(b"bye").digest
    cs.delete(d)
    assert not cs.exists(d) and list(cs.list()) == []


def _corrupt(cs, d: str, data: bytes) -> None:
    p = cs.path(d)
    os.chmod(p, 0o644)
    with open(p, "wb") as f:
        f.write(data)


def test_corrupted_blob_detected_on_read(cs):
    data = os.urandom(100_000)
    d = cs.write(data).digest
    _corrupt(cs, d, data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(DataCorruption, match=d):
        cs.read_bytes(d)
    with pytest.raises(DataCorruption):
        cs.verify(d)
    # a streaming reader fails at EOF, not before
    r = cs.open(d)
    assert len(r.read(1000)) == 1000
    with pytest.raises(DataCorruption):
        while r.read(4096):
            pass
    r.close()
    # truncation is corruption too
    _corrupt(cs, d, data[:10])
    with pytest.raises(DataCorruption):
        cs.read_bytes(d)


def test_reader_verifies_even_after_seeking(cs):
    data = os.urandom(50_000)
    d = cs.write(data).digest
    with cs.open(d) as r:
        r.seek(40_000)
        assert r.read() == data[40_000:]  # reaching EOF hashed the skipped part too
    _corrupt(cs, d, b"\0" + data[1:])
    with cs.open(d) as r:
        r.seek(49_000)
        with pytest.raises(DataCorruption):
            r.read()


def test_resumable_ingest(cs):
    data = os.urandom(2 << 20)
    with cs.ingest("layer-1") as w:
        assert w.offset == 0
        w.write(data[:700_000])
    # a new writer sees the offset and continues; hash state is rebuilt from the partial data
    assert [(s.ref, s.offset) for s in cs.ingests()] == [("layer-1", 700_000)]
    w = cs.ingest("layer-1")
    assert w.offset == 700_000
    w.write(data[700_000:])
    info = w.commit(sha(data), len(data))
    assert info == (sha(data), len(data))
    assert cs.read_bytes(info.digest) == data
    assert cs.ingests() == []
    assert cs.ingest("layer-1").offset == 0  # the ref starts afresh


def test_ingest_is_exclusive(cs):
    w = cs.ingest("ref")
    with pytest.raises(Conflict):
        cs.ingest("ref")
    w.close()
    cs.ingest("ref").abort()
    assert cs.ingests() == []


def test_ingest_commit_mismatch_drops_partial(cs):
    w = cs.ingest("bad")
    w.write(b"abc")
    with pytest.raises(DataCorruption):
        w.commit(sha(b"abd"), 3)
    assert list(cs.list()) == [] and cs.ingests() == []


def test_ingest_truncate_restarts(cs):
    w = cs.ingest("t")
    w.write(b"hello world")
    w.truncate(5)
    w.write(b"!")
    assert w.commit().digest == sha(b"hello!")


def test_commit_of_existing_blob_is_idempotent(cs):
    cs.write(b"same")
    w = cs.ingest("dup")
    w.write(b"same")
    assert w.commit(sha(b"same")).digest == sha(b"same")
    assert list(cs.list()) == [sha(b"same")]


def test_clean_ingests_keeps_live_writers(cs):
    live = cs.ingest("live")
    live.write(b"x")
    live.flush()
    dead = cs.ingest("dead")
    dead.write(b"y")
    dead.close()
    assert cs.clean_ingests(older_than=-1) == 1
    assert [s.ref for s in cs.ingests()] == ["live"]
    live.close()


def test_sha512_blobs(cs):
    h = "sha512:" + hashlib.sha512(b"z").hexdigest()
    assert cs.write(b"z", expected=h).digest == h
    assert cs.read_bytes(h) == b"z"
    assert h in set(cs.list())
    assert dg.parse(h).algorithm == "sha512"


def test_write_of_known_blob_skips_the_stream(cs):
    d = cs.write(b"known").digest

    class Boom:
        def read(self, n=-1):
            raise AssertionError("stream read although the blob exists")

    assert cs.write(Boom(), expected=d) == (d, 5)
    assert cs.write(Boom(), expected=d, size=5) == (d, 5)


def test_ingest_commit_with_another_algorithm(cs):
    w = cs.ingest("five-twelve")
    w.write(b"abc")
    want = "sha512:" + hashlib.sha512(b"abc").hexdigest()
    assert w.commit(want, 3).digest == want
    assert cs.read_bytes(want) == b"abc"
