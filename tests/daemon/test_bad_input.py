"""Malformed requests get a 400 (or 413) with a message, never a 500: wrongly typed fields anywhere in
a JSON body, too deep nesting, integers outside int64, broken chunked framing, API versions outside
the supported range."""

from __future__ import annotations

import copy
import http.client
import json
import os
import re
import socket

import pytest

pytestmark = pytest.mark.timeout(300)

ROUTERS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "src", "berth", "daemon", "routers")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.unix_path)


def post(berthd, path: str, raw: bytes, method: str = "POST") -> tuple[int, dict]:
    conn = _UnixConnection(berthd.sock)
    try:
        conn.request(method, path, body=raw, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, {"raw": data.decode(errors="replace")}
    finally:
        conn.close()


def raw_exchange(berthd, data: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(berthd.sock)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out  # the daemon closed the connection
            out += chunk
    finally:
        s.close()


VALID_CREATE = {
    "Hostname": "h", "User": "", "AttachStdout": True, "Tty": False, "OpenStdin": False,
    "Env": ["A=1"], "Cmd": ["true"], "Image": "busybox", "WorkingDir": "/", "Entrypoint": ["/bin/sh", "-c"],
    "Labels": {"k": "v"}, "StopSignal": "SIGTERM", "StopTimeout": 5, "ExposedPorts": {"80/tcp": {}},
    "Volumes": {"/data": {}}, "Healthcheck": {"Test": ["NONE"], "Interval": 0, "Retries": 0},
    "HostConfig": {
        "Binds": [], "NetworkMode": "none", "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False, "CapAdd": ["CHOWN"],
        "Dns": [], "ExtraHosts": [], "OomScoreAdj": 0, "Privileged": False, "ReadonlyRootfs": False,
        "SecurityOpt": [], "Tmpfs": {"/t": "size=1m"}, "ShmSize": 67108864, "Sysctls": {}, "Memory": 0,
        "MemorySwap": 0, "CpuShares": 0, "NanoCpus": 0, "PidsLimit": 0, "BlkioWeight": 0,
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024}], "ConsoleSize": [0, 0],
        "Mounts": [{"Type": "tmpfs", "Target": "/m", "ReadOnly": False}], "Init": False,
    },
    "NetworkingConfig": {"EndpointsConfig": {}},
}


def _wrong_values(v: object) -> list[object]:
    """Values of another JSON type than `v` (for a string list: not a string either, as StrSlice takes one)."""
    if isinstance(v, bool):
        return ["x", 1, [], {}]
    if isinstance(v, int):
        return ["x", 1.5, True, [], {}, 2 ** 70]
    if isinstance(v, str):
        return [1, True, [], {}]
    if isinstance(v, list):
        return [1, True, {}] + ([[1]] if v and all(isinstance(x, str) for x in v) else [])
    if isinstance(v, dict):
        return [1, "x", [], [1]]
    return []


def _variants(body: dict) -> list[tuple[str, dict]]:
    """Every field of `body` (nested ones too) replaced in turn by each wrongly typed value."""
    out = []

    def walk(node: object, path: list) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for k, v in items:
            for wrong in _wrong_values(v):
                b = copy.deepcopy(body)
                tgt = b
                for p in path:
                    tgt = tgt[p]
                tgt[k] = wrong
                out.append((".".join(str(p) for p in [*path, k]), b))
            walk(v, [*path, k])

    walk(body, [])
    return out


def _assert_400(st: int, resp: dict, what: str, field: str | None = None) -> None:
    assert st == 400, f"{what}: {st} {resp}"
    msg = resp.get("message") or ""
    assert msg, f"{what}: no message: {resp}"
    if field:
        assert field in msg, f"{what}: the message does not name {field}: {msg}"


def test_create_type_confused_fields_are_400_naming_the_field(berthd, unique_name):
    cases = _variants(VALID_CREATE)
    assert len(cases) > 150
    for path, body in cases:
        st, resp = post(berthd, "/v1.41/containers/create", json.dumps(body).encode())
        if st == 201:
            berthd.docker("rm", "-f", resp["Id"], check=False)
        leaf = re.sub(r"\.\d+$", "", path).rsplit(".", 1)[-1]
        _assert_400(st, resp, f"{path}={json.dumps(body)[:200]}", leaf)
    # the valid body itself is taken
    st, resp = post(berthd, f"/v1.41/containers/create?name={unique_name}", json.dumps(VALID_CREATE).encode())
    assert st == 201, resp
    berthd.docker("rm", "-f", unique_name)


@pytest.mark.parametrize("body,field", [
    ({"Image": "busybox", "Env": "x"}, "Env"),
    ({"Image": "busybox", "HostConfig": {"Memory": "big"}}, "HostConfig.Memory"),
    ({"Image": "busybox", "Cmd": [1, 2]}, "Cmd"),
    ({"Image": "busybox", "Labels": []}, "Labels"),
    ({"Image": "busybox", "HostConfig": []}, "HostConfig"),
    ({"Image": "busybox", "HostConfig": {"Memory": 2 ** 70}}, "HostConfig.Memory"),
    ({"Image": "busybox", "HostConfig": {"BlkioWeight": 70000}}, "HostConfig.BlkioWeight"),
    ({"Image": "busybox", "HostConfig": {"Ulimits": {"Name": "nofile"}}}, "HostConfig.Ulimits"),
    ({"Image": "busybox", "HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 2 ** 64}]}}, "Soft"),
    ({"Image": "busybox", "HostConfig": {"LogConfig": {"Config": {"max-size": 1}}}}, "LogConfig.Config"),
    ({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": []}}, "EndpointsConfig"),
    ([{"Image": "busybox"}], None),
    ("busybox", None),
])
def test_create_examples(berthd, body, field):
    st, resp = post(berthd, "/v1.41/containers/create", json.dumps(body).encode())
    _assert_400(st, resp, json.dumps(body), field)


def test_other_bodies_type_confused(berthd, unique_name):
    berthd.docker("create", "--name", unique_name, "busybox", "sleep", "60")
    try:
        cases = {
            f"/v1.41/containers/{unique_name}/exec": {"Cmd": ["true"], "Env": ["A=1"], "Tty": False,
                                                     "AttachStdout": True, "User": "", "WorkingDir": "/"},
            f"/v1.41/containers/{unique_name}/update": {"Memory": 0, "CpuShares": 0, "PidsLimit": 0,
                                                       "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}},
            "/v1.41/volumes/create": {"Name": unique_name, "Labels": {"a": "b"}, "DriverOpts": {}, "Driver": "local"},
            "/v1.41/networks/create": {"Name": unique_name, "Driver": "bridge", "Labels": {}, "Options": {},
                                       "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.9.0.0/24"}]},
                                       "Internal": False},
            f"/v1.41/commit?container={unique_name}": {"Cmd": ["true"], "Env": ["A=1"], "Labels": {"a": "b"},
                                                       "User": ""},
        }
        n = 0
        for url, valid in cases.items():
            for path, body in _variants(valid):
                st, resp = post(berthd, url, json.dumps(body).encode())
                leaf = re.sub(r"\.\d+$", "", path).rsplit(".", 1)[-1]
                _assert_400(st, resp, f"{url} {path}={json.dumps(body)}", leaf)
                n += 1
            st, resp = post(berthd, url, b"[1, 2]")
            _assert_400(st, resp, f"{url} with an array")
        assert n > 50
    finally:
        berthd.docker("rm", "-f", unique_name, check=False)


def test_deep_nesting_and_non_json_numbers(berthd):
    deep = b"[" * 10000 + b"]" * 10000
    for raw in (deep, b'{"Image": "busybox", "Labels": ' + deep + b"}", b'{"Image": "busybox", "X": '
                + b"[" * 100 + b"]" * 100 + b"}", b'{"Image": "busybox", "HostConfig": {"CpuShares": NaN}}'):
        st, resp = post(berthd, "/v1.41/containers/create", raw)
        _assert_400(st, resp, raw[:60].decode())
    assert "Traceback" not in berthd.read_log()


def test_json_body_over_the_limit_is_413(berthd):
    out = raw_exchange(berthd, b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: "
                               b"application/json\r\nContent-Length: %d\r\n\r\n{" % (33 << 20))
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), out
    assert "too large" in json.loads(body)["message"]


def test_malformed_http_is_400_and_closes(berthd):
    before = berthd.read_log().count("Traceback")
    bad_chunked = (b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    for data in (bad_chunked, b"GARBAGE\r\n\r\n", b"GET /_ping HTTP/1.1\r\nBad Header\r\n\r\n"):
        out = raw_exchange(berthd, data)  # returns once the daemon closed the connection
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), out
        assert json.loads(body)["message"], out
    assert berthd.read_log().count("Traceback") == before


def test_api_versions_outside_the_range(berthd):
    st, resp = post(berthd, "/v1.99/containers/json", b"", method="GET")
    assert (st, resp["message"]) == (400, "client version 1.99 is too new. Maximum supported API version is 1.43")
    st, resp = post(berthd, "/v1.10/containers/json", b"", method="GET")
    assert (st, resp["message"]) == (400, "client version 1.10 is too old. Minimum supported API version is 1.24, "
                                          "please upgrade your client to a newer version")
    for v in ("1.24", "1.41"):
        st, _ = post(berthd, f"/v{v}/containers/json", b"", method="GET")
        assert st == 200


def test_every_json_body_is_read_with_a_schema():
    """Every `req.json(` in the routers names its body's schema (berth.daemon.bodies)."""
    calls = []
    for fn in os.listdir(ROUTERS):
        if fn.endswith(".py"):
            with open(os.path.join(ROUTERS, fn)) as f:
                calls += [(fn, m.group(0)) for m in re.finditer(r"req\.json\([^)]*\)", f.read())]
    assert calls
    bare = [c for c in calls if "bodies." not in c[1]]
    assert not bare, bare
