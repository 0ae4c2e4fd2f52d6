"""The content store.

Layout under root:
  blobs/<algo>/<hex>     committed blobs; only ever created by rename() after verification
  ingest/<key>/data      partial data of a resumable ingest (key = sha256 of the ref)
  ingest/<key>/ref       the ref itself, so that ingests can be listed
  ingest/<key>/lock      flock'd while a Writer is open: one writer per ref across processes
  ingest/tmp-*           one-shot writes (write()); stale ones are swept by clean_ingests()

A blob is visible only after its bytes were hashed, sized, fsync'd and renamed into blobs/, so a crash
at any point leaves either no blob or a complete, verified one.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from berth.errors import Conflict, DataCorruption, InvalidArgument, NotFound
from berth.oci import digest as dg

_BUF = 1 << 20


class Info(NamedTuple):
    """What the store knows about a blob (unpacks as `digest, size`)."""

    digest: str
    size: int


@dataclass(frozen=True)
class IngestStatus:
    ref: str
    offset: int
    updated_at: float


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check(got_digest: str, got_size: int, expected: str | None, size: int | None, what: str) -> None:
    if size is not None and got_size != size:
        raise DataCorruption(f"{what}: size mismatch: expected {size} bytes, got {got_size}")
    if expected is not None and got_digest != expected:
        raise DataCorruption(f"{what}: digest mismatch: expected {expected}, got {got_digest}")


class ContentStore:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._blobs = os.path.join(self.root, "blobs")
        self._ingest = os.path.join(self.root, "ingest")
        os.makedirs(os.path.join(self._blobs, dg.SHA256), exist_ok=True)
        os.makedirs(self._ingest, exist_ok=True)

    # -- paths -------------------------------------------------------------------------------------
    def _blob_path(self, digest: str) -> str:
        d = dg.parse(digest)
        return os.path.join(self._blobs, d.algorithm, d.hex)

    def path(self, digest: str) -> str:
        """Path of a committed blob (read-only use: never modify it in place)."""
        p = self._blob_path(digest)
        if not os.path.exists(p):
            raise NotFound(f"blob {digest} not found in content store")
        return p

    # -- queries -----------------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        return os.path.exists(self._blob_path(digest))

    def info(self, digest: str) -> Info:
        try:
            st = os.stat(self._blob_path(digest))
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in content store")
        return Info(digest, st.st_size)

    def list(self) -> Iterator[str]:
        """Digests of every committed blob (temp and partial files are never under blobs/)."""
        for algo in sorted(os.listdir(self._blobs)):
            adir = os.path.join(self._blobs, algo)
            if not os.path.isdir(adir):
                continue
            for name in os.listdir(adir):
                value = f"{algo}:{name}"
                if dg.is_valid(value):
                    yield value

    # -- reading -----------------------------------------------------------------------------------
    def open(self, digest: str) -> VerifyingReader:
        """A reader that raises DataCorruption at EOF if the bytes do not match the digest."""
        p = self._blob_path(digest)
        try:
            f = open(p, "rb")  # noqa: SIM115 - handed to the reader
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in content store")
        return VerifyingReader(f, digest)

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as r:
            return r.read()

    def verify(self, digest: str) -> Info:
        """Re-hash a blob; DataCorruption if it does not match."""
        with self.open(digest) as r:
            while r.read(_BUF):
                pass
            return Info(digest, r.size)

    # -- writing -----------------------------------------------------------------------------------
    def write(self, data: bytes | BinaryIO, expected: str | None = None, size: int | None = None) -> Info:
        """Store a whole blob in one go; verified against expected digest/size when given."""
        if expected is not None:
            algo = dg.parse(expected).algorithm
            try:
                have = self.info(expected)
            except NotFound:
                pass
            else:  # already stored (and verified when it was): nothing to read
                if size is None or have.size == size:
                    return have
        else:
            algo = dg.SHA256
        if size is not None and size < 0:
            raise InvalidArgument(f"invalid blob size {size}")
        h = dg.hasher(algo)
        fd_path = os.path.join(self._ingest, f"tmp-{os.getpid()}-{os.urandom(6).hex()}")
        n = 0
        try:
            with open(fd_path, "xb") as f:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    h.update(data)
                    f.write(data)
                    n = len(data)
                else:
                    while chunk := data.read(_BUF):
                        h.update(chunk)
                        f.write(chunk)
                        n += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            got = dg.from_hasher(h)
            _check(got, n, expected, size, "write" if expected is None else f"write of {expected}")
            self._publish(fd_path, got)
            return Info(got, n)
        finally:
            if os.path.exists(fd_path):
                os.unlink(fd_path)

    def _publish(self, src: str, digest: str) -> None:
        dest = self._blob_path(digest)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.chmod(src, 0o444)
        os.rename(src, dest)  # atomic; an existing identical blob is simply replaced
        _fsync_dir(os.path.dirname(dest))

    def delete(self, digest: str, missing_ok: bool = False) -> None:
        try:
            os.unlink(self._blob_path(digest))
        except FileNotFoundError:
            if not missing_ok:
                raise NotFound(f"blob {digest} not found in content store")

    # -- resumable ingest --------------------------------------------------------------------------
    def _ingest_dir(self, ref: str) -> str:
        if not ref or "\0" in ref:
            raise InvalidArgument(f"invalid ingest ref {ref!r}")
        return os.path.join(self._ingest, hashlib.sha256(ref.encode()).hexdigest())

    def ingest(self, ref: str, algorithm: str = dg.SHA256) -> Writer:
        """Open (or resume) the ingest named ref; Conflict if another writer holds it."""
        d = self._ingest_dir(ref)
        os.makedirs(d, exist_ok=True)
        lock_fd = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(lock_fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise Conflict(f"ingest {ref!r} is being written by another writer")
            raise
        try:
            # The dir may have been committed/aborted by a previous holder between makedirs and flock.
            if not os.path.isdir(d):
                os.close(lock_fd)
                return self.ingest(ref, algorithm)
            ref_path = os.path.join(d, "ref")
            if not os.path.exists(ref_path):
                with open(ref_path + ".tmp", "w") as f:
                    f.write(ref)
                os.rename(ref_path + ".tmp", ref_path)
            return Writer(self, ref, d, lock_fd, algorithm)
        except BaseException:
            os.close(lock_fd)
            raise

    def ingests(self) -> list[IngestStatus]:
        """Partial ingests, e.g. to resume after a restart or to clean up stale ones."""
        out = []
        for name in os.listdir(self._ingest):
            d = os.path.join(self._ingest, name)
            try:
                with open(os.path.join(d, "ref")) as f:
                    ref = f.read()
                try:
                    st = os.stat(os.path.join(d, "data"))
                    out.append(IngestStatus(ref, st.st_size, st.st_mtime))
                except FileNotFoundError:
                    out.append(IngestStatus(ref, 0, os.stat(d).st_mtime))
            except (FileNotFoundError, NotADirectoryError):
                continue
        return out

    def abort(self, ref: str) -> None:
        """Drop a partial ingest (no-op if absent)."""
        shutil.rmtree(self._ingest_dir(ref), ignore_errors=True)

    def clean_ingests(self, older_than: float = 24 * 3600) -> int:
        """Remove one-shot temp files and ingests untouched for older_than seconds; returns count."""
        now = time.time()
        removed = 0
        for name in os.listdir(self._ingest):
            p = os.path.join(self._ingest, name)
            try:
                st = os.stat(p)
            except FileNotFoundError:
                continue
            mtime = st.st_mtime
            if os.path.isdir(p):
                data = os.path.join(p, "data")
                if os.path.exists(data):
                    mtime = max(mtime, os.stat(data).st_mtime)
            if now - mtime < older_than:
                continue
            if os.path.isdir(p):
                lock = os.path.join(p, "lock")
                try:
                    fd = os.open(lock, os.O_RDWR)
                except FileNotFoundError:
                    shutil.rmtree(p, ignore_errors=True)
                    removed += 1
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer
                finally:
                    os.close(fd)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
            removed += 1
        return removed


class Writer:
    """An open resumable ingest. `offset` says how many bytes are already stored."""

    def __init__(self, store: ContentStore, ref: str, d: str, lock_fd: int, algorithm: str) -> None:
        self.ref = ref
        self._store = store
        self._dir = d
        self._lock_fd = lock_fd
        self._data = os.path.join(d, "data")
        self._h = dg.hasher(algorithm)
        self._algo = algorithm
        self._f = open(self._data, "ab+")  # noqa: SIM115 - lives as long as the writer
        # Rebuild the hash state from whatever a previous (possibly crashed) writer left.
        self._f.seek(0)
        n = 0
        while chunk := self._f.read(_BUF):
            self._h.update(chunk)
            n += len(chunk)
        self.offset = n
        self._closed = False

    def write(self, b: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed ingest writer")
        self._f.write(b)
        self._h.update(b)
        self.offset += len(b)
        return len(b)

    def truncate(self, offset: int = 0) -> None:
        """Restart from offset (e.g. the server ignored a Range request): re-hash the kept prefix."""
        if offset > self.offset or offset < 0:
            raise InvalidArgument(f"cannot truncate ingest {self.ref!r} to {offset} (offset {self.offset})")
        self._f.flush()
        self._f.truncate(offset)
        self._f.seek(0)
        self._h = dg.hasher(self._algo)
        left = offset
        while left and (chunk := self._f.read(min(_BUF, left))):
            self._h.update(chunk)
            left -= len(chunk)
        self._f.seek(0, io.SEEK_END)
        self.offset = offset

    @property
    def digest(self) -> str:
        return dg.from_hasher(self._h)

    def flush(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def commit(self, expected: str | None = None, size: int | None = None) -> Info:
        """Verify and publish the blob; the ingest is gone afterwards. DataCorruption on mismatch
        (the partial data is dropped too: it can never become the expected blob)."""
        self.flush()
        got = self.digest
        if expected is not None and dg.parse(expected).algorithm != self._algo:
            # opened with another algorithm than the caller now names: hash the data again with it
            h = dg.hasher(dg.parse(expected).algorithm)
            self._f.seek(0)
            while chunk := self._f.read(_BUF):
                h.update(chunk)
            got = dg.from_hasher(h)
        try:
            _check(got, self.offset, expected, size, f"ingest {self.ref!r}")
        except DataCorruption:
            self.abort()
            raise
        self._f.close()
        self._store._publish(self._data, got)
        self._finish()
        return Info(got, self.offset)

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        self._finish()

    def _finish(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
        self.close()

    def close(self) -> None:
        """Release the writer, keeping partial data for a later resume."""
        if self._closed:
            return
        self._closed = True
        if not self._f.closed:
            self._f.flush()
            self._f.close()
        os.close(self._lock_fd)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class VerifyingReader(io.RawIOBase):
    """Reads a blob and checks digest and size when EOF is reached (however the reader got there)."""

    def __init__(self, f: BinaryIO, digest: str) -> None:
        super().__init__()
        self._f = f
        self.digest = digest
        self._h = dg.hasher(dg.parse(digest).algorithm)
        self._hashed = 0  # bytes [0, _hashed) are in _h
        self._pos = 0
        self.size = os.fstat(f.fileno()).st_size
        self._verified = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._f.fileno()

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._f.seek(offset, whence)
        return self._pos

    def readinto(self, b) -> int:
        n = self._f.readinto(b)
        if n:
            start = self._pos
            self._pos += n
            if start <= self._hashed < self._pos:
                self._h.update(memoryview(b)[self._hashed - start : n])
                self._hashed = self._pos
        else:
            self._at_eof()
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while chunk := super().read(_BUF):
                chunks.append(chunk)
            self._at_eof()
            return b"".join(chunks)
        return super().read(size)

    def readall(self) -> bytes:
        return self.read(-1)

    def _at_eof(self) -> None:
        if self._verified:
            return
        # Hash whatever a seek skipped, so every path to EOF verifies the whole blob.
        here = self._f.tell()
        self._f.seek(self._hashed)
        n = self._hashed
        while chunk := self._f.read(_BUF):
            self._h.update(chunk)
            n += len(chunk)
        self._f.seek(here)
        self._hashed = n
        _check(dg.from_hasher(self._h), n, self.digest, None, f"blob {self.digest}")
        self._verified = True

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()
