"""One monitor host process serves every container of a berthd: shared by all, found again by a
restarted berthd, one container's trouble stays its own, no container sees another's fds, and the
host leaves once it has nothing to do. Also the per-container mode (`berthd --monitor per-container`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from berth.testing.waiting import wait_for

pytestmark = pytest.mark.interop




def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def monitor_pid(d, name: str) -> int:
    cid = d.inspect(name)["Id"]
    with open(os.path.join(d.exec_root, "containers", cid, "monitor.pid")) as f:
        return int(f.read())


def host_pids(d) -> list[int]:
    """Processes whose command line names this daemon's monitor-host socket."""
    sock = os.path.join(d.exec_root, "monitor-host.sock").encode()
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if sock in f.read() and _alive(int(p)):
                    out.append(int(p))
        except OSError:
            pass
    return out


def log_lines(d, name: str) -> list[str]:
    with open(d.inspect(name)["LogPath"]) as f:
        return [json.loads(line)["log"] for line in f]


def monitor_request(d, name: str, line: bytes) -> list[tuple[int, bytes]]:
    """Send raw bytes to a container's monitor socket; the frames it answers with."""
    cid = d.inspect(name)["Id"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    dfd = os.open(os.path.join(d.exec_root, "containers", cid), os.O_PATH)  # AF_UNIX: 108 bytes at most
    try:
        s.connect(f"/proc/self/fd/{dfd}/monitor.sock")
        try:
            s.sendall(line)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:  # dropped by the monitor
                break
            if not b:
                break
            buf += b
    finally:
        s.close()
        os.close(dfd)
    frames = []
    while len(buf) >= 8:
        kind, n = struct.unpack(">BxxxI", buf[:8])
        frames.append((kind, buf[8:8 + n]))
        buf = buf[8 + n:]
    return frames


TICK = "trap 'echo bye; exit 5' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"


def test_one_host_serves_many_and_survives_berthd_kill9(fresh_berthd, cname):
    d = fresh_berthd
    names = [f"{cname}-{i}" for i in range(3)]
    for n in names:
        d.docker("run", "-d", "--name", n, "busybox", "sh", "-c", TICK)
    pids = {monitor_pid(d, n) for n in names}
    assert len(pids) == 1, pids
    host = pids.pop()
    assert host_pids(d) == [host]
    assert {d.inspect(n)["State"]["MonitorPid"] for n in names} == {host}
    short = cname + "-short"
    d.docker("run", "-d", "--name", short, "busybox", "sh", "-c", "sleep 1; exit 9")
    wait_for(lambda: all(len(log_lines(d, n)) >= 2 for n in names), "output of every container")
    logs = [d.inspect(n)["LogPath"] for n in names]

    d.stop(signal.SIGKILL)
    counts = []
    for p in logs:
        with open(p) as f:
            counts.append(len(f.readlines()))
    time.sleep(1.5)  # the short one exits while berthd is away
    for p, n in zip(logs, counts, strict=True):
        with open(p) as f:
            assert len(f.readlines()) > n, "the host keeps logging without berthd"
    assert _alive(host)

    d.start()
    assert host_pids(d) == [host]
    assert d.inspect(short)["State"]["ExitCode"] == 9
    new = cname + "-new"
    d.docker("run", "-d", "--name", new, "busybox", "sleep", "300")
    assert monitor_pid(d, new) == host  # the restarted berthd found the same host
    r = d.docker("exec", names[0], "echo", "from-exec")
    assert r.stdout == b"from-exec\n"
    d.docker("stop", "-t", "5", names[0])
    st = d.inspect(names[0])["State"]
    assert (st["Status"], st["ExitCode"]) == ("exited", 5)
    assert log_lines(d, names[0])[-1] == "bye\n"
    assert d.inspect(names[1])["State"]["Running"]
    d.docker("rm", "-f", *names, short, new)
    d.stop()
    wait_for(lambda: not _alive(host), "the host to exit: no container, no berthd", timeout=10)
    assert not os.path.exists(os.path.join(d.exec_root, "monitor-host.sock"))


def test_trouble_in_one_container_stays_there(fresh_berthd, cname):
    d = fresh_berthd
    a, b = cname + "-a", cname + "-b"
    d.docker("run", "-d", "--name", a, "busybox", "sh", "-c", TICK)
    d.docker("run", "-d", "-i", "--name", b, "busybox", "sh", "-c", TICK)
    host = monitor_pid(d, b)
    # Bad requests to A's monitor: each is answered with an error, the monitor goes on.
    for line in (b"{not json\n", b'{"op": "frobnicate"}\n', b'{"op": "runtime", "args": ["delete"]}\n',
                 b'{"op": "exec"}\n', b'["a list"]\n'):
        frames = monitor_request(d, a, line)
        assert frames and frames[-1][0] == 3 and b"error" in frames[-1][1], (line, frames)
    assert monitor_request(d, a, b"x" * 200_000) == []  # an endless first line: dropped
    assert json.loads(monitor_request(d, a, b'{"op": "ping"}\n')[-1][1])["ok"]
    # A's run dir is gone when its container ends: the exit cannot be recorded there. The host
    # logs that to A's monitor.log, still tells berthd, and goes on with B.
    info = d.inspect(a)
    rundir = os.path.join(d.exec_root, "containers", info["Id"])
    os.rename(rundir, rundir + ".gone")
    try:
        os.kill(info["State"]["Pid"], signal.SIGKILL)
        wait_for(lambda: not d.inspect(a)["State"]["Running"], "A seen as ended")
    finally:
        os.rename(rundir + ".gone", rundir)
    assert d.inspect(a)["State"]["ExitCode"] == 137
    with open(os.path.join(d.root, "containers", info["Id"], "monitor.log")) as f:
        assert "exit file" in f.read()
    assert _alive(host)
    n = len(log_lines(d, b))
    wait_for(lambda: len(log_lines(d, b)) > n + 2, "B still logging")
    assert d.docker("exec", b, "echo", "ok").stdout == b"ok\n"
    assert d.inspect(b)["State"]["Running"] and monitor_pid(d, b) == host
    d.docker("stop", "-t", "5", b)
    assert d.inspect(b)["State"]["ExitCode"] == 5
    d.docker("rm", "-f", a, b)


def _fd_targets(listing: str) -> list[str]:
    """`ls -l /proc/.../fd` lines -> 'N -> target' for every fd."""
    out = []
    for line in listing.splitlines():
        if "->" in line:
            left, _, target = line.partition("->")
            out.append(f"{left.split()[-1]} -> {target.strip()}")
    return out


def _fd_links(pid: int, lo: int = 0) -> dict[int, str]:
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        if int(fd) >= lo:
            try:
                out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
    return out


def _host_children(host: int) -> list[int]:
    """Forks of the host (in-process runtimes), not the containers it reaps."""
    out = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, ValueError):
            continue
        if ppid == host and b"berth.monitor.host" in cmd:
            out.append(int(p))
    return out


def test_no_fd_of_one_container_in_another(berthd, cname):
    d = berthd
    a, t, b = cname + "-a", cname + "-t", cname + "-b"
    d.docker("run", "-d", "-i", "--name", a, "busybox", "sh", "-c", "cat >/dev/null; sleep 300")
    d.docker("run", "-d", "-i", "-t", "--name", t, "busybox", "sh")
    try:
        # B starts (runtime create/start forked from the host) while A and T hold pipes and a pty.
        d.docker("run", "-d", "--name", b, "busybox", "sh", "-c", "ls -l /proc/1/fd; exec sleep 300")
        wait_for(lambda: any("->" in x for x in log_lines(d, b)), "B's fd listing")
        init_fds = _fd_targets("".join(log_lines(d, b)))
        assert sorted(x.split()[0] for x in init_fds) == ["0", "1", "2"], init_fds
        # an exec (also forked from the host) sees its own stdio only
        ex = _fd_targets(d.out("exec", b, "ls", "-l", "/proc/self/fd"))
        assert {"0", "1", "2"} <= {x.split()[0] for x in ex} <= {"0", "1", "2", "3"}, ex  # 3: ls's dir
        # and from outside: every process in B holds 0-2 only
        pid = d.inspect(b)["State"]["Pid"]
        assert sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]
        host = monitor_pid(d, b)
        assert monitor_pid(d, a) == host == monitor_pid(d, t)
        # B's runtime (forked from the host, not exec'd: close-on-exec protects nothing) holds no fd
        # of the host's: a foreground exec keeps `runtime exec` alive while it runs.
        p = subprocess.Popen([*d.docker_cmd.split(), "exec", b, "sleep", "3"], stdout=subprocess.DEVNULL)
        try:
            rt = wait_for(lambda: _host_children(host), "the exec's runtime process")[0]
            theirs = _fd_links(rt, lo=3)
            ours = set(_fd_links(host).values())
            assert not ours & set(theirs.values()), (theirs, ours)
        finally:
            p.wait(30)
    finally:
        d.docker("rm", "-f", a, t, b, check=False)


def test_per_container_mode(fresh_berthd, cname):
    d = fresh_berthd
    d.stop()
    d.extra_args = ("--monitor", "per-container")
    d.start()
    a, b = cname + "-a", cname + "-b"
    d.docker("run", "-d", "--name", a, "busybox", "sh", "-c", TICK)
    d.docker("run", "-d", "--name", b, "busybox", "sh", "-c", TICK)
    pa, pb = monitor_pid(d, a), monitor_pid(d, b)
    assert pa != pb and _alive(pa) and _alive(pb)
    assert host_pids(d) == []  # no shared host
    assert d.docker("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
    d.docker("stop", "-t", "5", a)
    assert d.inspect(a)["State"]["ExitCode"] == 5
    wait_for(lambda: not _alive(pa), "A's own monitor host to exit")
    assert _alive(pb) and d.inspect(b)["State"]["Running"]
    d.docker("rm", "-f", a, b)
    wait_for(lambda: not _alive(pb), "B's own monitor host to exit")


def test_a_stuck_runtime_call_stalls_only_its_container(fresh_berthd, cname, tmp_path, berth_runtime):
    """A runtime (here a wrapper, run as a separate process: the host's non-inproc path) hangs in
    `start` of A: A's start waits, B's exec and a new container's run go on meanwhile."""
    d = fresh_berthd
    gate = tmp_path / "gate"
    wrapper = tmp_path / "slow-runtime"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"if [ -e {gate}.id ] && [ \"$3\" = start ] && [ \"$4\" = \"$(cat {gate}.id)\" ]; then\n"
        f"  touch {gate}.waiting; i=0\n"
        f"  while [ ! -e {gate}.open ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
        "fi\n"
        f"exec {berth_runtime} \"$@\"\n")
    wrapper.chmod(0o755)
    d.stop()
    d.extra_args = ("--runtime", str(wrapper))
    d.start()
    a, b = cname + "-a", cname + "-b"
    d.docker("run", "-d", "--name", b, "busybox", "sleep", "300")
    d.docker("create", "--name", a, "busybox", "sleep", "300")
    (tmp_path / "gate.id").write_text(d.inspect(a)["Id"])
    p = subprocess.Popen([*d.docker_cmd.split(), "start", a], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: os.path.exists(f"{gate}.waiting"), "A's start to hang in the runtime")
        assert monitor_pid(d, a) == monitor_pid(d, b)
        assert d.docker("exec", b, "echo", "from-b").stdout == b"from-b\n"
        assert d.docker("run", "--rm", "busybox", "echo", "new").stdout == b"new\n"
        assert p.poll() is None  # A's start is still stuck
    finally:
        (tmp_path / "gate.open").touch()
        p.wait(60)
    assert p.returncode == 0, p.stderr.read()
    assert d.inspect(a)["State"]["Running"]
    d.docker("rm", "-f", a, b)


def test_dead_host_is_replaced(fresh_berthd, cname):
    """A host killed under a running berthd, or a stale socket found by a starting berthd: the next
    container start brings a new host up; containers of the dead one are reported gone."""
    d = fresh_berthd
    a, b, c = cname + "-a", cname + "-b", cname + "-c"
    d.docker("run", "-d", "--name", a, "busybox", "sleep", "300")
    h1 = monitor_pid(d, a)
    os.kill(h1, signal.SIGKILL)
    wait_for(lambda: not d.inspect(a)["State"]["Running"], "A seen without its monitor")
    assert d.inspect(a)["State"]["ExitCode"] == 255
    d.docker("run", "-d", "--name", b, "busybox", "sh", "-c", "echo up; sleep 300")
    h2 = monitor_pid(d, b)
    assert h2 != h1 and host_pids(d) == [h2]
    wait_for(lambda: log_lines(d, b) == ["up\n"], "B's output")
    d.stop(signal.SIGKILL)
    os.kill(h2, signal.SIGKILL)
    assert os.path.exists(os.path.join(d.exec_root, "monitor-host.sock"))  # stale now
    d.start()
    d.docker("run", "-d", "--name", c, "busybox", "sleep", "300")
    h3 = monitor_pid(d, c)
    assert h3 not in (h1, h2) and host_pids(d) == [h3]
    assert d.docker("exec", c, "echo", "ok").stdout == b"ok\n"
    d.docker("rm", "-f", a, b, c)
    d.stop()
    wait_for(lambda: not _alive(h3), "the host to exit", timeout=10)
