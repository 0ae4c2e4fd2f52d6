"""berthd behaves as dockerd does where real clients (docker-py 7, docker CLI 28, the berth CLI) depend
on it: kill answers once the container is down, a restarting container needs force to go, exec framing
and detach keys, attach before start, and exec of a missing binary."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import threading
import time

import pytest

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else shutil.which("docker") or "docker"
BERTH = os.path.join(os.path.dirname(sys.executable), "berth")


@pytest.fixture
def client(berthd):
    c = berthd.client()
    yield c
    c.close()


@pytest.fixture
def sleeper(client, cname):
    c = client.containers.run("busybox", ["sleep", "600"], detach=True, name=cname)
    yield c
    try:
        c.remove(force=True)
    except Exception:
        pass


def wait_for(pred, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read_to_eof(sock, timeout: float = 30.0) -> bytes:
    """All bytes until the daemon closes the hijacked connection."""
    raw = getattr(sock, "_sock", sock)
    raw.settimeout(timeout)
    data = b""
    while True:
        chunk = raw.recv(65536)
        if not chunk:
            return data
        data += chunk


def frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        assert len(data) >= 8, data
        kind, size = data[0], int.from_bytes(data[4:8], "big")
        assert data[1:4] == b"\0\0\0", data
        out.append((kind, data[8:8 + size]))
        data = data[8 + size:]
    return out


class PtyProc:
    """A command with a pseudo-terminal as its stdin/stdout/stderr (its own session)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.master, slave = os.openpty()
        os.set_blocking(self.master, False)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                     env={**os.environ, **(env or {})})
        os.close(slave)
        self.out = b""

    def _read(self, timeout: float) -> None:
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                self.out += os.read(self.master, 65536)
            except (BlockingIOError, OSError):
                time.sleep(0.05)

    def expect(self, needle: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            if time.monotonic() > deadline or self.proc.poll() is not None and not self._pending():
                raise AssertionError(f"{needle!r} not seen; output so far: {self.out!r}, rc={self.proc.poll()}")
            self._read(0.2)

    def _pending(self) -> bool:
        r, _, _ = select.select([self.master], [], [], 0)
        if r:
            self._read(0)
            return True
        return False

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 30.0) -> int | None:
        """The exit status, or None if it is still running after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return self.proc.returncode
            self._read(0.1)
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def exec_of(client, container, cmd_word: str) -> dict:
    """The exec inspect of the (only) exec in `container` whose command is `cmd_word`."""
    container.reload()
    for eid in container.attrs.get("ExecIDs") or []:
        info = client.api.exec_inspect(eid)
        if info["ProcessConfig"]["entrypoint"] == cmd_word:
            return info
    raise AssertionError(f"no exec {cmd_word!r} in {container.attrs.get('ExecIDs')}")


# -- 1. kill with SIGKILL answers once the container is down ---------------------------------


def test_kill_then_remove_never_conflicts(client, unique_name):
    """docker-py `c.kill(); c.remove()`: dockerd answers a SIGKILL only after the container has
    stopped, so the remove right after never meets a running container (409)."""
    made = []
    try:
        for i in range(20):
            c = client.containers.run("busybox", ["sleep", "600"], detach=True, name=f"{unique_name}-{i}")
            made.append(c)
            c.kill()
            c.remove()
            made.pop()
    finally:
        for c in made:
            c.remove(force=True)


def test_kill_is_exit_on_next(client, cname):
    """dockerd's kill (SIGKILL, or any signal when no stop signal is set) means "exit on next": the
    restart policy does not bring the container back, and a paused one is resumed to get it."""
    c = client.containers.run("busybox", ["sleep", "600"], detach=True, name=cname,
                              restart_policy={"Name": "always"})
    try:
        c.kill()
        c.reload()
        assert (c.status, c.attrs["State"]["ExitCode"]) == ("exited", 137)
        time.sleep(1.5)  # the first restart would come after 100 ms
        c.reload()
        assert (c.status, c.attrs["RestartCount"]) == ("exited", 0)
        c.start()
        c.pause()
        c.kill()
        c.reload()
        assert (c.status, c.attrs["State"]["ExitCode"], c.attrs["State"]["Paused"]) == ("exited", 137, False)
    finally:
        c.remove(force=True)


# -- 2. a restarting container is removed only by force --------------------------------------


def test_remove_restarting_container_is_a_conflict(client, cname):
    import docker

    c = client.containers.run("busybox", ["sh", "-c", "exit 3"], detach=True, name=cname,
                              restart_policy={"Name": "always"})
    try:
        seen = []
        for _ in range(20):
            # The back-off doubles (100 ms, 200 ms, ...): after a few restarts the container
            # spends most of its time restarting.
            wait_for(lambda: c.reload() or (c.attrs["State"]["Status"] == "restarting"
                                            and c.attrs["RestartCount"] >= 3), "the restarting state")
            with pytest.raises(docker.errors.APIError) as ei:
                c.remove()
            assert ei.value.status_code == 409, ei.value
            seen.append(ei.value.explanation)
            if "restarting" in ei.value.explanation:
                break
        assert seen[-1] == (f'cannot remove container "/{cname}": container is restarting: '
                            "stop the container before removing or force remove"), seen
        c.remove(force=True)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(cname)
    finally:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass


# -- 3. exec framing follows the start request's Tty; detach keys -----------------------------


def test_exec_framing_follows_the_start_requests_tty(client, sleeper):
    api = client.api
    # created without a tty, started with Tty true: a raw stream
    eid = api.exec_create(sleeper.id, ["sh", "-c", "echo out; echo err >&2"], tty=False)["Id"]
    data = read_to_eof(api.exec_start(eid, tty=True, socket=True))
    assert sorted(data.splitlines()) == [b"err", b"out"], data
    assert api.exec_inspect(eid)["ExitCode"] == 0
    # created with a tty, started with Tty false: multiplexed (the pty's output is stdout)
    eid = api.exec_create(sleeper.id, ["echo", "hi"], tty=True)["Id"]
    data = read_to_eof(api.exec_start(eid, tty=False, socket=True))
    assert frames(data) == [(1, b"hi\r\n")], data
    # no Tty in the start body at all: multiplexed too
    eid = api.exec_create(sleeper.id, ["echo", "hi"], tty=False)["Id"]
    sock = api._post_json(api._url("/exec/{0}/start", eid), data={"Detach": False},
                          headers={"Connection": "Upgrade", "Upgrade": "tcp"}, stream=True)
    assert frames(read_to_eof(api._get_raw_response_socket(sock))) == [(1, b"hi\n")]


# -- 4. attach with logs and stream before the start ------------------------------------------


def test_attach_logs_stream_before_start_gets_the_output(client, cname):
    c = client.containers.create("busybox", ["sh", "-c", "echo first; echo second"], name=cname)
    try:
        stream = c.attach(stream=True, logs=True)
        got: list[bytes] = []
        t = threading.Thread(target=lambda: got.extend(stream), daemon=True)
        t.start()
        c.start()
        t.join(30)
        assert not t.is_alive(), "the attach stream did not end with the container"
        assert b"".join(got) == b"first\nsecond\n"
        assert c.wait(timeout=30)["StatusCode"] == 0
    finally:
        c.remove(force=True)
