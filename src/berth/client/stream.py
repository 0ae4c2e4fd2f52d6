"""Decoders for Docker's streamed bodies: 8-byte multiplexed frames and concatenated JSON messages."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Iterator

STDIN, STDOUT, STDERR = 0, 1, 2
_HEADER = struct.Struct(">BxxxI")


class FrameError(Exception):
    """A multiplexed stream was malformed."""


def frame(stream: int, payload: bytes) -> bytes:
    """Encode one frame (used by tests and fake servers)."""
    return _HEADER.pack(stream, len(payload)) + payload


class Demuxer:
    """Incremental decoder: feed bytes in any split, get (stream, payload) frames out."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        out = []
        while len(self.buf) >= 8:
            stream, size = _HEADER.unpack_from(self.buf)
            if stream > 3:
                raise FrameError(f"bad stream id {stream} in multiplexed stream")
            if len(self.buf) < 8 + size:
                break
            out.append((stream, bytes(self.buf[8 : 8 + size])))
            del self.buf[: 8 + size]
        return out

    def leftover(self) -> int:
        return len(self.buf)


def demux(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    d = Demuxer()
    for chunk in chunks:
        yield from d.feed(chunk)
    if d.leftover():
        raise FrameError(f"stream ended inside a frame ({d.leftover()} bytes left)")


def read_frames(read: Callable[[], bytes]) -> Iterator[tuple[int, bytes]]:
    """Frames from a read() callable that returns b"" at EOF."""
    return demux(iter(read, b""))


def json_messages(chunks: Iterable[bytes]) -> Iterator[object]:
    """Concatenated JSON values (newline/CRLF separated or not), split across chunks arbitrarily."""
    dec = json.JSONDecoder()
    buf = ""
    pending = b""
    for chunk in chunks:
        pending += chunk
        try:
            text = pending.decode("utf-8")
            pending = b""
        except UnicodeDecodeError as e:  # a multi-byte char split across chunks
            text = pending[: e.start].decode("utf-8")
            pending = pending[e.start :]
        buf += text
        while True:
            s = buf.lstrip()
            if not s:
                buf = ""
                break
            try:
                obj, end = dec.raw_decode(s)
            except json.JSONDecodeError:
                buf = s
                break
            yield obj
            buf = s[end:]
    if buf.strip() or pending:
        raise ValueError(f"stream ended inside a JSON message: {buf[:80]!r}")
