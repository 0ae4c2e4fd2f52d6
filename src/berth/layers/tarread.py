"""A streaming tar reader for layers: ustar/GNU/PAX headers, strict about truncation and checksums.

tarfile's reader costs ~50 µs per header and quietly stops at a garbled or short header; layers need
neither.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import BinaryIO

from berth.errors import BerthError, InvalidArgument, SystemError_, Unsupported

BLOCK = 512
_CHUNK = 1 << 20
_ZERO = bytes(BLOCK)
_REGULAR = {b"0", b"\0", b"7"}
_KNOWN = _REGULAR | {b"1", b"2", b"3", b"4", b"5", b"6"}
_PAX_INT = ("uid", "gid", "size")
_NO_ID = 0xFFFFFFFF  # (uid_t)-1 means "unchanged" to chown; anything from there up is invalid
_MAX_EXTENDED = 16 << 20  # pax records / GNU long names: generous, but never a huge allocation


def _dec(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _nts(b: bytes) -> bytes:
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


def _num(b: bytes, field: str, where: str) -> int:
    if b[0] & 0x80:  # base-256 (GNU): big numbers
        n = int.from_bytes(b[1:], "big")
        return n - (1 << (8 * (len(b) - 1))) if b[0] & 0x40 else n
    s = b.split(b"\0", 1)[0]
    try:
        return int(s, 8)  # int() ignores the surrounding spaces
    except ValueError:
        if not s.strip():
            return 0
        raise InvalidArgument(f"layer tar: bad {field} field {s!r} in the header {where}")


class Member:
    """One tar entry (the part of tarfile.TarInfo that layers use, at a fraction of its cost)."""

    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname", "devmajor", "devminor",
                 "pax_headers")

    def __init__(self, name: str) -> None:
        self.name = name
        self.type = b"0"
        self.mode = 0o644
        self.uid = self.gid = self.size = self.mtime = self.devmajor = self.devminor = 0
        self.linkname = ""
        self.pax_headers: dict[str, str] = {}

    def isreg(self) -> bool:
        return self.type == b"0"

    def isdir(self) -> bool:
        return self.type == b"5"

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"

    def ischr(self) -> bool:
        return self.type == b"3"

    def isblk(self) -> bool:
        return self.type == b"4"

    def isfifo(self) -> bool:
        return self.type == b"6"

    def __repr__(self) -> str:
        return f"<Member {self.name!r} type={self.type!r}>"


def _classify(e: BaseException) -> BaseException:
    """Errors of the layer stream: berth errors as they are (e.g. DataCorruption from a verifying
    content-store reader), an OS error with an errno is the host's fault, anything else (bad gzip,
    zstd, xz, bzip2 data) is a broken layer."""
    if isinstance(e, BerthError):
        return e
    if isinstance(e, OSError) and e.errno is not None:
        return SystemError_(f"reading the layer stream: {e.strerror or e}")
    return InvalidArgument(f"invalid layer stream: {e or type(e).__name__}")


class Source:
    """The decompressed stream, read in large chunks and hashed (for the diff_id) as it is consumed.

    (A producer thread for decompression + hashing was measured: the GIL handoffs between it and the
    syscall-heavy extraction loop made applies slower, not faster, so everything runs inline.)"""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.h = hashlib.sha256()
        self.total = 0  # bytes read from raw (and hashed)
        self.pos = 0  # bytes consumed by the reader
        self._buf = b""
        self._off = 0
        self._eof = False

    def _next_chunk(self) -> bool:
        if self._eof:
            return False
        try:
            chunk = self._raw.read(_CHUNK)
        except BaseException as e:
            self._eof = True
            raise _classify(e) from e
        if not chunk:
            self._eof = True
            return False
        self.h.update(chunk)
        self.total += len(chunk)
        self._buf, self._off = chunk, 0
        return True

    def read(self, n: int) -> bytes:
        """Up to n bytes (fewer only at EOF)."""
        avail = len(self._buf) - self._off
        if avail >= n:
            out = self._buf[self._off : self._off + n]
            self._off += n
            self.pos += n
            return out
        parts = [self._buf[self._off :]] if avail else []
        got = avail
        self._buf, self._off = b"", 0
        while got < n and self._next_chunk():
            take = min(n - got, len(self._buf))
            parts.append(self._buf[:take])
            self._off = take
            got += take
        self.pos += got
        return b"".join(parts)

    def copy_to(self, fd: int, n: int) -> int:
        """Write the next n bytes to fd without extra copies; returns bytes copied (< n at EOF)."""
        left = n
        while left:
            avail = len(self._buf) - self._off
            if not avail:
                if not self._next_chunk():
                    break
                continue
            take = min(avail, left)
            mv = memoryview(self._buf)[self._off : self._off + take]
            done = 0
            while done < take:
                done += os.write(fd, mv[done:])
            self._off += take
            left -= take
        self.pos += n - left
        return n - left

    def skip(self, n: int) -> int:
        left = n
        while left:
            avail = len(self._buf) - self._off
            if not avail:
                if not self._next_chunk():
                    break
                continue
            take = min(avail, left)
            self._off += take
            left -= take
        self.pos += n - left
        return n - left

    def drain(self) -> None:
        """Consume the rest of the stream, so the hash covers all of it."""
        self._buf, self._off = b"", 0
        while self._next_chunk():
            self.pos += len(self._buf)
        self._buf = b""


class Reader:
    """Iterates Members; the caller copies a regular file's data with copy_data (or it is skipped)."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self._left = 0  # unread data bytes of the current member
        self._pad = 0
        self._global: dict[str, str] = {}
        self.last = ""

    def copy_data(self, fd: int, m: Member) -> None:
        n = self.src.copy_to(fd, self._left)
        if n != self._left:
            raise InvalidArgument(f"layer tar truncated inside the data of {m.name!r}")
        self._left = 0

    def _finish_member(self) -> None:
        n = self._left + self._pad
        if n and self.src.skip(n) != n:
            raise InvalidArgument(f"layer tar truncated inside the data of {self.last!r}")
        self._left = self._pad = 0

    def _read_block(self, what: str) -> bytes | None:
        b = self.src.read(BLOCK)
        if not b:
            return None
        if len(b) != BLOCK:
            raise InvalidArgument(f"layer tar truncated inside the header {what}")
        return b

    def _read_payload(self, size: int, what: str) -> bytes:
        if size > _MAX_EXTENDED:
            raise InvalidArgument(f"layer tar: extended header of {size} bytes {what} is too large")
        data = self.src.read(size)
        pad = -size % BLOCK
        if len(data) != size or self.src.skip(pad) != pad:
            raise InvalidArgument(f"layer tar truncated inside the extended header {what}")
        return data

    def __iter__(self) -> Iterator[Member]:
        while True:
            self._finish_member()
            m = self._next()
            if m is None:
                return
            self.last = m.name
            yield m

    def _next(self) -> Member | None:
        where = f"after entry {self.last!r}" if self.last else "at the start"
        pax: dict[str, str] = {}
        longname: str | None = None
        longlink: str | None = None
        while True:
            b = self._read_block(where)
            if b is None or b == _ZERO:
                return None  # end of archive (a zero block, or EOF at a header boundary)
            chk = _num(b[148:156], "checksum", where)
            if chk != sum(b) - sum(b[148:156]) + 256:
                raise InvalidArgument(f"layer tar is corrupt: bad header checksum {where}")
            t = b[156:157]
            size = _num(b[124:136], "size", where)
            if t in (b"x", b"g"):
                recs = self._pax(self._read_payload(size, where), where)
                (pax if t == b"x" else self._global).update(recs)
                continue
            if t in (b"L", b"K"):
                s = _dec(_nts(self._read_payload(size, where)))
                if t == b"L":
                    longname = s
                else:
                    longlink = s
                continue
            break
        name = _nts(b[0:100])
        if b[257:263] == b"ustar\0" and b[345] != 0:
            name = _nts(b[345:500]) + b"/" + name
        m = Member(_dec(name))
        m.pax_headers = {**self._global, **pax} if self._global else pax
        if t == b"S" or any(k.startswith("GNU.sparse.") for k in m.pax_headers):
            raise Unsupported(f"layer entry {m.name!r}: sparse files are not supported in layers")
        if t not in _KNOWN:
            raise InvalidArgument(f"layer entry {m.name!r}: unsupported tar entry type {t!r}")
        m.type = b"0" if t in _REGULAR else t
        m.mode = _num(b[100:108], "mode", where)
        m.uid = _num(b[108:116], "uid", where)
        m.gid = _num(b[116:124], "gid", where)
        m.mtime = _num(b[136:148], "mtime", where)
        m.linkname = _dec(_nts(b[157:257]))
        if t in (b"3", b"4"):
            m.devmajor = _num(b[329:337], "devmajor", where)
            m.devminor = _num(b[337:345], "devminor", where)
        if longname is not None:
            m.name = longname
        if longlink is not None:
            m.linkname = longlink
        p = m.pax_headers
        if p:
            if "path" in p:
                m.name = p["path"]
            if "linkpath" in p:
                m.linkname = p["linkpath"]
            for k in _PAX_INT:
                if k in p:
                    try:
                        setattr(m, k, int(p[k]))
                    except ValueError:
                        raise InvalidArgument(f"layer entry {m.name!r}: bad pax {k} {p[k]!r}")
        if m.name.endswith("/") and m.type in (b"0", b"5"):
            m.name = m.name.rstrip("/") or "."
            m.type = b"5"
        declared = m.size if "size" in p else size  # data bytes that follow the header
        if declared < 0 or not (0 <= m.uid < _NO_ID and 0 <= m.gid < _NO_ID):
            raise InvalidArgument(f"layer entry {m.name!r}: size, uid or gid out of range")
        m.size = declared if m.type == b"0" else 0
        self._left = declared
        self._pad = -declared % BLOCK
        return m

    @staticmethod
    def _pax(data: bytes, where: str) -> dict[str, str]:
        out: dict[str, str] = {}
        pos = 0
        while pos < len(data):
            sp = data.find(b" ", pos)
            try:
                length = int(data[pos:sp])
            except ValueError:
                raise InvalidArgument(f"layer tar: malformed pax record {where}")
            rec = data[sp + 1 : pos + length]
            if length <= 0 or not rec.endswith(b"\n") or b"=" not in rec:
                raise InvalidArgument(f"layer tar: malformed pax record {where}")
            k, _, v = rec[:-1].partition(b"=")
            out[_dec(k)] = _dec(v)
            pos += length
        return out
