"""Docker Engine API client: version negotiation, errors, JSON, streams and hijacks over the unix socket.

It speaks the API the way docker CLI 28 does (see shared/docker-api-surface.md): `HEAD /_ping` first,
then every request under `/v<negotiated>/`; keep-alive with a small pool so a pending wait keeps its
connection while start/resize go on another; a fresh connection per hijack.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator

from berth.client.http import ClientError, Connection, Hijacked, ProtocolError, Response
from berth.client.stream import json_messages

DEFAULT_SOCKET = "/run/berth/berth.sock"
MAX_API_VERSION = "1.41"
FALLBACK_API_VERSION = "1.24"


class DaemonUnreachable(ClientError):
    def __init__(self, host: str) -> None:
        super().__init__(f"Cannot connect to the berth daemon at {host}. Is berthd running?")
        self.host = host


class APIError(ClientError):
    """An error status from the daemon; `message` is the daemon's own text."""

    def __init__(self, status: int, message: str, url: str = "") -> None:
        super().__init__(f"Error response from daemon: {message}")
        self.status = status
        self.message = message
        self.url = url


class StreamError(ClientError):
    """An error reported inside a 200 progress stream (`errorDetail`)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def resolve_host(host: str | None = None) -> str:
    """`-H` beats BERTH_HOST beats the default; returns a `unix://` URL."""
    host = host or os.environ.get("BERTH_HOST") or f"unix://{DEFAULT_SOCKET}"
    if host.startswith("/"):
        host = "unix://" + host
    if not host.startswith("unix://"):
        raise ClientError(f"unsupported daemon host {host!r}: berth only speaks unix://PATH")
    return host


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return (0,)


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _escape(s: str, safe: bytes = b"", plus: bool = False) -> str:
    """Percent-encoding as urllib.parse.quote / quote_plus do it (RFC 3986 unreserved characters and
    `safe` kept, UTF-8 bytes); here because urllib.parse costs milliseconds of CLI start-up."""
    out = []
    for b in s.encode("utf-8"):
        if b in _UNRESERVED or b in safe:
            out.append(chr(b))
        elif plus and b == 0x20:
            out.append("+")
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def encode_params(params: dict | None) -> str:
    """Query string the CLI's way: keys sorted (Go's url.Values), True -> 1, False/None omitted, lists
    repeat the key, dicts as JSON."""
    if not params:
        return ""
    items: list[tuple[str, str]] = []
    for k, v in sorted(params.items(), key=lambda kv: kv[0]):
        if v is None or v is False:
            continue
        if v is True:
            items.append((k, "1"))
        elif isinstance(v, (list, tuple)):
            items.extend((k, str(x)) for x in v)
        elif isinstance(v, dict):
            items.append((k, json.dumps(v, separators=(",", ":"))))
        else:
            items.append((k, str(v)))
    return "?" + "&".join(f"{_escape(k, plus=True)}={_escape(v, plus=True)}" for k, v in items) if items else ""


def filters_param(pairs: Iterable[str]) -> dict | None:
    """`--filter k=v` flags -> the CLI's map-of-bools filter JSON."""
    out: dict[str, dict[str, bool]] = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep:
            raise ClientError(f'bad format of filter (expected name=value): "{p}"')
        out.setdefault(k.strip().lower() if k.strip().lower() in ("status", "type") else k.strip(), {})[v] = True
    return out or None


class Client:
    def __init__(self, host: str | None = None, timeout: float | None = None) -> None:
        self.host = resolve_host(host)
        self.path = self.host[len("unix://") :]
        self.timeout = timeout
        self._idle: list[Connection] = []
        self.api_version: str | None = None
        self.ostype = "linux"
        self.server_header = ""

    # -- connections -------------------------------------------------------------------------
    def _new_conn(self) -> Connection:
        try:
            return Connection(self.path, self.timeout, on_idle=self._idle.append)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            raise DaemonUnreachable(self.host)
        except PermissionError:
            raise ClientError(
                f"permission denied while trying to connect to the berth daemon socket at {self.host}"
            )

    def _conn(self) -> Connection:
        while self._idle:
            c = self._idle.pop()
            if not c.closed:
                return c
        return self._new_conn()

    def close(self) -> None:
        for c in self._idle:
            c.close()
        self._idle.clear()

    # -- negotiation -------------------------------------------------------------------------
    def negotiate(self) -> str:
        """`HEAD /_ping` (GET if HEAD is refused); cap the daemon's Api-Version at ours."""
        if self.api_version:
            return self.api_version
        r = self._raw("HEAD", "/_ping")
        r.read()
        if r.status == 405:
            r = self._raw("GET", "/_ping")
            r.read()
        v = r.header("api-version")
        if not v:
            v = FALLBACK_API_VERSION
        elif _version_tuple(v) > _version_tuple(MAX_API_VERSION):
            v = MAX_API_VERSION
        self.api_version = v
        self.ostype = r.header("ostype", "linux")
        self.server_header = r.header("server")
        return v

    def url(self, path: str, params: dict | None = None) -> str:
        return f"/v{self.negotiate()}{path}{encode_params(params)}"

    # -- requests ----------------------------------------------------------------------------
    def _raw(self, method: str, target: str, headers=None, body=None, fresh: bool = False) -> Response:
        # A pooled connection may have been closed by the daemon while idle: retry once on a new one
        # (only for bodies we can resend).
        # A streamed body cannot be sent again: it gets a new connection, never a pooled one.
        fresh = fresh or not isinstance(body, (bytes, bytearray, type(None)))
        conn = self._new_conn() if fresh else self._conn()
        try:
            return conn.request(method, target, headers, body)
        except (ProtocolError, ConnectionResetError, BrokenPipeError) as e:
            conn.close()
            if fresh or not isinstance(body, (bytes, type(None))):
                raise ClientError(f"error during connect: {e}")
            conn = self._new_conn()
            try:
                return conn.request(method, target, headers, body)
            except (ProtocolError, OSError) as e2:
                conn.close()
                raise ClientError(f"error during connect: {e2}")

    def request(
        self,
        method: str,
        path: str,
        params: dict | None = None,
        body=None,
        headers: dict | None = None,
        fresh: bool = False,
    ) -> Response:
        """Send a request; raise APIError on >= 400; return the response with its body unread."""
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        target = self.url(path, params)
        r = self._raw(method, target, hdrs, body, fresh=fresh)
        if r.status >= 400:
            raise self._error(r, target)
        return r

    def _error(self, r: Response, target: str) -> APIError:
        data = r.read()
        ctype = r.header("content-type")
        msg = ""
        if "json" in ctype:
            try:
                msg = json.loads(data).get("message", "")
            except (ValueError, AttributeError):
                msg = data.decode("utf-8", "replace").strip()
        else:
            msg = data.decode("utf-8", "replace").strip()
        if not msg:
            msg = (
                f"request returned {r.status} {r.reason} for API route and version "
                f"http://%2Frun%2Fberth%2Fberth.sock{target}, check if the server supports the requested API version"
            )
        return APIError(r.status, msg, target)

    def get_json(self, path: str, params: dict | None = None):
        return self.request("GET", path, params).json()

    def post_json(self, path: str, body=None, params: dict | None = None):
        return self.request("POST", path, params, body).json()

    def post(self, path: str, params: dict | None = None, body=None) -> None:
        self.request("POST", path, params, body).read()

    def delete(self, path: str, params: dict | None = None):
        return self.request("DELETE", path, params).json()

    def stream_json(self, method: str, path: str, params=None, body=None, headers=None) -> Iterator[dict]:
        r = self.request(method, path, params, body, headers)
        return json_messages(r.iter_raw())  # type: ignore[return-value]

    def hijack(self, path: str, params: dict | None = None, body=None) -> Hijacked:
        """POST with `Upgrade: tcp` on a fresh connection; anything but 101 is an error."""
        hdrs = {"Connection": "Upgrade", "Upgrade": "tcp"}
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        else:
            hdrs["Content-Type"] = "text/plain"
        target = self.url(path, params)
        conn = self._new_conn()
        try:
            r = conn.request("POST", target, hdrs, body)
        except (ProtocolError, OSError) as e:
            conn.close()
            raise ClientError(f"error during connect: {e}")
        if r.status >= 400:
            err = self._error(r, target)
            conn.close()
            raise err
        if r.status != 101:
            conn.close()
            raise ClientError(f"unable to upgrade to tcp, received {r.status}")
        return Hijacked(conn)

    # -- small helpers used by several commands ---------------------------------------------
    @staticmethod
    def q(name: str) -> str:
        """Quote an object name for a path, keeping `/` and `:` raw as the CLI does for images."""
        return _escape(name, safe=b"/:@")

    def ping(self) -> str:
        return self.negotiate()


def is_connection_error(e: BaseException) -> bool:
    return isinstance(e, (DaemonUnreachable, ConnectionError, TimeoutError))
