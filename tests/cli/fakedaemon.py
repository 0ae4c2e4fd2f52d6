"""A tiny threaded HTTP/1.1 server on a unix socket, for testing the client's wire behaviour.

Each test gives a handler(req, conn) that writes the response bytes itself, so tests control framing
exactly (chunk splits, missing headers, 101 upgrades, half-close).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Request:
    conn_no: int
    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""
    chunked: bool = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        from urllib.parse import parse_qs

        return parse_qs(self.target.split("?", 1)[1]) if "?" in self.target else {}


@dataclass
class Conn:
    sock: socket.socket
    no: int
    buf: bytearray = field(default_factory=bytearray)
    hijacked: bool = False

    def recv_until(self, marker: bytes) -> bytes | None:
        while marker not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        i = self.buf.index(marker) + len(marker)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def recv_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_all(self) -> bytes:
        """After a hijack: everything until the client half-closes."""
        out = bytes(self.buf)
        self.buf.clear()
        while True:
            data = self.sock.recv(65536)
            if not data:
                return out
            out += data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def respond(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                reason: str = "OK") -> None:
        hdrs = {"Content-Length": str(len(body))}
        hdrs.update(headers or {})
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.send(head.encode() + body)

    def json(self, status: int, obj, headers: dict[str, str] | None = None) -> None:
        import json

        h = {"Content-Type": "application/json", "Api-Version": "1.41"}
        h.update(headers or {})
        self.respond(status, (json.dumps(obj) + "\n").encode(), h)

    def start_chunked(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        hdrs = {"Transfer-Encoding": "chunked"}
        hdrs.update(headers or {})
        self.send((f"HTTP/1.1 {status} OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n").encode())

    def chunk(self, data: bytes) -> None:
        self.send(b"%x\r\n%s\r\n" % (len(data), data) if data else b"0\r\n\r\n")

    def upgrade(self) -> None:
        self.hijacked = True
        self.send(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                  b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")


class FakeDaemon:
    def __init__(self, path: str, handler) -> None:
        self.path = path
        self.handler = handler
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.nconn = 0
        self._stop = False
        self._threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        while not self._stop:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.nconn += 1
                no = self.nconn
            t = threading.Thread(target=self._serve, args=(Conn(s, no),), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, c: Conn) -> None:
        try:
            while True:
                head = c.recv_until(b"\r\n\r\n")
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for ln in lines[1:]:
                    if ln:
                        k, _, v = ln.partition(":")
                        headers[k.strip().lower()] = v.strip()
                req = Request(c.no, method, target, headers)
                if "chunked" in headers.get("transfer-encoding", ""):
                    req.chunked = True
                    body = b""
                    while True:
                        size = int(c.recv_until(b"\r\n").split(b";")[0], 16)  # type: ignore[union-attr]
                        if size == 0:
                            c.recv_until(b"\r\n")
                            break
                        body += c.recv_exact(size)
                        c.recv_exact(2)
                    req.body = body
                elif headers.get("content-length"):
                    req.body = c.recv_exact(int(headers["content-length"]))
                with self.lock:
                    self.requests.append(req)
                self.handler(req, c)
                if c.hijacked:
                    return
        except BaseException as e:  # surfaced by the tests through .errors
            self.errors.append(e)
        finally:
            try:
                c.sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()
