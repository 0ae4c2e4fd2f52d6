"""HTTP/1.1 on a unix socket with h11: keep-alive, chunked bodies both ways, hijack (101 UPGRADED).

Handlers get a `Request` and return a `Response`, a `Stream` (chunked, flushed per item) or a
`Hijack` (the raw connection after `101 UPGRADED`). Errors from berth.errors become Docker's
`{"message": ...}` bodies here and nowhere else.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import re
import socket
import struct
import sys
import termios
import time
import traceback
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import h11

from berth import __version__, errors
from berth.daemon import bodies
from berth.daemon.audit import SYNC_LATER

log = logging.getLogger("berthd.http")

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
# The newest /vX.Y/ prefix served: API_VERSION is what berth advertises (and clients negotiate), but
# requests pinned to 1.42/1.43 are served, with those versions' volume prune semantics (routers.volumes).
MAX_API_VERSION = "1.43"
SERVER = f"berth/{__version__} (linux)"
_VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")
_MAX_EVENT = 1 << 20
_PARSE_INLINE = 256 << 10  # JSON bodies larger than this are parsed off the event loop


@dataclass
class Limits:
    """What a client may hold of the daemon: how long it may take to send a request's head and
    body, how long a keep-alive connection may sit idle, how many connections are open at once,
    how large a JSON body may be (streamed bodies such as image load or archive PUT: no limit)."""

    header_timeout: float = 60.0  # from accept (or the first byte of a keep-alive request) to the head's end
    body_timeout: float = 60.0  # longest silence while a request body is being received
    idle_timeout: float = 300.0  # a keep-alive connection between requests
    max_connections: int = 1000
    max_json_body: int = 32 << 20
    accept_retry: float = 0.5  # out of file descriptors: stop accepting this long, then try again


class PayloadTooLarge(errors.InvalidArgument):
    """A JSON body over Limits.max_json_body (HTTP 413)."""


class _ClientStalled(Exception):
    """The client sent part of a request body and then nothing for Limits.body_timeout."""


def status_for(exc: BaseException) -> int:
    """The one place where berth's error taxonomy becomes HTTP status codes."""
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, errors.InvalidArgument):
        return 400
    if isinstance(exc, errors.PermissionDenied):
        return 403
    if isinstance(exc, errors.NotFound):
        return 404
    if isinstance(exc, errors.Conflict):
        return 409
    if isinstance(exc, errors.Unsupported):
        return 501
    if isinstance(exc, errors.Unavailable):
        return 503
    return 500


@dataclass
class Peer:
    pid: int
    uid: int
    gid: int


@dataclass
class Request:
    method: str
    path: str  # without the /vN.NN prefix
    api_version: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    peer: Peer
    _body: Callable[[], AsyncIterator[bytes]]
    params: dict[str, str] = field(default_factory=dict)
    _consumed: bool = False
    audit_id: str = ""  # set by the audit hook's begin record
    audit_extra: dict[str, Any] = field(default_factory=dict)  # handler's details for the end record
    max_json_body: int = Limits.max_json_body

    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[-1] if vals else default

    def qlist(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def qbool(self, name: str, default: bool = False) -> bool:
        """20.10's BoolValue: "", 0, no, false, none are false; anything else true."""
        v = self.q(name)
        if v is None:
            return default
        return v.strip().lower() not in ("", "0", "no", "false", "none")

    def qint(self, name: str, default: int | None = None) -> int | None:
        v = self.q(name)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise errors.InvalidArgument(f"invalid value for {name}: {v!r} is not an integer")

    def filters(self) -> dict[str, list[str]]:
        """Both filter shapes: {"k": {"v": true}} (CLI) and {"k": ["v"]} (docker-py)."""
        raw = self.q("filters")
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise errors.InvalidArgument(f"invalid filters: {e}")
        if not isinstance(data, dict):
            raise errors.InvalidArgument("invalid filters: expected a JSON object")
        out: dict[str, list[str]] = {}
        for k, v in data.items():
            if isinstance(v, dict):
                out[k] = [x for x, on in v.items() if on]
            elif isinstance(v, list):
                out[k] = [str(x) for x in v]
            elif isinstance(v, str):
                out[k] = [v]
            else:
                raise errors.InvalidArgument(f"invalid filters: bad value for {k!r}")
        return out

    def stream(self) -> AsyncIterator[bytes]:
        self._consumed = True
        return self._body()

    async def body(self) -> bytes:
        chunks = [c async for c in self.stream()]
        return b"".join(chunks)

    async def json(self, schema: bodies.T | None = None, required: bool = False) -> Any:
        """The body as JSON, at most `max_json_body` bytes, checked against `schema` (berth.daemon.bodies:
        every JSON endpoint passes one, so a wrongly typed field is a 400 naming it, never a 500)."""
        limit = self.max_json_body
        try:
            declared = int(self.headers.get("content-length") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise PayloadTooLarge(f"request body is too large: {declared} bytes (at most {limit} for JSON)")
        chunks: list[bytes] = []
        size = 0
        async for c in self.stream():
            size += len(c)
            if size > limit:
                raise PayloadTooLarge(f"request body is too large: more than {limit} bytes (at most {limit} for JSON)")
            chunks.append(c)
        raw = b"".join(chunks)
        if not raw.strip():
            if required:
                raise errors.InvalidArgument("request body is empty: a JSON object is required")
            return None
        obj = _parse_json(raw) if len(raw) <= _PARSE_INLINE else await asyncio.to_thread(_parse_json, raw)
        if schema is not None:
            bodies.check(obj, schema)
        return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(raw: bytes) -> Any:
    """json.loads with JSON's own rules (no NaN/Infinity) and a bound on nesting."""
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise errors.InvalidArgument(f"invalid JSON in request body: nested more than {bodies.MAX_DEPTH} levels deep")
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, the constants above
        raise errors.InvalidArgument(f"invalid JSON in request body: {e}")
    if not bodies.depth_ok(obj):
        raise errors.InvalidArgument(f"invalid JSON in request body: nested more than {bodies.MAX_DEPTH} levels deep")
    return obj


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj).encode() + b"\n", "application/json")


def empty(status: int = 204) -> Response:
    return Response(status)


@dataclass
class Stream:
    """A chunked response; each yielded bytes object is flushed as one chunk."""

    gen: AsyncIterator[bytes]
    status: int = 200
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Called when the client disconnects early (the generator is cancelled as well).
    on_disconnect: Callable[[], None] | None = None


@dataclass
class Hijack:
    """After 101 UPGRADED, `run(reader, writer, pending)` owns the connection; `pending` holds
    bytes the client sent right after the request (pipelined stdin)."""

    run: Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]
    content_type: str = "application/vnd.docker.raw-stream"
    # When the client did not ask for an upgrade (exec start with Detach), this runs instead.


Handler = Callable[[Request], Awaitable[Response | Stream | Hijack]]


# Whether a request changes state (and is audited): a route's fixed mark, or a test of the request.
Mutating = bool | Callable[[Request], bool]


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler, Mutating]] = []

    def add(self, method: str, pattern: str, handler: Handler, mutating: Mutating | None = None) -> None:
        """pattern: a path with {name} (one segment) or {name:.*} (greedy) parts. mutating: whether
        the route changes state (audited); by default every method but GET and HEAD does."""
        rx = "^" + re.sub(
            r"\{(\w+)(?::([^}]+))?\}", lambda m: f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})", pattern
        ) + "$"
        if mutating is None:
            mutating = method not in ("GET", "HEAD")
        self.routes.append((method, re.compile(rx), handler, mutating))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str], Mutating]:
        allowed = False
        for m, rx, h, mut in self.routes:
            mo = rx.match(path)
            if mo:
                if m == method or (m == "GET" and method == "HEAD"):
                    return h, {k: urllib.parse.unquote(v) for k, v in mo.groupdict().items()}, mut
                allowed = True
        if allowed:
            raise _HTTPError(405, f"method {method} not allowed for {path}")
        raise _HTTPError(404, f"page not found: {method} {path}")


class _HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def peer_of(writer: asyncio.StreamWriter) -> Peer:
    sock = writer.get_extra_info("socket")
    try:
        pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    except (OSError, AttributeError):
        pid, uid, gid = 0, -1, -1
    return Peer(pid, uid, gid)


# Called after each request: (request, status, error message or None).
AuditHook = Callable[[Request, int, str | None], None]


_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_LOG_EVERY = 60.0  # at most one line per condition this often, however often it recurs


class Server:
    def __init__(self, router: Router, audit: AuditHook | None = None, limits: Limits | None = None) -> None:
        self.router = router
        self.audit = audit
        self.limits = limits or Limits()
        self.connections: set[asyncio.Task] = set()
        self._listeners: list[socket.socket] = []
        self._paused: str | None = None  # "cap" or "fds" while not accepting
        self._retry: asyncio.TimerHandle | None = None
        self._logged: dict[str, float] = {}  # condition -> when its beginning was last logged
        self._said: set[str] = set()  # conditions whose beginning this episode was logged

    # -- accepting: our own loop, so that the connection cap and running out of file descriptors
    # pause it (asyncio's logs a traceback per failed accept) ---------------------------------------
    def listen(self, sock: socket.socket) -> None:
        """Serve connections accepted on the (listening) `sock` until close()."""
        sock.setblocking(False)
        self._listeners.append(sock)
        if self._paused is None:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            if self._paused is None:
                loop.remove_reader(sock.fileno())
            sock.close()
        self._listeners.clear()
        if self._retry:
            self._retry.cancel()

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(100):  # a batch per wakeup, then the other work on the loop has its turn
            if len(self.connections) >= self.limits.max_connections:
                self._pause("cap", f"{len(self.connections)} connections open, the limit "
                                   f"(--max-connections): not accepting more until some close")
                return
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in _OUT_OF_FDS:
                    self._pause("fds", f"cannot accept connections: {e.strerror} ({len(self.connections)} "
                                       f"open); retrying every {self.limits.accept_retry:g} s")
                    self._retry = asyncio.get_running_loop().call_later(self.limits.accept_retry, self._resume,
                                                                        "fds")
                    return
                if e.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue  # that client is gone already
                raise
            conn.setblocking(False)
            task = asyncio.get_running_loop().create_task(self._serve_accepted(conn))
            self.connections.add(task)
            task.add_done_callback(self._closed)

    def _pause(self, why: str, msg: str) -> None:
        if self._paused is not None:
            return
        self._paused = why
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            loop.remove_reader(sock.fileno())
        now = time.monotonic()
        if now - self._logged.get(why, -_LOG_EVERY) >= _LOG_EVERY:
            self._logged[why] = now
            self._said.add(why)
            log.warning("%s", msg)

    def _resume(self, why: str) -> None:
        if self._paused != why:
            return
        self._paused = None
        self._retry = None
        if why in self._said:
            self._said.discard(why)
            log.warning("accepting connections again (%d open)", len(self.connections))
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            loop.add_reader(sock.fileno(), self._accept, sock)
            self._accept(sock)  # what queued meanwhile, without waiting for another wakeup
            if self._paused is not None:
                return

    def _closed(self, task: asyncio.Task) -> None:
        self.connections.discard(task)
        if self._paused == "cap" and len(self.connections) < self.limits.max_connections:
            self._resume("cap")

    async def _serve_accepted(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock=conn)
        except OSError:
            conn.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await self.handle(reader, writer)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task:
            self.connections.add(task)
        try:
            await _Connection(self, reader, writer).serve()
        except (ConnectionError, asyncio.IncompleteReadError, h11.ProtocolError, TimeoutError, _ClientStalled):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("connection failed")
        finally:
            if task:
                self.connections.discard(task)
            try:
                writer.close()
            except Exception:
                pass


def _base_headers() -> list[tuple[str, str]]:
    return [
        ("Api-Version", API_VERSION),
        ("Docker-Experimental", "false"),
        ("Ostype", "linux"),
        ("Server", SERVER),
        ("Date", formatdate(usegmt=True)),
    ]


class _Connection:
    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_EVENT)
        self.peer = peer_of(writer)
        self._head = False

    async def _next_event(self, timeout: float | None = None) -> Any:
        """The next h11 event; `timeout`: the longest wait for each read (TimeoutError after it)."""
        while True:
            ev = self.conn.next_event()
            if ev is h11.NEED_DATA:
                if timeout is None:
                    data = await self.reader.read(65536)
                else:
                    async with asyncio.timeout(timeout):
                        data = await self.reader.read(65536)
                self.conn.receive_data(data)
                continue
            return ev

    async def _next_head(self, first: bool) -> Any:
        """The next request's head: a client has `header_timeout` from the accept (the first request)
        or from the first byte (later ones) to send it whole; a keep-alive connection may wait
        `idle_timeout` for that first byte. TimeoutError: close without an answer, as Go's servers do."""
        lim = self.server.limits
        ev = self.conn.next_event()
        if ev is not h11.NEED_DATA:
            return ev
        if not first and not self.conn.trailing_data[0]:
            async with asyncio.timeout(lim.idle_timeout):
                data = await self.reader.read(65536)
            self.conn.receive_data(data)
        async with asyncio.timeout(lim.header_timeout):
            return await self._next_event()

    async def _body_event(self) -> Any:
        try:
            return await self._next_event(self.server.limits.body_timeout)
        except TimeoutError:
            raise _ClientStalled(f"no data for {self.server.limits.body_timeout:g} s in the request body") from None

    async def _send(self, ev: Any) -> None:
        data = self.conn.send(ev)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def serve(self) -> None:
        first = True
        while True:
            try:
                ev = await self._next_head(first)
            except h11.RemoteProtocolError as e:
                await self._refuse(e)
                return
            first = False
            if isinstance(ev, (h11.ConnectionClosed,)) or ev is h11.PAUSED:
                return
            if not isinstance(ev, h11.Request):
                return
            keep = await self._handle(ev)
            if not keep:
                return
            if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
                return
            try:
                # Drain an unread request body so the next request parses.
                while self.conn.their_state is h11.SEND_BODY:
                    e = await self._body_event()
                    if isinstance(e, (h11.EndOfMessage, h11.ConnectionClosed)):
                        break
                self.conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _refuse(self, e: h11.RemoteProtocolError) -> None:
        """Answer a request h11 cannot parse (bad request line, headers, chunked framing) with a 400 (or
        431 for a head too large) and a message, then close; nothing for the log."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = _err_body(f"malformed HTTP request: {e}")
        hdrs = [*_base_headers(), ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                ("Connection", "close")]
        try:
            await self._send(h11.Response(status_code=e.error_status_hint, headers=hdrs))
            await self._send(h11.Data(data=body))
            await self._send(h11.EndOfMessage())
        except (ConnectionError, OSError, h11.LocalProtocolError):
            pass

    async def _body_iter(self) -> AsyncIterator[bytes]:
        while self.conn.their_state is h11.SEND_BODY:
            ev = await self._body_event()
            if isinstance(ev, h11.Data):
                yield bytes(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                return
            elif isinstance(ev, h11.ConnectionClosed):
                raise errors.InvalidArgument("client closed the connection during the request body")

    async def _handle(self, ev: h11.Request) -> bool:
        target = ev.target.decode("latin-1")
        self._head = ev.method == b"HEAD"  # an answer to HEAD has no body, errors included
        path, _, qs = target.partition("?")
        api_version = API_VERSION
        m = _VERSION_PREFIX.match(path)
        if m:
            api_version, path = m.group(1), m.group(2)
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in ev.headers}
        req = Request(
            method=ev.method.decode(),
            path=path,
            api_version=api_version,
            query=urllib.parse.parse_qs(qs, keep_blank_values=True),
            headers=headers,
            peer=self.peer,
            _body=self._body_iter,
            max_json_body=self.server.limits.max_json_body,
        )
        status, err = 500, None
        t0 = time.monotonic()
        audited = False
        auditing = bool(self.server.audit) and mutating_of(self.server.router, req)

        def audit_end() -> None:
            # The answer's record is on disk before the answer is sent (docs/architecture.md).
            nonlocal audited
            if auditing and not audited:
                audited = True
                try:
                    self.server.audit(req, status, err)
                except Exception:
                    log.exception("audit failed")
        try:
            try:
                if m:
                    _check_api_version(api_version)
                handler, params, mutating = self.server.router.match(req.method, path)
            except _HTTPError as e:
                status, err = e.status, str(e)
                audit_end()
                await self._send_simple(status, _err_body(err), "application/json")
                return True
            req.params = params
            if auditing:
                try:
                    self.server.audit(req, None, None)  # begin: a crash mid-request still leaves a trace
                except Exception:
                    log.exception("audit failed")
            try:
                result = await handler(req)
            except errors.BerthError as e:
                status, err = status_for(e), str(e)
                audit_end()
                await self._send_simple(status, _err_body(err), "application/json")
                return True
            except asyncio.CancelledError:
                raise
            except h11.RemoteProtocolError as e:  # the body's framing (chunked encoding) is broken
                status, err = e.error_status_hint, f"malformed HTTP request: {e}"
                audit_end()
                await self._refuse(e)
                return False
            except _ClientStalled as e:  # no answer: the client is not listening (Go's servers just close)
                status, err = 408, str(e)
                audit_end()
                return False
            except Exception as e:
                log.error("handler %s %s failed:\n%s", req.method, path, traceback.format_exc())
                status, err = 500, f"{type(e).__name__}: {e}"
                audit_end()
                await self._send_simple(status, _err_body(err), "application/json")
                return True
            if isinstance(result, Response):
                status = result.status
                audit_end()
                await self._send_simple(result.status, result.body, result.content_type, result.headers,
                                        head=req.method == "HEAD")
                return True
            if isinstance(result, Stream):
                status = result.status
                return await self._send_stream(result)
            if isinstance(result, Hijack):
                status = 101
                await self._hijack(result)
                return False
            raise TypeError(f"handler returned {type(result).__name__}")
        finally:
            log.debug("%s %s -> %s (%.1f ms)", req.method, path, status, (time.monotonic() - t0) * 1e3)
            # streams and hijacks: when they end (answered already: the sync need not hold the loop)
            token = SYNC_LATER.set(True)
            try:
                audit_end()
            finally:
                SYNC_LATER.reset(token)

    def _settle_request(self) -> None:
        """Take in the end of the request if it has already arrived: a body-less request's end (and a
        small unread body) comes with its head, and only a request still sending its body must make the
        answer close the connection. Otherwise every answer would close it, and clients reconnect."""
        while self.conn.their_state is h11.SEND_BODY:
            ev = self.conn.next_event()
            if ev is h11.NEED_DATA or ev is h11.PAUSED or isinstance(ev, (h11.EndOfMessage, h11.ConnectionClosed)):
                return

    async def _send_simple(self, status: int, body: bytes, ctype: str | None,
                           extra: list[tuple[str, str]] | None = None, head: bool = False) -> None:
        head = head or self._head
        hdrs = _base_headers()
        if ctype:
            hdrs.append(("Content-Type", ctype))
        hdrs += extra or []
        hdrs.append(("Content-Length", str(len(body))))
        self._settle_request()
        if self.conn.their_state is h11.MIGHT_SWITCH_PROTOCOL or self.conn.their_state is h11.SEND_BODY:
            # Refusing an upgrade, or answering before the body was read: close afterwards.
            hdrs.append(("Connection", "close"))
        await self._send(h11.Response(status_code=status, headers=hdrs))
        if body and not head:
            await self._send(h11.Data(data=body))
        await self._send(h11.EndOfMessage())

    async def _send_stream(self, st: Stream) -> bool:
        hdrs = _base_headers()
        if st.content_type:
            hdrs.append(("Content-Type", st.content_type))
        hdrs += st.headers
        hdrs.append(("Transfer-Encoding", "chunked"))
        await self._send(h11.Response(status_code=st.status, headers=hdrs))
        # Watch for the client leaving while we stream (events, wait, logs -f).
        gone = asyncio.Event()

        async def watch() -> None:
            try:
                while True:
                    data = await self.reader.read(65536)
                    if not data:
                        break
                    self.conn.receive_data(data)
            except (ConnectionError, OSError):
                pass
            gone.set()

        body_done = self.conn.their_state is not h11.SEND_BODY
        watcher = asyncio.ensure_future(watch()) if body_done else None
        agen = st.gen.__aiter__()
        ok = True
        try:
            while True:
                if watcher is None:  # inline: the end of the body follows the last chunk at once
                    try:
                        chunk = await agen.__anext__()
                    except StopAsyncIteration:
                        break
                else:
                    nxt = asyncio.ensure_future(agen.__anext__())
                    done, _ = await asyncio.wait({nxt, watcher}, return_when=asyncio.FIRST_COMPLETED)
                    if nxt not in done:
                        nxt.cancel()
                        ok = False
                        if st.on_disconnect:
                            st.on_disconnect()
                        break
                    try:
                        chunk = await nxt
                    except StopAsyncIteration:
                        break
                if chunk:
                    await self._send(h11.Data(data=chunk))
            if ok:
                await self._send(h11.EndOfMessage())
        except (ConnectionError, OSError):
            ok = False
            if st.on_disconnect:
                st.on_disconnect()
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            aclose = getattr(agen, "aclose", None)
            if aclose:
                try:
                    await aclose()
                except Exception:
                    pass
        if watcher is not None and gone.is_set():
            return False
        return ok

    async def _hijack(self, hj: Hijack) -> None:
        # Consume the (empty) request body so h11 sees the end of the request.
        while self.conn.their_state is h11.SEND_BODY:
            e = await self._body_event()
            if isinstance(e, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        pending = b""
        if self.conn.their_state is h11.MIGHT_SWITCH_PROTOCOL:
            await self._send(h11.InformationalResponse(
                status_code=101, reason=b"UPGRADED",
                headers=[("Content-Type", hj.content_type), ("Connection", "Upgrade"), ("Upgrade", "tcp")]))
            pending = self.conn.trailing_data[0]
        else:
            # No Upgrade header (old clients): answer 200 and stream raw anyway.
            self.writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + hj.content_type.encode()
                              + b"\r\nConnection: close\r\n\r\n")
            pending = self.conn.trailing_data[0]
        await self.writer.drain()
        await self._until_taken_in()
        await hj.run(self.reader, self.writer, pending)

    async def _until_taken_in(self, limit: float = 1.0) -> None:
        """Hold the stream until the client has read the answer's head (nothing of ours left unread
        on the socket), for at most `limit` s: docker-py parses the head through a buffered file and
        then reads the raw socket, so stream bytes that arrive with the head are lost to it (docker-py
        issues 3332, 2042). A fast exec's output otherwise often does."""
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return
        deadline = time.monotonic() + limit
        buf = bytearray(4)
        while True:
            try:
                fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)  # SIOCOUTQ: our bytes still unread
            except OSError:
                return
            if int.from_bytes(buf, sys.byteorder) == 0 or time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.0005)


def _version_tuple(v: str) -> tuple[int, int]:
    major, minor = v.split(".", 1)
    return int(major), int(minor)


def _check_api_version(v: str) -> None:
    """dockerd's answer to a /vX.Y/ prefix outside [MIN_API_VERSION, MAX_API_VERSION]: 400 and these words."""
    if _version_tuple(v) > _version_tuple(MAX_API_VERSION):
        raise _HTTPError(400, f"client version {v} is too new. Maximum supported API version is {MAX_API_VERSION}")
    if _version_tuple(v) < _version_tuple(MIN_API_VERSION):
        raise _HTTPError(400, f"client version {v} is too old. Minimum supported API version is "
                              f"{MIN_API_VERSION}, please upgrade your client to a newer version")


def mutating_of(router: Router, req: Request) -> bool:
    """Whether `req` is audited: its route's mark (see Router.add), never its path's spelling (a
    container may be named anything). A request no route takes is kept if it is not a GET/HEAD: an
    attempt at a change is worth a record."""
    try:
        _, _, mut = router.match(req.method, req.path)
    except _HTTPError:
        return req.method not in ("GET", "HEAD")
    return bool(mut(req)) if callable(mut) else mut


def _err_body(msg: str) -> bytes:
    return json.dumps({"message": msg}).encode() + b"\n"


async def close_hijacked(writer: asyncio.StreamWriter, upstream: asyncio.Future | None, grace: float = 2.0) -> None:
    """End a hijacked stream politely: FIN first, let the client's last bytes drain (closing with
    unread input makes the kernel send RST, which the CLI reports as an error), then close."""
    try:
        if writer.can_write_eof():
            writer.write_eof()
        if upstream is not None and not upstream.done():
            await asyncio.wait_for(asyncio.shield(upstream), grace)
    except (TimeoutError, ConnectionError, OSError):
        pass
    finally:
        if upstream is not None and not upstream.done():
            upstream.cancel()
        try:
            writer.close()
        except Exception:
            pass
