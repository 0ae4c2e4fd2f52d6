"""exec (flags and --process), terminals through --console-socket (the pty master arrives by SCM_RIGHTS)."""

import array
import json
import os
import socket
import threading
import time

import pytest

from .rt_helpers import gone


@pytest.fixture
def running(rt, bundle, cid):
    bundle.args("sleep", "60")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    return cid


class ConsoleSocket:
    """A unix socket that receives one pty master fd, and collects what the pty prints."""

    def __init__(self, path: str):
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.output = b""
        self.master = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.srv.accept()
        fds = array.array("i")
        _msg, anc, _f, _a = conn.recvmsg(1024, socket.CMSG_SPACE(4))
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[:4])
        conn.close()
        self.master = fds[0]
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk

    def wait(self, timeout=20.0):
        self.thread.join(timeout)
        return self.output.decode(errors="replace")

    def close(self):
        self.srv.close()
        if self.master is not None:
            os.close(self.master)


def test_exec_flags(rt, running, tmp_path):
    cid = running
    out = rt("exec", "--env", "A=1", "--env", "B=two", "--cwd", "/tmp", "--user", "1000:1000", cid,
             "sh", "-c", "echo $A $B; pwd; id -u; id -g").stdout.split()
    assert out == ["1", "two", "/tmp", "1000", "1000"]
    p = rt("exec", cid, "sh", "-c", "exit 5", check=False)
    assert p.returncode == 5
    # Same namespaces as the init.
    init = rt.state(cid)["pid"]
    ns = rt("exec", cid, "readlink", "/proc/self/ns/mnt").stdout.strip()
    assert ns == os.readlink(f"/proc/{init}/ns/mnt")
    assert rt("exec", cid, "sh", "-c", "echo $$").stdout.strip() != "1"


def test_exec_process_file_detach_pid_file(rt, running, bundle, tmp_path):
    cid = running
    proc = dict(bundle.process, args=["sh", "-c", "echo detached > /tmp/out; sleep 30"], terminal=False)
    pf, pfile = tmp_path / "process.json", tmp_path / "exec.pid"
    pf.write_text(json.dumps(proc))
    rt("exec", "--process", str(pf), "-d", "--pid-file", str(pfile), cid)
    pid = int(pfile.read_text())
    assert pid in json.loads(rt("ps", "--format", "json", cid).stdout)
    deadline = time.monotonic() + 10
    path = os.path.join(bundle.rootfs, "tmp", "out")
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(path) as f:
        assert f.read() == "detached\n"
    os.kill(pid, 9)
    assert gone(pid)


def test_exec_into_stopped_container_fails(rt, bundle, cid):
    bundle.args("true")
    rt("run", "--keep", "--bundle", bundle.write(), cid)
    p = rt("exec", cid, "true", check=False)
    assert p.returncode != 0


def test_exec_capabilities_and_seccomp_of_container(rt, bundle, cid):
    bundle.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    bundle.args("sleep", "60")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    out = rt("exec", cid, "sh", "-c", "grep -E '^(Seccomp|CapEff|NoNewPrivs)' /proc/self/status; "
             "mkdir /tmp/x 2>&1; true").stdout
    assert "Seccomp:\t2" in out and "NoNewPrivs:\t1" in out and "Operation not permitted" in out
    assert "CapEff:\t0000000020000420" in out


def test_terminal_via_console_socket(rt, bundle, cid, tmp_path):
    sock = ConsoleSocket(str(tmp_path / "console.sock"))
    try:
        bundle.process["terminal"] = True
        bundle.process["consoleSize"] = {"height": 33, "width": 101}
        bundle.sh("tty; stty size; [ -t 0 ] && echo stdin-is-tty; ls -l /dev/console | cut -c1")
        rt("run", "-d", "--console-socket", sock.path, "--bundle", bundle.write(), cid)
        out = sock.wait()
    finally:
        sock.close()
    assert "/dev/pts/0" in out and "33 101" in out and "stdin-is-tty" in out
    assert "\nc" in out.replace("\r", "")  # /dev/console is the pty (a char device)


def test_exec_tty_via_console_socket(rt, running, tmp_path):
    sock = ConsoleSocket(str(tmp_path / "exec.sock"))
    try:
        rt("exec", "-t", "-d", "--console-socket", sock.path, running, "sh", "-c", "tty; echo done")
        out = sock.wait()
    finally:
        sock.close()
    assert "/dev/pts/" in out and "done" in out


def test_terminal_without_console_socket_when_detached_is_refused(rt, bundle, cid):
    bundle.process["terminal"] = True
    p = rt("create", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode != 0 and "console" in p.stderr
    assert rt.ids() == []
