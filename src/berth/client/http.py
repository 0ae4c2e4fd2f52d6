"""A minimal HTTP/1.1 client over AF_UNIX: keep-alive, chunked bodies both ways, hijack (101).

Hand-written instead of http.client/h11 because the CLI needs exactly the pieces Docker's wire protocol
uses (raw socket after an upgrade, half-close, streaming bodies) and nothing that costs start-up time.
"""

from __future__ import annotations

# _socket, not socket: the wrapper module (enums, selectors) costs the CLI over a millisecond of start-up
# and nothing here needs more than the C socket object.
import _socket
from collections.abc import Iterable, Iterator

_MAX_LINE = 65536
_MAX_HEADERS = 200


class ClientError(Exception):
    """Base for every client failure; str() is what the CLI prints."""


class ProtocolError(ClientError):
    """The peer sent something that is not HTTP/1.1 as we speak it (or hung up mid-message)."""


class SocketReader:
    """Buffered reads on a socket; the buffer survives a hijack so no byte is lost."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self, n: int = 65536) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(n)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self) -> bytes:
        """One line including its CRLF (or what remains at EOF)."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > _MAX_LINE:
                raise ProtocolError("line too long")
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill(max(65536, n - len(self.buf))):
                raise ProtocolError(f"connection closed with {n - len(self.buf)} bytes still expected")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_some(self, n: int = 65536) -> bytes:
        """Up to n bytes, b"" at EOF."""
        if not self.buf and not self._fill(n):
            return b""
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


class Response:
    """A response whose body is read lazily (streams) or at once (.read(), .json())."""

    def __init__(self, conn: Connection, status: int, reason: str, headers: dict[str, str], method: str) -> None:
        self.conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        self._remaining: int | None = None
        self._until_close = False
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._remaining = 0
        elif self._chunked:
            self._chunk_left = 0
        elif "content-length" in headers:
            try:
                self._remaining = int(headers["content-length"])
            except ValueError:
                raise ProtocolError(f"bad Content-Length {headers['content-length']!r}")
        else:
            self._until_close = True
        self.done = False
        self._keep = headers.get("connection", "").lower() != "close" and not self._until_close
        if self._remaining == 0 and status != 101:  # nothing to read: the connection is free again
            self._finish()

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.conn._response_done(self._keep)

    def iter_raw(self) -> Iterator[bytes]:
        """Body bytes as they arrive (chunk boundaries are not preserved)."""
        r = self.conn.reader
        if self.done:
            return
        if self._chunked:
            while True:
                line = r.readline()
                if not line:
                    raise ProtocolError("connection closed inside a chunked body")
                size_s = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_s, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {size_s!r}")
                if size == 0:
                    while r.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    break
                left = size
                while left:
                    data = r.read_some(min(left, 65536))
                    if not data:
                        raise ProtocolError("connection closed inside a chunk")
                    left -= len(data)
                    yield data
                r.read_exact(2)
        elif self._remaining is not None:
            left = self._remaining
            while left:
                data = r.read_some(min(left, 65536))
                if not data:
                    raise ProtocolError(f"connection closed with {left} body bytes still expected")
                left -= len(data)
                yield data
        else:
            while True:
                data = r.read_some()
                if not data:
                    break
                yield data
        self._finish()

    def read(self) -> bytes:
        return b"".join(self.iter_raw())

    def json(self):
        import json

        data = self.read()
        return json.loads(data) if data.strip() else None

    def close(self) -> None:
        """Abandon the response: the connection is not reused."""
        if not self.done:
            self.done = True
            self.conn.close()


class Connection:
    """One HTTP/1.1 connection to a unix socket; requests are sequential on it."""

    def __init__(self, path: str, timeout: float | None = None, on_idle=None) -> None:
        self.path = path
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.reader = SocketReader(self.sock)
        self.closed = False
        self.no_reuse = False
        self._on_idle = on_idle

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def _response_done(self, keep: bool) -> None:
        if not keep or self.no_reuse:
            self.close()
        elif self._on_idle is not None:
            self._on_idle(self)

    def send_request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
    ) -> None:
        hdrs = {"Host": "api.moby.localhost", "User-Agent": "berth-client/0.1 (linux)"}
        hdrs.update(headers or {})
        chunked = body is not None and not isinstance(body, (bytes, bytearray))
        if chunked:
            hdrs["Transfer-Encoding"] = "chunked"
        elif body is not None:
            hdrs["Content-Length"] = str(len(body))
        elif method in ("POST", "PUT"):
            hdrs.setdefault("Content-Length", "0")
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        if chunked:
            self.sock.sendall(head.encode("latin-1"))
            for piece in body:  # type: ignore[union-attr]
                if piece:
                    self.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.sock.sendall(b"0\r\n\r\n")
        else:
            self.sock.sendall(head.encode("latin-1") + (body or b""))

    def read_response_head(self, method: str) -> Response:
        while True:
            line = self.reader.readline()
            if not line:
                raise ProtocolError("connection closed before a response arrived")
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                raise ProtocolError(f"bad status line {line[:80]!r}")
            try:
                status = int(parts[1])
            except ValueError:
                raise ProtocolError(f"bad status line {line[:80]!r}")
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEADERS):
                h = self.reader.readline()
                if h in (b"\r\n", b"\n"):
                    break
                if not h:
                    raise ProtocolError("connection closed inside response headers")
                k, _, v = h.decode("latin-1").partition(":")
                k = k.strip().lower()
                v = v.strip()
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
            else:
                raise ProtocolError("too many response headers")
            if status == 100:  # Continue: the real response follows
                continue
            return Response(self, status, parts[2] if len(parts) > 2 else "", headers, method)

    def request(self, method, target, headers=None, body=None) -> Response:
        try:
            self.send_request(method, target, headers, body)
        except (BrokenPipeError, ConnectionResetError):
            # The daemon may answer (an error) and close before reading the whole upload: report its answer.
            self.no_reuse = True
            try:
                r = self.read_response_head(method)
            except (ProtocolError, OSError):
                r = None
            if r is None:
                raise
            return r
        return self.read_response_head(method)


class Hijacked:
    """A raw, bidirectional byte stream left after `101 Switching Protocols`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sock = conn.sock
        self.reader = conn.reader

    def recv(self, n: int = 65536) -> bytes:
        return self.reader.read_some(n)

    def read_exact(self, n: int) -> bytes:
        return self.reader.read_exact(n)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.conn.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def __enter__(self) -> Hijacked:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
