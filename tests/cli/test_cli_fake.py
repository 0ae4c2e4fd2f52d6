"""The berth CLI process against a scripted fake daemon: request order for run (attach, wait before
start), stdin half-close, exit codes and error messages, image-not-found flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from berth.client.stream import frame

from .fakedaemon import FakeDaemon

BERTH = os.path.join(os.path.dirname(sys.executable), "berth")
CID = "c0ffee" * 10 + "abcd"


def berth(sock: str, *args: str, input: bytes | None = None, timeout: float = 30):
    return subprocess.run([BERTH, "-H", f"unix://{sock}", *args], input=input, capture_output=True, timeout=timeout)


class RunDaemon:
    """Scripted daemon for create/attach/wait/start: the 'process' echoes its Cmd and stdin."""

    def __init__(self, path: str) -> None:
        self.started = threading.Event()
        self.exited = threading.Event()
        self.body: dict = {}
        self.exit_code = 0
        self.d = FakeDaemon(path, self.handle)

    def handle(self, req, c) -> None:
        p = req.path
        if p == "/_ping":
            c.respond(200, b"", {"Api-Version": "1.41", "Ostype": "linux"})
        elif p == "/v1.41/containers/create":
            self.body = json.loads(req.body)
            if self.body["Image"] == "missing":
                c.json(404, {"message": "No such image: missing:latest"})
            elif self.body["Image"] == "conflict":
                c.json(409, {"message": 'Conflict. The container name "/x" is already in use by container "abc".'})
            else:
                c.json(201, {"Id": CID, "Warnings": ["careful"] if self.body["Labels"].get("warn") else []})
        elif p == "/v1.41/images/create":
            c.json(404, {"message": "pull access denied for missing, repository does not exist"})
        elif p.endswith("/attach"):
            c.upgrade()
            self.started.wait(10)
            stdin = c.recv_all() if req.query.get("stdin") == ["1"] else b""
            cmd = " ".join(self.body.get("Cmd") or [])
            c.send(frame(1, cmd.encode() + b"\n") + frame(2, b"to-stderr\n") + (frame(1, stdin) if stdin else b""))
            self.exited.set()
        elif p.endswith("/wait"):
            c.start_chunked(200, {"Content-Type": "application/json"})
            self.exited.wait(10)
            c.chunk(json.dumps({"Error": None, "StatusCode": self.exit_code}).encode() + b"\n")
            c.chunk(b"")
        elif p.endswith("/start"):
            cmd = self.body.get("Cmd") or [""]
            if cmd[0] == "nonexistent":
                c.json(400, {"message": 'failed to create task: exec: "nonexistent": executable file not found in $PATH'})
            elif cmd[0] == "/etc":
                c.json(400, {"message": 'exec: "/etc": permission denied'})
            else:
                self.exit_code = int(cmd[1]) if cmd[0] == "exit" else 0
                c.respond(204)
                self.started.set()
        else:
            c.json(404, {"message": f"page not found: {p}"})


@pytest.fixture
def rund(tmp_path):
    d = RunDaemon(str(tmp_path / "fake.sock"))
    yield d
    d.d.close()


def test_run_request_order_and_output(rund):
    r = berth(rund.d.path, "run", "--rm", "busybox", "echo", "hi")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"echo hi\n" and r.stderr == b"to-stderr\n"
    seq = [(q.method, q.target.split("?")[0].rsplit("/", 1)[-1], q.conn_no) for q in rund.d.requests]
    assert [s[:2] for s in seq] == [("HEAD", "_ping"), ("POST", "create"), ("POST", "attach"), ("POST", "wait"), ("POST", "start")]
    wait = next(q for q in rund.d.requests if q.path.endswith("/wait"))
    attach = next(q for q in rund.d.requests if q.path.endswith("/attach"))
    start = next(q for q in rund.d.requests if q.path.endswith("/start"))
    assert wait.query == {"condition": ["removed"]}
    assert attach.query == {"stderr": ["1"], "stdout": ["1"], "stream": ["1"]}
    assert len({wait.conn_no, attach.conn_no, start.conn_no}) == 3
    assert rund.body["HostConfig"]["AutoRemove"] is True


def test_run_stdin_is_piped_then_half_closed(rund):
    r = berth(rund.d.path, "run", "-i", "busybox", "cat", input=b"piped data\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"cat\npiped data\n"
    wait = next(q for q in rund.d.requests if q.path.endswith("/wait"))
    assert wait.query == {"condition": ["next-exit"]}
    assert rund.body["OpenStdin"] and rund.body["StdinOnce"] and rund.body["AttachStdin"]


def test_run_exit_code_is_the_containers(rund):
    r = berth(rund.d.path, "run", "busybox", "exit", "7")
    assert r.returncode == 7


@pytest.mark.parametrize(("cmd", "code"), [("nonexistent", 127), ("/etc", 126)])
def test_run_start_failure_codes(rund, cmd, code):
    r = berth(rund.d.path, "run", "busybox", cmd)
    assert r.returncode == code
    assert b"Error response from daemon:" in r.stderr


def test_run_daemon_error_is_125(rund):
    r = berth(rund.d.path, "run", "--name", "x", "conflict")
    assert r.returncode == 125
    assert r.stderr.startswith(b"berth: Error response from daemon: Conflict.")


def test_run_image_not_found(rund):
    r = berth(rund.d.path, "run", "missing")
    assert r.returncode == 125
    assert b"Unable to find image 'missing:latest' locally" in r.stderr
    assert b"pull access denied" in r.stderr
    assert [q.path for q in rund.d.requests][-1] == "/v1.41/images/create"


def test_run_detached_prints_id_and_warnings(rund):
    r = berth(rund.d.path, "run", "-d", "-l", "warn=1", "busybox", "sleep", "1")
    assert r.returncode == 0
    assert r.stdout.decode().strip() == CID
    assert b"WARNING: careful" in r.stderr


def test_flag_error_is_125(rund):
    r = berth(rund.d.path, "run", "--bogus-flag", "busybox")
    assert r.returncode == 125
    assert b"unrecognized arguments" in r.stderr or b"--bogus-flag" in r.stderr


def test_daemon_absent(tmp_path):
    r = berth(str(tmp_path / "none.sock"), "ps")
    assert r.returncode == 1
    assert r.stderr.decode() == f"Cannot connect to the berth daemon at unix://{tmp_path}/none.sock. Is berthd running?\n"
    r = berth(str(tmp_path / "none.sock"), "run", "busybox")
    assert r.returncode == 125


def test_unknown_command():
    r = subprocess.run([BERTH, "frobnicate"], capture_output=True)
    assert r.returncode == 1 and b"'frobnicate' is not a berth command" in r.stderr


def test_help_is_fast_path():
    # `--help` must not import the client, rich or any command module
    code = ("import sys; sys.argv=['berth','--help']\nfrom berth.cli import main\ntry: main.main()\n"
            "except SystemExit: pass\nbad=[m for m in sys.modules if m.startswith(('rich','berth.client','berth.cli.run'))]\n"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == 0, r.stderr


def test_daemon_subcommand_hands_args_to_berthd():
    r = subprocess.run([BERTH, "daemon", "--help"], capture_output=True)
    assert r.returncode == 0 and r.stdout.startswith(b"usage: berthd")


def test_detach_keys():
    from berth.cli.streams import _DetachScanner, detach_sequence

    assert detach_sequence("") == b"\x10\x11"
    assert detach_sequence("ctrl-a,x,ctrl-@") == b"\x01x\x00"
    with pytest.raises(ValueError):
        detach_sequence("ctrl-ab")
    s = _DetachScanner(b"\x10\x11")
    assert s.feed(b"ab\x10") == (b"ab", False)
    assert s.feed(b"c") == (b"\x10c", False)
    assert s.feed(b"z\x10") == (b"z", False)
    assert s.feed(b"\x11rest") == (b"", True)


class ArchiveDaemon:
    """Serves the archive endpoints from a host directory standing in for a container's root."""

    def __init__(self, path: str, root: str) -> None:
        self.root = root
        self.d = FakeDaemon(path, self.handle)

    def _stat(self, p: str) -> str:
        import base64

        st = os.lstat(p)
        mode = (st.st_mode & 0o777) | ((1 << 31) if os.path.isdir(p) else 0)
        info = {"name": os.path.basename(p.rstrip("/")) or "/", "size": st.st_size, "mode": mode,
                "mtime": "2026-01-01T00:00:00Z", "linkTarget": ""}
        return base64.b64encode(json.dumps(info).encode()).decode()

    def handle(self, req, c) -> None:
        import io
        import tarfile

        if req.path == "/_ping":
            c.respond(200, b"", {"Api-Version": "1.41"})
            return
        path = req.query.get("path", ["/"])[0]
        host = os.path.join(self.root, path.lstrip("/"))
        if req.method == "HEAD" and not os.path.lexists(host):
            c.respond(404, b"", {"Content-Type": "application/json", "Content-Length": "71"})  # no body on HEAD
        elif req.method == "GET" and not os.path.lexists(host):
            c.json(404, {"message": f"Could not find the file {path} in container x"})
        elif req.method == "HEAD":
            c.respond(200, b"", {"X-Docker-Container-Path-Stat": self._stat(host)})
        elif req.method == "GET":
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                tf.add(host, arcname=os.path.basename(host.rstrip("/")))
            c.start_chunked(200, {"Content-Type": "application/x-tar", "X-Docker-Container-Path-Stat": self._stat(host)})
            c.chunk(buf.getvalue())
            c.chunk(b"")
        elif req.method == "PUT":
            assert req.chunked and req.headers["content-type"] == "text/plain"
            with tarfile.open(fileobj=io.BytesIO(req.body)) as tf:
                tf.extractall(host)
            c.respond(200)


def test_cp_both_ways_over_archive_endpoints(tmp_path):
    root = tmp_path / "ctr"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("box\n")
    d = ArchiveDaemon(str(tmp_path / "a.sock"), str(root))
    try:
        up = tmp_path / "up.txt"
        up.write_bytes(b"\x00data\xff" * 5000)
        r = berth(d.d.path, "cp", str(up), "x:/etc/")
        assert r.returncode == 0, (r.stderr, d.d.errors)
        assert (root / "etc" / "up.txt").read_bytes() == up.read_bytes()
        r = berth(d.d.path, "cp", str(up), "x:/etc/renamed.txt")  # a new name in an existing dir
        assert r.returncode == 0, r.stderr
        assert (root / "etc" / "renamed.txt").read_bytes() == up.read_bytes()
        tree = tmp_path / "tree"
        (tree / "sub").mkdir(parents=True)
        (tree / "sub" / "f").write_text("deep\n")
        assert berth(d.d.path, "cp", str(tree), "x:/opt").returncode == 0
        assert (root / "opt" / "sub" / "f").read_text() == "deep\n"
        r = berth(d.d.path, "cp", "x:/etc/hostname", str(tmp_path / "got"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "got").read_text() == "box\n"
        out = tmp_path / "out"
        out.mkdir()
        assert berth(d.d.path, "cp", "x:/opt", str(out)).returncode == 0
        assert (out / "opt" / "sub" / "f").read_text() == "deep\n"
        r = berth(d.d.path, "cp", "x:/nope", str(tmp_path / "n"))
        assert r.returncode == 1 and b"Could not find the file /nope" in r.stderr
        assert not os.path.exists(tmp_path / "n")
    finally:
        d.d.close()


def test_audit_table_with_interrupted_and_in_flight_records(tmp_path):
    """Records berthd died in (status null, error "interrupted: ...") or still in flight (status and
    error null) show "-" in the STATUS column, never "None"; columns stay aligned."""
    recs = [
        {"time": "2026-11-29T06:00:00.000000000Z", "timeUnix": 1.0, "uid": 0, "gid": 0, "pid": 41, "method": "POST",
         "path": "/containers/create", "query": "name=a", "object": "a", "status": 201, "error": None, "rid": "r1"},
        {"time": "2026-11-29T06:00:01.000000000Z", "timeUnix": 2.0, "uid": 0, "gid": 0, "pid": 42, "method": "POST",
         "path": "/containers/a/start", "query": "", "object": "a", "status": None,
         "error": "interrupted: berthd stopped before answering", "rid": "r2"},
        {"time": "2026-11-29T06:00:02.000000000Z", "timeUnix": 3.0, "uid": 0, "gid": 0, "pid": 43, "method": "DELETE",
         "path": "/containers/a", "query": "force=1", "object": "a", "status": None, "error": None, "rid": "r3"},
    ]

    def handle(req, c):
        if req.path == "/_ping":
            c.respond(200, b"", {"Api-Version": "1.41", "Ostype": "linux"})
        elif req.path.endswith("/berth/audit"):
            c.json(200, recs)
        else:
            c.json(404, {"message": f"page not found: {req.path}"})

    d = FakeDaemon(str(tmp_path / "audit.sock"), handle)
    try:
        r = berth(d.path, "audit")
        assert r.returncode == 0, r.stderr
        out = r.stdout.decode()
        assert "None" not in out
        head, *rows = out.splitlines()
        assert head.split() == ["TIME", "UID", "PID", "METHOD", "PATH", "STATUS", "ERROR"]
        col = head.index("STATUS")
        assert [row[col:].split()[0] for row in rows] == ["201", "-", "-"]
        assert rows[1][head.index("ERROR"):] == "interrupted: berthd stopped before answering"
        assert rows[2][head.index("ERROR"):].strip() == ""
        r = berth(d.path, "audit", "--format", "{{.RID}} {{.Status}}")
        assert r.stdout.decode().splitlines() == ["r1 201", "r2 -", "r3 -"]
        r = berth(d.path, "audit", "--format", "json")
        assert [json.loads(line)["status"] for line in r.stdout.decode().splitlines()] == [201, None, None]
    finally:
        d.close()
