"""berthd's Engine API at the HTTP level: version-dependent behaviour (volume prune) and the exact
shape of events, over raw requests on the daemon's socket."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.parse

import pytest

pytestmark = pytest.mark.timeout(120)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


def api(berthd, method: str, path: str, body: object = None, **query) -> tuple[int, bytes]:
    qs = urllib.parse.urlencode({k: json.dumps(v) if isinstance(v, dict) else v for k, v in query.items()})
    conn = _UnixConnection(berthd.sock)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path + ("?" + qs if qs else ""), body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _volumes(berthd, label: str) -> tuple[str, str]:
    """A named and an anonymous volume, both unused, both labelled `label`."""
    st, named = api(berthd, "POST", "/v1.41/volumes/create", {"Name": label + "-named", "Labels": {label: ""}})
    assert st == 201, named
    st, anon = api(berthd, "POST", "/v1.41/volumes/create", {"Labels": {label: ""}})
    assert st == 201, anon
    return json.loads(named)["Name"], json.loads(anon)["Name"]


def _prune(berthd, version: str, label: str, **extra: list[str]) -> set[str]:
    st, body = api(berthd, "POST", f"/v{version}/volumes/prune", filters={"label": [label], **extra})
    assert st == 200, body
    return set(json.loads(body)["VolumesDeleted"] or [])


def _cleanup(berthd, *names: str) -> None:
    for n in names:
        api(berthd, "DELETE", f"/v1.41/volumes/{n}", force="1")


@pytest.mark.parametrize("version", ["1.41", "1.40"])
def test_volume_prune_before_1_42_removes_every_unused_volume(berthd, unique_name, version):
    named, anon = _volumes(berthd, unique_name)
    try:
        assert _prune(berthd, version, unique_name) == {named, anon}
        st, _ = api(berthd, "GET", f"/v1.41/volumes/{named}")
        assert st == 404
    finally:
        _cleanup(berthd, named, anon)


def test_volume_prune_without_version_prefix_is_1_41(berthd, unique_name):
    named, anon = _volumes(berthd, unique_name)
    try:
        st, body = api(berthd, "POST", "/volumes/prune", filters={"label": [unique_name]})
        assert st == 200, body
        assert set(json.loads(body)["VolumesDeleted"]) == {named, anon}
    finally:
        _cleanup(berthd, named, anon)


def test_volume_prune_from_1_42_removes_anonymous_only_unless_all(berthd, unique_name):
    named, anon = _volumes(berthd, unique_name)
    try:
        assert _prune(berthd, "1.42", unique_name) == {anon}
        st, _ = api(berthd, "GET", f"/v1.41/volumes/{named}")
        assert st == 200
        assert _prune(berthd, "1.43", unique_name, all=["true"]) == {named}
    finally:
        _cleanup(berthd, named, anon)


def test_volume_prune_keeps_volumes_in_use(berthd, unique_name):
    st, body = api(berthd, "POST", "/v1.41/volumes/create", {"Name": unique_name + "-used", "Labels": {unique_name: ""}})
    assert st == 201, body
    st, body = api(berthd, "POST", "/v1.41/containers/create",
                   {"Image": "busybox", "Cmd": ["true"], "Labels": {unique_name: ""},
                    "HostConfig": {"Binds": [f"{unique_name}-used:/data"]}}, name=unique_name)
    assert st == 201, body
    try:
        assert _prune(berthd, "1.41", unique_name) == set()
        st, _ = api(berthd, "GET", f"/v1.41/volumes/{unique_name}-used")
        assert st == 200
    finally:
        api(berthd, "DELETE", f"/v1.41/containers/{unique_name}", force="1")
        _cleanup(berthd, unique_name + "-used")


def test_event_attributes_are_sorted(berthd, unique_name):
    since = time.time() - 1
    labels = {"zz": "1", "aa": "2", "Mm": "3", unique_name: "4"}
    st, body = api(berthd, "POST", "/v1.41/containers/create",
                   {"Image": "busybox", "Cmd": ["true"], "Labels": labels}, name=unique_name)
    assert st == 201, body
    try:
        st, body = api(berthd, "GET", "/v1.41/events", since=str(since), until=str(time.time() + 1),
                       filters={"container": [unique_name]})
        assert st == 200, body
        evs = [json.loads(line) for line in body.splitlines() if line.strip()]
        create = [e for e in evs if e["Action"] == "create"]
        assert create, evs
        raw = body.splitlines()[evs.index(create[0])].decode()
        keys = list(json.loads(raw)["Actor"]["Attributes"])
        assert set(labels) <= set(keys) and "name" in keys and "image" in keys
        assert keys == sorted(keys)
    finally:
        api(berthd, "DELETE", f"/v1.41/containers/{unique_name}", force="1")


def test_rm_f_with_a_stuck_attach(berthd, unique_name):
    """An attached client that never reads a chatty container's output must not make `rm -f` hang."""
    st, body = api(berthd, "POST", "/v1.41/containers/create", {"Image": "busybox", "Cmd": ["yes"]}, name=unique_name)
    assert st == 201, body
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        st, body = api(berthd, "POST", f"/v1.41/containers/{unique_name}/start")
        assert st == 204, body
        s.connect(berthd.sock)
        s.sendall(f"POST /v1.41/containers/{unique_name}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
                  "Host: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        st, body = api(berthd, "GET", f"/v1.41/containers/{unique_name}/json")
        log_path = json.loads(body)["LogPath"]
        deadline = time.monotonic() + 60
        while os.path.getsize(log_path) < (1 << 20):  # output flowing (the attach holds ~4 MB unread)
            assert time.monotonic() < deadline, "the container's output stalled before the attach filled up"
            time.sleep(0.05)
        st, body = api(berthd, "DELETE", f"/v1.41/containers/{unique_name}", force="1")
        assert st == 204, body
        st, _ = api(berthd, "GET", f"/v1.41/containers/{unique_name}/json")
        assert st == 404
    finally:
        s.close()
        api(berthd, "DELETE", f"/v1.41/containers/{unique_name}", force="1")


def test_keep_alive_across_requests_and_error_answers_to_head(berthd, unique_name):
    """Body-less requests keep the connection (clients reuse it: one connect per CLI command); an error
    answer to HEAD carries no body, so the next request on the connection parses."""
    conn = _UnixConnection(berthd.sock)
    try:
        conn.request("HEAD", "/_ping")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b""
        assert r.getheader("Connection") != "close"
        sock = conn.sock
        conn.request("HEAD", f"/containers/{unique_name}/archive?path=/")
        r = conn.getresponse()
        assert r.status == 404 and r.read() == b""
        conn.request("GET", "/version")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["ApiVersion"]
        assert conn.sock is sock  # the same connection all along
    finally:
        conn.close()


def test_audit_leaves_out_wait_and_output_only_attach(berthd, unique_name):
    """Waiting and reading the output change nothing and are not audited; attaching stdin is."""
    since = time.time() - 0.5
    st, body = api(berthd, "POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]}, name=unique_name)
    assert st == 201, body
    try:
        # no stream chosen: refused at once (400), which is still audited when stdin is asked for
        for q in ({"stdout": 1}, {"stdin": 1, "stdout": 1}):
            st, body = api(berthd, "POST", f"/containers/{unique_name}/attach", **q)
            assert st == 400, body
        st, body = api(berthd, "POST", f"/containers/{unique_name}/wait", condition="not-running")
        assert st == 200, body
        st, body = api(berthd, "GET", "/berth/audit", since=since, object=unique_name)
        assert st == 200, body
        paths = [(r["path"], r["query"]) for r in json.loads(body)]
        assert ("/containers/create", f"name={unique_name}") in paths, paths
        attaches = [q for p, q in paths if p.endswith("/attach")]
        assert len(attaches) == 1 and "stdin=1" in attaches[0], paths
        assert not [p for p, _ in paths if p.endswith("/wait")], paths
    finally:
        api(berthd, "DELETE", f"/containers/{unique_name}", force=1)


def test_hijacked_stream_waits_until_the_head_is_read(berthd, unique_name):
    """Stream bytes never arrive together with the 101's head (docker-py reads the head through a
    buffered file and then the raw socket, and would lose them): here the client reads late, after
    the exec's output exists, and its first read still returns the head alone."""
    st, body = api(berthd, "POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "300"]},
                   name=unique_name)
    assert st == 201, body
    try:
        st, body = api(berthd, "POST", f"/containers/{unique_name}/start")
        assert st == 204, body
        st, body = api(berthd, "POST", f"/containers/{unique_name}/exec",
                       {"Cmd": ["echo", "hi"], "AttachStdout": True, "AttachStderr": True})
        assert st == 201, body
        eid = json.loads(body)["Id"]
        req = json.dumps({"Detach": False, "Tty": False}).encode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(berthd.sock)
        try:
            s.sendall(f"POST /v1.41/exec/{eid}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                      f"Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {len(req)}\r\n\r\n"
                      .encode() + req)
            time.sleep(0.2)  # the exec runs and writes meanwhile
            head = s.recv(65536)
            assert head.startswith(b"HTTP/1.1 101") and head.endswith(b"\r\n\r\n"), head
            rest = b""
            while chunk := s.recv(65536):
                rest += chunk
        finally:
            s.close()
        assert rest == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n", rest
    finally:
        api(berthd, "DELETE", f"/containers/{unique_name}", force=1)
