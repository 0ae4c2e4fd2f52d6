"""The berth CLI end to end against a real berthd (see conftest.py): run, exit codes, stdin, tty,
ps/images tables, inspect, logs, exec, cp, volumes, info, audit, lifecycle, images."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import tarfile
import termios
import time

import pytest

from berth.testing.waiting import wait_for

from .conftest import BERTH

pytestmark = pytest.mark.timeout(120)




@pytest.fixture
def running(b, unique_name):
    """A detached `sleep` container; removed afterwards."""
    r = b("run", "-d", "--name", unique_name, "busybox", "sleep", "300")
    assert r.returncode == 0, r.err
    cid = r.out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), r.out
    yield unique_name
    b("rm", "-f", unique_name)


def test_bootstrap_made_busybox(b, busybox):
    assert busybox.startswith("sha256:")
    out = b.ok("images")
    head, *rows = out.splitlines()
    assert re.match(r"REPOSITORY\s{3,}TAG\s{3,}IMAGE ID\s{3,}CREATED\s{3,}SIZE$", head)
    row = next(r for r in rows if r.startswith("busybox "))
    assert row.split()[1] == "latest" and row.split()[2] == busybox[7:19]
    assert re.search(r"\d+(\.\d+)?[kM]B$", row)
    assert b.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "busybox") == f"busybox:latest {busybox[7:19]}\n"
    assert busybox[7:19] in b.ok("images", "-q").split()
    assert b.ok("image", "inspect", "-f", "{{json .Config.Cmd}}", "busybox") == '["sh"]\n'


def test_bootstrap_named_is_reproducible(b, unique_name):
    img = b.ok("image", "bootstrap", f"{unique_name}:bb").strip()
    try:
        layers = "{{json .RootFS.Layers}}"
        assert b.ok("image", "inspect", "-f", layers, img) == b.ok("image", "inspect", "-f", layers, "busybox")
        assert b.ok("run", "--rm", f"{unique_name}:bb", "echo", "ok") == "ok\n"
    finally:
        b("rmi", f"{unique_name}:bb")


def test_run_rm_echo(b, unique_name):
    r = b("run", "--rm", "--name", unique_name, "busybox", "echo", "hello")
    assert (r.returncode, r.out, r.err) == (0, "hello\n", "")
    assert b.ok("ps", "-a", "-q", "--filter", f"name={unique_name}") == ""


@pytest.mark.parametrize(
    ("args", "code", "err"),
    [
        (["sh", "-c", "exit 3"], 3, ""),
        (["nonexistent-cmd"], 127, "Error response from daemon"),
        (["/etc"], 126, "Error response from daemon"),
    ],
)
def test_exit_codes(b, unique_name, args, code, err):
    r = b("run", "--rm", "--name", unique_name, "busybox", *args)
    assert r.returncode == code, r.err
    assert err in r.err
    assert b.ok("ps", "-aq", "--filter", f"name={unique_name}") == ""  # --rm: gone even when start failed


def test_flag_and_daemon_errors_are_125(b, unique_name):
    assert b("run", "--rm", "--bogus", "busybox", "true").returncode == 125
    r = b("run", "--rm", f"no-such-image-{unique_name}", "true")
    assert r.returncode == 125
    assert f"Unable to find image 'no-such-image-{unique_name}:latest' locally" in r.err
    assert "Error response from daemon" in r.err


def test_stdin_pipe(b):
    r = b("run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done", input="line1\nline2\n")
    assert (r.returncode, r.out) == (0, "line1\nline2\ndone\n")


def test_stdin_and_output_both_large(b):
    """The container writes 5 MB before it reads its 5 MB of stdin: neither direction may block the other."""
    data = os.urandom(5 << 20)
    r = b("run", "--rm", "-i", "busybox", "sh", "-c",
          "dd if=/dev/zero bs=65536 count=80 2>/dev/null; md5sum | cut -d' ' -f1", input=data, timeout=60)
    assert r.returncode == 0, r.err
    assert r.stdout[:80 * 65536] == bytes(80 * 65536)
    assert r.stdout[80 * 65536:].decode().strip() == __import__("hashlib").md5(data).hexdigest()


def test_exec_stdin_and_output_both_large(b, running):
    """As test_stdin_and_output_both_large, through an exec's pipes."""
    data = os.urandom(5 << 20)
    r = b("exec", "-i", running, "sh", "-c",
          "dd if=/dev/zero bs=65536 count=80 2>/dev/null; md5sum | cut -d' ' -f1", input=data, timeout=60)
    assert r.returncode == 0, r.err
    assert r.stdout[:80 * 65536] == bytes(80 * 65536)
    assert r.stdout[80 * 65536:].decode().strip() == __import__("hashlib").md5(data).hexdigest()


def test_detach_keys_are_data_without_tty(b):
    """dockerd applies detach keys only with -t: ctrl-p ctrl-q in piped stdin are just bytes."""
    data = b"a\x10\x11b\n" + bytes(range(256)) + b"\x10\x11"
    r = b("run", "--rm", "-i", "busybox", "cat", input=data)
    assert r.returncode == 0, r.err
    assert r.stdout == data


def test_rm_f_with_unread_stdin_attached(b, unique_name):
    """A container that never reads its stdin while the client pushes lots of it: `rm -f` still
    removes it and the attached `run -i` ends."""
    p = subprocess.Popen([BERTH, "run", "-i", "--name", unique_name, "busybox", "sleep", "300"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=b.env)
    import threading

    def feed():
        try:
            for _ in range(160):
                p.stdin.write(bytes(65536))  # type: ignore[union-attr]
            p.stdin.close()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError, ValueError):
            pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        wait_for(lambda: b.ok("ps", "-q", "--filter", f"name={unique_name}").strip(), what="container running")
        r = b("rm", "-f", unique_name, timeout=60)
        assert r.returncode == 0, r.err
        assert p.wait(timeout=60) != 0
        assert b.ok("ps", "-aq", "--filter", f"name={unique_name}") == ""
    finally:
        p.kill()
        p.wait()
        b("rm", "-f", unique_name)


def test_stdout_stderr_split(b):
    r = b("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (r.out, r.err) == ("out\n", "err\n")


def run_in_pty(env: dict, argv: list[str], reply: tuple[bytes, object] | None = None, rows: int = 33,
               cols: int = 111) -> tuple[int, bytes]:
    """Run berth with a pty as its terminal; when `reply[0]` shows up in the output, type `reply[1]`."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen([BERTH, *argv], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    out = b""
    sent = reply is None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not sent and reply[0] in out:  # type: ignore[index]
                action = reply[1]  # type: ignore[index]
                if callable(action):
                    action(p, master)
                else:
                    os.write(master, action)
                sent = True
            r, _, _ = select.select([master], [], [], 0.5)
            if master in r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
            elif p.poll() is not None:
                break
        return p.wait(10), out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_tty_through_a_pty(b):
    rc, out = run_in_pty(b.env, ["run", "--rm", "-it", "busybox", "sh", "-c", "tty; stty size; read x; echo got-$x"],
                         reply=(b"33 111", b"pty-ok\r"))
    assert rc == 0, out
    assert b"/dev/pts/" in out
    assert b"33 111\r\n" in out
    assert b"got-pty-ok" in out


def test_exec_tty_through_a_pty(b, running):
    # the CLI resizes the exec's pty right after the start (API 1.41 has no size in the exec body),
    # so the size is asked for only once input arrived
    rc, out = run_in_pty(b.env, ["exec", "-it", running, "sh", "-c", "echo go; read x; stty size; exit $x"],
                         reply=(b"go", b"9\r"), rows=40, cols=120)
    assert rc == 9, out
    assert b"40 120\r\n" in out


def test_sigwinch_resizes_and_is_proxied(b):
    def resize(p, master):
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 150, 0, 0))
        os.kill(p.pid, signal.SIGWINCH)

    # the CLI resizes before it forwards WINCH, so the trap sees the new size
    rc, out = run_in_pty(b.env, ["run", "--rm", "-it", "busybox", "sh", "-c",
                                 "trap 'stty size; exit 5' WINCH; echo go; while :; do sleep 0.1; done"],
                         reply=(b"go", resize))
    assert rc == 5, out
    assert b"50 150\r\n" in out


def test_signals_are_proxied(b):
    p = subprocess.Popen([BERTH, "run", "--rm", "busybox", "sh", "-c",
                          "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.1; done"],
                         env=b.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 42, err
        assert out == b"got-term\n"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_detach_keys_leave_the_container_running(b, unique_name):
    rc, out = run_in_pty(b.env, ["run", "-it", "--name", unique_name, "busybox", "sh", "-c", "echo ready; sleep 60"],
                         reply=(b"ready", b"\x10\x11"))
    try:
        assert rc == 0, out
        assert b.ok("inspect", "-f", "{{.State.Running}}", unique_name) == "true\n"
    finally:
        b("rm", "-f", unique_name)


def test_start_attach_update_restart(b, unique_name):
    b.ok("create", "--name", unique_name, "busybox", "sh", "-c", "echo started; exit 4")
    try:
        r = b("start", "-a", unique_name)
        assert (r.returncode, r.out) == (4, "started\n")
    finally:
        b("rm", "-f", unique_name)
    b.ok("run", "-d", "--name", unique_name, "busybox", "sh", "-c", "sleep 1; echo late; exit 2")
    try:
        r = b("attach", unique_name)
        assert (r.returncode, r.out) == (2, "late\n")
    finally:
        b("rm", "-f", unique_name)
    b.ok("run", "-d", "--name", unique_name, "busybox", "sleep", "100")
    try:
        assert b.ok("update", "--memory", "32m", "--cpus", "0.5", unique_name) == f"{unique_name}\n"
        assert b.ok("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", unique_name) == "33554432 500000000\n"
        assert b.ok("restart", "-t", "1", unique_name) == f"{unique_name}\n"
        assert b.ok("inspect", "-f", "{{.State.Running}} {{.RestartCount}}", unique_name).split()[0] == "true"
        assert b.ok("stop", "-t", "1", unique_name) == f"{unique_name}\n"
        assert b.ok("wait", unique_name) == "137\n"
    finally:
        b("rm", "-f", unique_name)


def test_ps_tables_and_formats(b, running):
    out = b.ok("ps")
    head = out.splitlines()[0]
    assert re.match(r"CONTAINER ID\s{3}IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$", head)
    line = next(ln for ln in out.splitlines() if ln.endswith(running))
    assert '"sleep 300"' in line and "busybox" in line and re.search(r"Up (Less than a second|\d+ seconds?|About a minute)", line)
    assert b.ok("ps", "--filter", f"name={running}", "--format", "{{.Names}} {{.State}} {{.Image}}") == f"{running} running busybox\n"
    full = b.ok("ps", "-q", "--no-trunc", "--filter", f"name={running}").strip()
    assert len(full) == 64 and b.ok("ps", "-q", "--filter", f"name={running}").strip() == full[:12]
    j = json.loads(b.ok("ps", "--filter", f"name={running}", "--format", "json"))
    assert j["Names"] == running and j["Command"] == '"sleep 300"' and j["State"] == "running"
    t = b.ok("ps", "--filter", f"name={running}", "--format", "table {{.ID}}\\t{{.Names}}")
    assert t.splitlines() == ["CONTAINER ID   NAMES", f"{full[:12]}   {running}"]


def test_inspect(b, running):
    assert b.ok("inspect", "-f", "{{.State.Status}} {{.Name}} {{.Config.Image}}", running) == f"running /{running} busybox\n"
    data = json.loads(b.ok("inspect", running))
    assert isinstance(data, list) and data[0]["Name"] == f"/{running}" and data[0]["State"]["Running"] is True
    assert b.ok("container", "inspect", "--format", "{{json .Config.Cmd}}", running) == '["sleep","300"]\n'
    r = b("inspect", "-f", "{{.State", running)
    assert r.returncode == 64 and r.err.startswith("template parsing error:") and r.out == ""
    r = b("ps", "--format", "{{.NoSuchField}}")
    assert r.returncode == 1 and "NoSuchField" in r.err
    r = b("inspect", f"{running}-nope")
    assert r.returncode == 1 and r.err.strip() == f"Error: No such object: {running}-nope" and r.out == "[]\n"


def test_logs(b, unique_name):
    # the pause orders the log: stdout and stderr are separate pipes read independently
    b.ok("run", "--name", unique_name, "busybox", "sh", "-c", "echo one; echo two >&2; sleep 0.3; echo three")
    try:
        r = b("logs", unique_name)
        assert (r.returncode, r.out, r.err) == (0, "one\nthree\n", "two\n")
        assert b.ok("logs", "--tail", "1", unique_name) == "three\n"
        ts = b.ok("logs", "-t", unique_name).splitlines()
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z one$", ts[0])
        assert b.ok("logs", "-f", unique_name) == "one\nthree\n"  # stopped: -f returns at once
        assert b.ok("logs", "--since", "10m", unique_name) == "one\nthree\n"
        assert b.ok("logs", "--since", "2099-01-01T00:00:00Z", unique_name) == ""
        assert b.ok("logs", "--until", "2000-01-01", unique_name) == ""
    finally:
        b("rm", "-f", unique_name)


def test_exec(b, running):
    assert b.ok("exec", running, "echo", "hi") == "hi\n"
    assert b("exec", running, "sh", "-c", "exit 5").returncode == 5
    assert b.ok("exec", "-i", running, "cat", input="via stdin\n") == "via stdin\n"
    assert b.ok("exec", "-e", "A=1", "-w", "/tmp", running, "sh", "-c", "echo $A $(pwd)") == "1 /tmp\n"
    assert b.ok("exec", "-u", "65534", running, "id", "-u") == "65534\n"
    assert b.ok("exec", "-d", running, "touch", "/tmp/detached") == ""
    wait_for(lambda: b("exec", running, "test", "-e", "/tmp/detached").returncode == 0, what="exec -d")
    assert b("exec", running, "nonexistent-cmd").returncode in (126, 127)


def test_cp_round_trip(b, running, tmp_path):
    src = tmp_path / "up.txt"
    src.write_bytes(b"payload \x00\xff\n" * 1000)
    os.chmod(src, 0o640)
    b.ok("cp", str(src), f"{running}:/tmp/")
    assert b.ok("exec", running, "md5sum", "/tmp/up.txt").split()[0] == __import__("hashlib").md5(src.read_bytes()).hexdigest()
    b.ok("cp", f"{running}:/tmp/up.txt", str(tmp_path / "down.txt"))
    assert (tmp_path / "down.txt").read_bytes() == src.read_bytes()
    assert os.stat(tmp_path / "down.txt").st_mode & 0o777 == 0o640
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_text("deep\n")
    b.ok("cp", str(d), f"{running}:/tmp/tree2")
    assert b.ok("exec", running, "cat", "/tmp/tree2/sub/f") == "deep\n"
    out = tmp_path / "back"
    out.mkdir()
    b.ok("cp", f"{running}:/tmp/tree2", str(out))
    assert (out / "tree2" / "sub" / "f").read_text() == "deep\n"
    r = b("cp", f"{running}:/nonexistent", str(tmp_path / "x"))
    assert r.returncode == 1 and "Error response from daemon" in r.err


def test_volume_commands(b, unique_name):
    assert b.ok("volume", "create", unique_name) == f"{unique_name}\n"
    try:
        assert unique_name in b.ok("volume", "ls", "-q").split()
        ls = b.ok("volume", "ls", "--filter", f"name={unique_name}")
        assert ls.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
        assert ls.splitlines()[1].split() == ["local", unique_name]
        assert b.ok("volume", "inspect", "-f", "{{.Name}} {{.Driver}}", unique_name) == f"{unique_name} local\n"
        b.ok("run", "--rm", "-v", f"{unique_name}:/data", "busybox", "sh", "-c", "echo kept > /data/f")
        assert b.ok("run", "--rm", "--mount", f"type=volume,source={unique_name},target=/d,readonly",
                    "busybox", "cat", "/d/f") == "kept\n"
    finally:
        assert b.ok("volume", "rm", unique_name) == f"{unique_name}\n"
    assert unique_name not in b.ok("volume", "ls", "-q").split()
    r = b("volume", "inspect", unique_name)
    assert r.returncode == 1


def test_info_and_version(b):
    out = b.ok("info")
    for key in ("Containers:", "Images:", "Storage Driver:", "Cgroup Version:", "Kernel Version:"):
        assert key in out
    assert b.ok("info", "-f", "{{.OSType}}") == "linux\n"
    v = b.ok("version")
    assert "Client:" in v and "Server:" in v and "API version:       1.41" in v


def test_audit_shows_the_callers_uid_and_pid(b, unique_name):
    p = subprocess.Popen([BERTH, "create", "--name", unique_name, "busybox", "true"], env=b.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    try:
        recs = [json.loads(line) for line in b.ok("audit", "--format", "json", "--uid", str(os.getuid())).splitlines()]
        mine = [r for r in recs if r.get("pid") == p.pid and "/containers/create" in r.get("path", "")]
        assert mine, recs[-5:]
        assert mine[0]["uid"] == os.getuid() and mine[0]["status"] == 201
        table = b.ok("audit", "--since", "5m")
        assert table.splitlines()[0].split()[:4] == ["TIME", "UID", "PID", "METHOD"]
        assert str(p.pid) in table
    finally:
        b("rm", "-f", unique_name)


def test_lifecycle(b, unique_name):
    new = unique_name + "-b"
    b.ok("create", "--name", unique_name, "busybox", "sleep", "300")
    try:
        assert b.ok("ps", "-a", "--filter", f"name={unique_name}", "--format", "{{.State}}") == "created\n"
        assert b.ok("start", unique_name) == f"{unique_name}\n"
        assert b.ok("pause", unique_name) == f"{unique_name}\n"
        assert b.ok("inspect", "-f", "{{.State.Status}}", unique_name) == "paused\n"
        assert b.ok("unpause", unique_name) == f"{unique_name}\n"
        b.ok("rename", unique_name, new)
        assert b.ok("inspect", "-f", "{{.Name}}", new) == f"/{new}\n"
        r = b("rm", new)
        assert r.returncode == 1 and "Error response from daemon" in r.err
        assert b.ok("kill", "-s", "KILL", new) == f"{new}\n"
        assert b.ok("wait", new) == "137\n"
        assert re.match(r"Exited \(137\) ", b.ok("ps", "-a", "--filter", f"name={new}", "--format", "{{.Status}}"))
        assert b.ok("rm", new) == f"{new}\n"
    finally:
        b("rm", "-f", unique_name, new)


def test_diff_commit_export_history(b, running, unique_name, tmp_path):
    b.ok("exec", running, "sh", "-c", "echo new > /newfile")
    assert "A /newfile" in b.ok("diff", running).splitlines()
    ref = f"{unique_name}:v1"
    img = b.ok("commit", "-m", "msg", "-a", "me", "-c", "ENV X=1", running, ref).strip()
    try:
        assert img.startswith("sha256:")
        assert b.ok("image", "inspect", "-f", "{{.Comment}} {{.Author}}", ref) == "msg me\n"
        assert "X=1" in b.ok("image", "inspect", "-f", "{{join .Config.Env \",\"}}", ref)
        assert b.ok("run", "--rm", ref, "cat", "/newfile") == "new\n"
        bare = b.ok("commit", running).strip()  # no repository, no changes: an untagged image
        assert bare.startswith("sha256:") and bare != img
        b.ok("rmi", bare)
        hist = b.ok("history", ref).splitlines()
        assert hist[0].split()[:2] == ["IMAGE", "CREATED"] and len(hist) >= 3
        out = tmp_path / "fs.tar"
        b.ok("export", "-o", str(out), running)
        with tarfile.open(out) as tf:
            names = {n.lstrip("./") for n in tf.getnames()}
        assert "newfile" in names and "bin/busybox" in names
    finally:
        b("rmi", "-f", ref)


def test_tag_save_load_rmi(b, unique_name, tmp_path):
    ref = f"{unique_name}:t1"
    b.ok("tag", "busybox", ref)
    assert b.ok("images", "--format", "{{.Repository}}:{{.Tag}}", unique_name) == f"{ref}\n"
    archive = tmp_path / "img.tar"
    b.ok("save", "-o", str(archive), ref)
    assert tarfile.is_tarfile(archive)
    assert b.ok("rmi", ref) == f"Untagged: {ref}\n"
    r = b("load", "-i", str(archive))
    assert r.returncode == 0 and ref in r.out
    assert b.ok("images", "-q", ref)
    b.ok("rmi", ref)
    r = b("rmi", ref)
    assert r.returncode == 1 and "Error response from daemon" in r.err


def test_import_and_system_df(b, unique_name, tmp_path):
    t = tmp_path / "r.tar"
    src = tmp_path / "rootfs"
    src.mkdir()
    (src / "hello").write_text("hi\n")
    with tarfile.open(t, "w") as tf:
        tf.add(src / "hello", arcname="hello")
    ref = f"{unique_name}:imp"
    img = b.ok("import", "-c", 'CMD ["/hello"]', "-m", "imported", str(t), ref).strip()
    try:
        assert img.startswith("sha256:")
        assert b.ok("image", "inspect", "-f", "{{json .Config.Cmd}}", ref) == '["/hello"]\n'
        df = b.ok("system", "df").splitlines()
        assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        assert [ln.split()[0] for ln in df[1:]] == ["Images", "Containers", "Local", "Build"]
        assert "Images space usage:" in b.ok("system", "df", "-v")
    finally:
        b("rmi", "-f", ref)


def test_events_since_until(b, unique_name):
    start = int(time.time()) - 1
    b.ok("volume", "create", unique_name)
    b.ok("volume", "rm", unique_name)
    out = b.ok("events", "--since", str(start), "--until", str(int(time.time()) + 1), "--filter", "type=volume",
               "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}")
    assert f"volume create {unique_name}" in out.splitlines()
    assert f"volume destroy {unique_name}" in out.splitlines()


def test_top_stats_port(b, running):
    top = b.ok("top", running)
    assert top.splitlines()[0].split()[0] in ("UID", "PID") and "sleep 300" in top
    st = b.ok("stats", "--no-stream", running)
    assert st.splitlines()[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and running in st
    r = b("port", running, "80")
    assert r.returncode == 1 and "No public port '80' published" in r.err


def test_publish_is_sent_and_refused_clearly(b):
    r = b("run", "--rm", "-p", "8080:80", "busybox", "true")
    assert r.returncode == 125
    assert "Error response from daemon" in r.err and "port" in r.err.lower()


def test_prunes(b, unique_name, tmp_path):
    b.ok("volume", "create", unique_name)
    out = b.ok("volume", "prune", "-f", "-a")
    assert "Deleted Volumes:" in out and unique_name in out.split() and "Total reclaimed space:" in out
    assert unique_name not in b.ok("volume", "ls", "-q").split()
    t = tmp_path / "r.tar"
    with tarfile.open(t, "w") as tf:
        info = tarfile.TarInfo(unique_name)
        tf.addfile(info)
    img = b.ok("import", str(t)).strip()  # untagged: dangling
    out = b.ok("image", "prune", "-f")
    assert f"deleted: {img}" in out.splitlines() and "Total reclaimed space:" in out
    r = b("image", "inspect", img)
    assert r.returncode == 1 and f"No such image: {img}" in r.err


def test_container_prune(b, unique_name):
    b.ok("create", "--name", unique_name, "busybox", "true")
    out = b.ok("container", "prune", "-f")
    assert "Deleted Containers:" in out and "Total reclaimed space:" in out
    assert b.ok("ps", "-aq", "--filter", f"name={unique_name}") == ""


HOST_NETNS = os.readlink("/proc/self/ns/net")


@pytest.mark.parametrize(
    ("flags", "cmd", "expect"),
    [
        (["--network", "none"], "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '", "^lo$"),
        (["--network", "host"], "readlink /proc/self/ns/net", f"^{re.escape(HOST_NETNS)}$"),
        (["--read-only"], "touch /x 2>&1; echo rc=$?", "Read-only file system\nrc=1"),
        (["--read-only", "--tmpfs", "/run:size=1m"], "touch /run/x && df -k /run | tail -1", r"^tmpfs\s+1024\s"),
        (["--cap-drop", "ALL"], "grep CapEff /proc/self/status", r"CapEff:\s+0000000000000000"),
        (["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"], "grep CapEff /proc/self/status", r"CapEff:\s+0000000000001000"),
        (["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn", "^100\n200$"),
        (["-m", "64m", "--memory-reservation", "32m"], "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
         "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
         "^67108864\n33554432$|^67108864$"),
        (["--pids-limit", "20"], "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max", "^20$"),
        (["--cpus", "0.5"], "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null"
         " || cat /sys/fs/cgroup/cpu.max", r"^50000\n100000$|^50000 100000$"),
        (["--init"], "ps -o pid,comm | sed -n 2p", r"^\s*1\s+\S*init"),
        (["--hostname", "hh", "-w", "/tmp", "-u", "1:1"], "hostname; pwd; id -u; id -g", "^hh\n/tmp\n1\n1$"),
        (["-e", "A=1", "--env-file", "/dev/null", "-l", "x=y"], "echo $A", "^1$"),
        (["--entrypoint", "/bin/echo"], "as-args", "^sh -c as-args$"),
        (["--security-opt", "no-new-privileges"], "grep NoNewPrivs /proc/self/status", r"NoNewPrivs:\s+1"),
        (["--privileged"], "grep CapEff /proc/self/status", r"CapEff:\s+0*[1-9a-f]"),
    ],
)
def test_run_flags(b, flags, cmd, expect):
    r = b("run", "--rm", *flags, "busybox", "sh", "-c", cmd)
    assert r.returncode == 0, r.err
    assert re.search(expect, r.out.strip(), re.M), r.out


def test_network_container_mode(b, running):
    theirs = b.ok("exec", running, "readlink", "/proc/self/ns/net")
    assert b.ok("run", "--rm", "--network", f"container:{running}", "busybox", "readlink", "/proc/self/ns/net") == theirs
    assert theirs.strip() != HOST_NETNS


def _root_block_device() -> tuple[str, str]:
    """(/dev path, "maj:min") of a whole disk the kernel knows, for the blkio throttle flags."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "ram", "zram", "nbd")):
            continue
        with open(f"/sys/block/{name}/dev") as f:
            return f"/dev/{name}", f.read().strip()
    pytest.skip("no block device on this host")


def test_run_more_resource_flags(b):
    out = b.ok("run", "--rm", "-m", "64m", "--memory-swap", "128m", "--cpu-shares", "512", "--cpuset-cpus", "0",
               "busybox", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes "
               "/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus")
    assert out.split() == ["134217728", "512", "0"]
    dev, majmin = _root_block_device()
    out = b.ok("run", "--rm", "--device-read-bps", f"{dev}:1mb", "--device-write-bps", f"{dev}:2mb", "busybox", "cat",
               "/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device", "/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device")
    assert out.splitlines() == [f"{majmin} 1048576", f"{majmin} 2097152"]
    out = b.ok("run", "--rm", "--device", "/dev/null:/dev/mynull:rw", "busybox", "sh", "-c",
               "echo x > /dev/mynull && ls -l /dev/mynull")
    assert out.startswith("c") and "1,   3" in out


def test_bind_mounts(b, tmp_path):
    (tmp_path / "f").write_text("hostfile\n")
    out = b.ok("run", "--rm", "-v", f"{tmp_path}:/b:ro", "busybox", "sh", "-c", "cat /b/f; touch /b/x 2>&1; echo rc=$?")
    assert out == "hostfile\ntouch: /b/x: Read-only file system\nrc=1\n"
    b.ok("run", "--rm", "--mount", f"type=bind,source={tmp_path},target=/b,bind-propagation=rprivate", "busybox",
         "sh", "-c", "echo written > /b/g")
    assert (tmp_path / "g").read_text() == "written\n"


def test_healthcheck_and_restart_policy(b, unique_name):
    b.ok("run", "-d", "--name", unique_name, "--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "60")
    try:
        wait_for(lambda: b.ok("inspect", "-f", "{{.State.Health.Status}}", unique_name) == "healthy\n", what="healthy")
        assert b.ok("ps", "--filter", f"name={unique_name}", "--format", "{{.Status}}").endswith("(healthy)\n")
        assert b.ok("inspect", "-f", "{{json .Config.Healthcheck}}", unique_name) == \
            '{"Test":["CMD-SHELL","true"],"Interval":1000000000}\n'  # Go struct order
    finally:
        b("rm", "-f", unique_name)
    b.ok("run", "-d", "--name", unique_name, "--no-healthcheck", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
    try:
        wait_for(lambda: b.ok("inspect", "-f", "{{.RestartCount}} {{.State.Running}}", unique_name) == "2 false\n",
                 what="two restarts")
        assert b.ok("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}} {{.Config.Healthcheck.Test}}", unique_name) == \
            "on-failure [NONE]\n"
    finally:
        b("rm", "-f", unique_name)


def test_streams_through_stdin_and_stdout(b, running, unique_name, tmp_path):
    r = b("cp", f"{running}:/etc/passwd", "-")
    assert r.returncode == 0
    with tarfile.open(fileobj=__import__("io").BytesIO(r.stdout)) as tf:
        assert tf.getnames() == ["passwd"] and b"root:x:0:0" in tf.extractfile("passwd").read()
    buf = __import__("io").BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("from-stdin")
        info.size = 3
        tf.addfile(info, __import__("io").BytesIO(b"hi\n"))
    assert b("cp", "-", f"{running}:/tmp", input=buf.getvalue()).returncode == 0
    assert b.ok("exec", running, "cat", "/tmp/from-stdin") == "hi\n"
    r = b("export", running)
    assert r.returncode == 0 and len(r.stdout) > 1 << 20
    ref = f"{unique_name}:piped"
    img = b("import", "-", ref, input=buf.getvalue())
    assert img.returncode == 0 and img.out.startswith("sha256:"), img.err
    try:
        saved = b("save", ref)
        assert saved.returncode == 0 and tarfile.is_tarfile(__import__("io").BytesIO(saved.stdout))
        b.ok("rmi", ref)
        r = b("load", input=saved.stdout)
        assert r.returncode == 0 and ref in r.out, r.err
    finally:
        b("rmi", "-f", ref)


def test_live_events_and_logs_follow(b, unique_name):
    # --since replays what happened before the subscription reached the daemon, then it streams
    ev = subprocess.Popen([BERTH, "events", "--since", str(int(time.time()) - 1), "--filter", "type=container",
                           "--filter", f"container={unique_name}", "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
                          env=b.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        b.ok("run", "-d", "--name", unique_name, "busybox", "sh", "-c",
             "for i in 1 2 3; do echo tick $i; sleep 0.2; done")
        follow = b("logs", "-f", unique_name, timeout=30)  # returns when the container stops
        assert follow.out == "tick 1\ntick 2\ntick 3\n"
        b.ok("rm", unique_name)
        seen = []
        while "destroy" not in " ".join(seen):
            line = ev.stdout.readline().decode()
            assert line, ev.stderr.read()
            seen.append(line.strip())
        actions = [s.split()[0] for s in seen]
        for a in ("create", "start", "die", "destroy"):
            assert a in actions, seen
        assert all(s.endswith(f" {unique_name}") for s in seen)
    finally:
        ev.kill()
        ev.wait()
        b("rm", "-f", unique_name)


def test_berth_daemon_starts_berthd(tmp_path):
    sock = tmp_path / "d.sock"
    env = {**os.environ, "BERTH_HOST": f"unix://{sock}"}
    d = subprocess.Popen([BERTH, "daemon", "-H", f"unix://{sock}", "--root", str(tmp_path / "root"),
                          "--exec-root", str(tmp_path / "exec")], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out = wait_for(lambda: subprocess.run([BERTH, "info", "-f", "{{.DockerRootDir}}"], env=env,
                                              capture_output=True).stdout, what="berth daemon to answer")
        assert out.decode().strip() == str(tmp_path / "root")
    finally:
        d.send_signal(signal.SIGTERM)
        assert d.wait(20) == 0, d.stderr.read()
