"""Layer compression: sniff, decompress (gzip via isal when present, zstd), deterministic compress.

gzip output has a fixed header (mtime 0, no file name, XFL 0, OS 255 "unknown"), so the same tar always
gives the same compressed digest.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
from typing import BinaryIO

from berth.errors import InvalidArgument, Unsupported

try:  # isal is ~an order of magnitude faster than zlib; both produce/accept standard gzip
    from isal import igzip as _gzip_mod
    from isal import isal_zlib as _zlib
    _DEFAULT_GZIP_LEVEL = 2  # isal levels are 0..3
except ImportError:  # pragma: no cover - isal is a declared dependency
    import gzip as _gzip_mod
    import zlib as _zlib
    _DEFAULT_GZIP_LEVEL = 6

import zstandard

_BUF = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_HEADER = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"


def sniff(head: bytes) -> str:
    """'gzip', 'zstd', 'bzip2', 'xz' or 'none' from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return "none"


class _Peek(io.RawIOBase):
    """Puts already-read bytes back in front of a stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if hasattr(self._rest, "readinto"):
            return self._rest.readinto(b)
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def _read_head(stream: BinaryIO, n: int = 6) -> bytes:
    head = b""
    while len(head) < n:
        chunk = stream.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


class _ZstdReader(io.RawIOBase):
    """zstd frames one after another. Unlike zstandard's stream_reader, a stream cut inside a frame
    raises instead of ending quietly. decompressobj has no output limit, so input is fed in pieces
    sized by the ratio seen so far: one call yields at most a few MiB even for a zstd bomb."""

    _OUT_TARGET = 4 << 20

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._d = zstandard.ZstdDecompressor()
        self._obj = self._d.decompressobj(write_size=_BUF)
        self._in_frame = False
        self._input = b""
        self._off = 0
        self._piece = 1024
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def _step(self) -> None:
        if not self._input:
            data = self._raw.read(_BUF)
            if not data:
                if self._in_frame:
                    raise zstandard.ZstdError("zstd stream truncated inside a frame")
                self._done = True
                return
            self._input = memoryview(data)
        piece, self._input = self._input[: self._piece], self._input[self._piece :]
        out = []
        while piece:
            self._in_frame = True
            out.append(self._obj.decompress(piece))
            if not self._obj.eof:
                break
            piece = self._obj.unused_data
            self._obj = self._d.decompressobj(write_size=_BUF)
            self._in_frame = False
        self._pending = b"".join(out) if len(out) != 1 else out[0]
        self._off = 0
        ratio = max(1, len(self._pending) // max(1, len(piece) or self._piece))
        self._piece = max(256, min(_BUF, self._OUT_TARGET // ratio))

    def readinto(self, b) -> int:
        while self._off >= len(self._pending) and not self._done:
            self._step()
        n = min(len(b), len(self._pending) - self._off)
        b[:n] = memoryview(self._pending)[self._off : self._off + n]
        self._off += n
        return n


def decompress(stream: BinaryIO) -> tuple[BinaryIO, str]:
    """A readable stream of the uncompressed bytes, and the compression that was found."""
    head = _read_head(stream)
    kind = sniff(head)
    raw = io.BufferedReader(_Peek(head, stream), _BUF)
    if kind == "none":
        return raw, kind
    if kind == "gzip":
        return _gzip_mod.GzipFile(fileobj=raw, mode="rb"), kind
    if kind == "zstd":
        return io.BufferedReader(_ZstdReader(raw), _BUF), kind
    if kind == "bzip2":
        return bz2.BZ2File(raw, "rb"), kind
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb"), kind
    raise Unsupported(f"compression {kind}")  # pragma: no cover


class _GzipWriter(io.RawIOBase):
    """Deterministic gzip member written into out (which is not closed)."""

    def __init__(self, out: BinaryIO, level: int | None) -> None:
        super().__init__()
        self._out = out
        self._c = _zlib.compressobj(_DEFAULT_GZIP_LEVEL if level is None else level, _zlib.DEFLATED, -15)
        self._crc = 0
        self._size = 0
        out.write(_GZIP_HEADER)

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        b = bytes(b)
        self._crc = _zlib.crc32(b, self._crc)
        self._size += len(b)
        data = self._c.compress(b)
        if data:
            self._out.write(data)
        return len(b)

    def close(self) -> None:
        if not self.closed:
            self._out.write(self._c.flush())
            self._out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        super().close()


class _ZstdWriter(io.RawIOBase):
    def __init__(self, out: BinaryIO, level: int | None) -> None:
        super().__init__()
        self._out = out
        # frame checksums: corruption is caught while decompressing, not only by the diff_id
        self._c = zstandard.ZstdCompressor(level=3 if level is None else level, write_checksum=True).compressobj()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        data = self._c.compress(bytes(b))
        if data:
            self._out.write(data)
        return len(b)

    def close(self) -> None:
        if not self.closed:
            self._out.write(self._c.flush())
        super().close()


class _Identity(io.RawIOBase):
    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return self._out.write(b)


def compressor(out: BinaryIO, algo: str, level: int | None = None) -> BinaryIO:
    """A writable file that compresses into out; close() finishes the stream (out stays open)."""
    if algo == "gzip":
        return _GzipWriter(out, level)
    if algo == "zstd":
        return _ZstdWriter(out, level)
    if algo in ("none", "", None):
        return _Identity(out)
    raise InvalidArgument(f"unknown compression {algo!r} (gzip, zstd, none)")


def compress_to(src: BinaryIO, out: BinaryIO, algo: str, level: int | None = None) -> None:
    """Copy src into out, compressed."""
    w = compressor(out, algo, level)
    while chunk := src.read(_BUF):
        w.write(chunk)
    w.close()


class _Buffer:
    """A minimal write target that compress() drains as it pulls."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, b: bytes) -> int:
        self.chunks.append(bytes(b))
        return len(b)


class _CompressReader(io.RawIOBase):
    def __init__(self, src: BinaryIO, algo: str, level: int | None) -> None:
        super().__init__()
        self._src = src
        self._buf = _Buffer()
        self._w = compressor(self._buf, algo, level)  # type: ignore[arg-type]
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._pending:
            if self._buf.chunks:
                self._pending = b"".join(self._buf.chunks)
                self._buf.chunks.clear()
                break
            if self._done:
                return 0
            chunk = self._src.read(_BUF)
            if chunk:
                self._w.write(chunk)
            else:
                self._w.close()
                self._done = True
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def compress(stream: BinaryIO, algo: str, level: int | None = None) -> BinaryIO:
    """A readable stream of stream's bytes compressed with algo ('gzip', 'zstd' or 'none')."""
    compressor(io.BytesIO(), algo)  # validates algo early
    return io.BufferedReader(_CompressReader(stream, algo, level), _BUF)
