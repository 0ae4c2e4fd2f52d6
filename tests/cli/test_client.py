"""berth.client against a tiny server of our own: negotiation, keep-alive, chunked both ways, errors,
hijack with half-close, multiplexed-stream demux and JSON streams."""

from __future__ import annotations

import hashlib
import json
import os
import threading

import pytest

from berth.client import APIError, Client, ClientError, DaemonUnreachable, encode_params, filters_param
from berth.client.stream import Demuxer, FrameError, demux, frame, json_messages

from .fakedaemon import FakeDaemon


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "d.sock")


@pytest.fixture
def fake(sock_path):
    daemons = []

    def make(handler):
        d = FakeDaemon(sock_path, handler)
        daemons.append(d)
        return d

    yield make
    for d in daemons:
        d.close()
        assert not d.errors, d.errors


def ping_ok(req, c, version="1.41"):
    if req.path == "/_ping":
        h = {"Ostype": "linux", "Content-Type": "text/plain; charset=utf-8"}
        if version:
            h["Api-Version"] = version
        c.respond(200, b"OK" if req.method == "GET" else b"", h)
        return True
    return False


@pytest.mark.parametrize(("advertised", "used"), [("1.41", "1.41"), ("1.24", "1.24"), ("1.51", "1.41"), (None, "1.24")])
def test_negotiation_uses_ping_version(fake, sock_path, advertised, used):
    def h(req, c):
        if not ping_ok(req, c, advertised):
            c.json(200, {"path": req.path})

    d = fake(h)
    cl = Client(f"unix://{sock_path}")
    assert cl.get_json("/version") == {"path": f"/v{used}/version"}
    assert [r.method for r in d.requests] == ["HEAD", "GET"]
    assert d.requests[0].target == "/_ping"


def test_head_ping_refused_falls_back_to_get(fake, sock_path):
    def h(req, c):
        if req.path == "/_ping" and req.method == "HEAD":
            c.respond(405, b"", {"Content-Type": "text/plain"})
        elif not ping_ok(req, c):
            c.json(200, [])

    d = fake(h)
    Client(sock_path).get_json("/containers/json")
    assert [(r.method, r.path) for r in d.requests] == [("HEAD", "/_ping"), ("GET", "/_ping"), ("GET", "/v1.41/containers/json")]


def test_keepalive_reuses_one_connection(fake, sock_path):
    def h(req, c):
        if not ping_ok(req, c):
            c.json(200, {"n": len(d.requests)})

    d = fake(h)
    cl = Client(sock_path)
    for _ in range(3):
        cl.get_json("/info")
    assert {r.conn_no for r in d.requests} == {1}
    assert d.nconn == 1


def test_chunked_response_split_anywhere(fake, sock_path):
    payload = json.dumps({"Id": "x" * 64, "Names": ["/a"], "é": "ü"}).encode() + b"\n"

    def h(req, c):
        if ping_ok(req, c):
            return
        # chunk boundaries inside the JSON and inside a multi-byte character; chunk extension; trailer
        c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(payload), 7):
            piece = payload[i:i + 7]
            c.send(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        c.send(b"0\r\nX-Trailer: 1\r\n\r\n")

    d = fake(h)
    cl = Client(sock_path)
    assert cl.get_json("/containers/x/json") == json.loads(payload)
    assert cl.get_json("/containers/x/json") == json.loads(payload)  # the connection is still usable
    assert d.nconn == 1


def test_body_until_close_and_no_reuse(fake, sock_path):
    def h(req, c):
        if ping_ok(req, c):
            return
        c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + b"z" * 100000)
        c.sock.shutdown(2)
        c.hijacked = True  # stop serving this connection

    fake(h)
    cl = Client(sock_path)
    r = cl.request("GET", "/containers/x/export")
    assert r.read() == b"z" * 100000
    assert r.conn.closed


def test_chunked_request_upload(fake, sock_path):
    data = os.urandom(300000)

    def h(req, c):
        if not ping_ok(req, c):
            c.json(200, {"chunked": req.chunked, "sha": hashlib.sha256(req.body).hexdigest(),
                         "ctype": req.headers.get("content-type")})

    fake(h)
    cl = Client(sock_path)
    gen = (data[i:i + 65536] for i in range(0, len(data), 65536))
    res = cl.request("POST", "/images/load", {"quiet": True}, body=gen, headers={"Content-Type": "application/x-tar"}).json()
    assert res == {"chunked": True, "sha": hashlib.sha256(data).hexdigest(), "ctype": "application/x-tar"}


def test_json_body_and_empty_post_headers(fake, sock_path):
    def h(req, c):
        if not ping_ok(req, c):
            c.json(200, {"h": req.headers, "body": req.body.decode()})

    fake(h)
    cl = Client(sock_path)
    r = cl.post_json("/containers/create", {"Image": "busybox"})
    assert r["h"]["content-type"] == "application/json" and json.loads(r["body"]) == {"Image": "busybox"}
    r = cl.post_json("/containers/x/start")
    assert r["h"]["content-length"] == "0" and "content-type" not in r["h"]


@pytest.mark.parametrize(
    ("ctype", "body", "message"),
    [
        ("application/json", b'{"message":"No such container: nope"}\n', "No such container: nope"),
        ("text/plain", b'{"message":"raw"}', '{"message":"raw"}'),
        ("application/json", b"", "request returned 500"),
    ],
)
def test_error_rendering(fake, sock_path, ctype, body, message):
    def h(req, c):
        if not ping_ok(req, c):
            c.respond(404 if body else 500, body, {"Content-Type": ctype}, reason="Not Found" if body else "Internal Server Error")

    fake(h)
    with pytest.raises(APIError) as ei:
        Client(sock_path).get_json("/containers/nope/json")
    assert str(ei.value).startswith("Error response from daemon: ")
    assert message in ei.value.message


def test_unreachable_daemon_message(tmp_path):
    with pytest.raises(DaemonUnreachable) as ei:
        Client(f"unix://{tmp_path}/absent.sock").get_json("/info")
    assert str(ei.value) == f"Cannot connect to the berth daemon at unix://{tmp_path}/absent.sock. Is berthd running?"


def test_default_host_and_env(monkeypatch):
    monkeypatch.delenv("BERTH_HOST", raising=False)
    assert Client().host == "unix:///run/berth/berth.sock"
    monkeypatch.setenv("BERTH_HOST", "unix:///tmp/x.sock")
    assert Client().path == "/tmp/x.sock"
    with pytest.raises(ClientError, match="unix://"):
        Client("tcp://1.2.3.4:2375")


def test_hijack_half_close_and_demux(fake, sock_path):
    got_stdin = []

    def h(req, c):
        if ping_ok(req, c):
            return
        assert req.headers["upgrade"] == "tcp" and req.headers["connection"] == "Upgrade"
        c.upgrade()
        c.send(frame(1, b"before "))
        got_stdin.append(c.recv_all())  # returns only once the client half-closed
        c.send(frame(1, b"echo:" + got_stdin[0]) + frame(2, b"err\n"))

    fake(h)
    cl = Client(sock_path)
    conn = cl.hijack("/containers/x/attach", {"stdin": True, "stdout": True, "stream": True})
    conn.sendall(b"hello\n")
    conn.close_write()
    frames = list(demux(iter(conn.recv, b"")))
    assert frames == [(1, b"before "), (1, b"echo:hello\n"), (2, b"err\n")]
    assert got_stdin == [b"hello\n"]


def test_hijack_requires_101(fake, sock_path):
    def h(req, c):
        if not ping_ok(req, c):
            c.respond(200, b"", {"Content-Type": "text/plain"})

    fake(h)
    with pytest.raises(ClientError, match="unable to upgrade to tcp, received 200"):
        Client(sock_path).hijack("/exec/x/start", body={"Detach": False, "Tty": False})


def test_hijack_error_status_is_api_error(fake, sock_path):
    def h(req, c):
        if not ping_ok(req, c):
            c.json(409, {"message": "container x is not running"})

    fake(h)
    with pytest.raises(APIError, match="is not running"):
        Client(sock_path).hijack("/containers/x/attach", {"stream": True})


def test_wait_keeps_its_connection_while_start_uses_another(fake, sock_path):
    started = threading.Event()

    def h(req, c):
        if ping_ok(req, c):
            return
        if req.path.endswith("/wait"):
            c.start_chunked(200, {"Content-Type": "application/json"})  # headers first...
            started.wait(10)
            c.chunk(b'{"Error":null,"StatusCode":3}\n')  # ...the body once the process ended
            c.chunk(b"")
        elif req.path.endswith("/start"):
            started.set()
            c.respond(204)

    d = fake(h)
    cl = Client(sock_path)
    wait = cl.request("POST", "/containers/x/wait", {"condition": "next-exit"})
    cl.request("POST", "/containers/x/start").read()
    assert wait.json() == {"Error": None, "StatusCode": 3}
    conns = {r.path.rsplit("/", 1)[-1]: r.conn_no for r in d.requests}
    assert conns["wait"] != conns["start"]


def test_demuxer_any_split():
    data = frame(1, b"hello") + frame(2, b"") + frame(2, b"x" * 70000) + frame(1, b"\x00\x01")
    want = [(1, b"hello"), (2, b""), (2, b"x" * 70000), (1, b"\x00\x01")]
    for step in (1, 3, 8, 9, 4096):
        d = Demuxer()
        out = []
        for i in range(0, len(data), step):
            out += d.feed(data[i:i + step])
        assert out == want and d.leftover() == 0
    with pytest.raises(FrameError):
        list(demux([frame(1, b"abc")[:-1]]))
    with pytest.raises(FrameError):
        Demuxer().feed(b"\x09\x00\x00\x00\x00\x00\x00\x01x")


def test_json_messages_any_split():
    msgs = [{"status": "Pulling"}, {"stream": "Step 1/2 ü\n"}, {"aux": {"ID": "sha256:ab"}}]
    raw = b"".join(json.dumps(m, ensure_ascii=False).encode() + sep for m, sep in zip(msgs, [b"\r\n", b"", b"\n"], strict=True))
    for step in (1, 2, 5, len(raw)):
        assert list(json_messages(raw[i:i + step] for i in range(0, len(raw), step))) == msgs
    with pytest.raises(ValueError):
        list(json_messages([b'{"a":']))


def test_query_encoding():
    assert encode_params({"all": True, "size": False, "limit": None, "t": 0}) == "?all=1&t=0"
    assert encode_params({"names": ["a", "b:1"]}) == "?names=a&names=b%3A1"
    f = filters_param(["name=x", "status=exited", "status=running"])
    assert f == {"name": {"x": True}, "status": {"exited": True, "running": True}}
    assert encode_params({"filters": {"dangling": {"true": True}}}) == "?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D"
    with pytest.raises(ClientError, match="bad format of filter"):
        filters_param(["novalue"])


@pytest.mark.parametrize("value", ["a b/c:d@e", "é~x_y.z-", "&=?#%+", "日本", "", "\t\n"])
def test_query_and_name_escaping_match_urllib(value):
    """The client's own percent-encoding (urllib.parse is too slow to import) is urllib's."""
    from urllib.parse import quote, urlencode

    assert encode_params({"k": value}) == "?" + urlencode([("k", value)])
    assert Client.q(value) == quote(value, safe="/:@")


def test_error_before_upload_is_read(sock_path):
    """A daemon that refuses an upload and closes early: the client reports the daemon's answer."""
    import socket

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(4)

    def serve():
        for _ in range(2):
            s, _ = srv.accept()
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            if buf.startswith(b"HEAD /_ping"):
                s.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            else:
                body = b'{"message":"page not found: POST /images/create"}'
                s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            s.shutdown(socket.SHUT_WR)
            s.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        cl = Client(sock_path)
        big = (b"x" * 65536 for _ in range(400))
        with pytest.raises(APIError) as ei:
            cl.request("POST", "/images/create", {"fromSrc": "-"}, body=big).read()
        assert ei.value.status == 404 and "page not found" in ei.value.message
    finally:
        srv.close()
        t.join(5)
