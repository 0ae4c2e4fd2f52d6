"""docker-py 7.1 against berthd: the calls from the API survey (run, logs stream, exec_run, wait,
attach_socket, list with filters)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.interop


@pytest.fixture
def client(berthd):
    c = berthd.client()
    yield c
    c.close()


def test_ping_version(client):
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.41"


def test_run_returns_output_and_raises_on_failure(client):
    import docker

    assert client.containers.run("busybox", ["echo", "py"], remove=True) == b"py\n"
    with pytest.raises(docker.errors.ContainerError) as ei:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 2"], remove=True)
    assert ei.value.exit_status == 2 and b"bad" in ei.value.stderr
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.run("nosuchimage-py:1", ["true"])


def test_detached_logs_exec_wait_list(client, cname):
    c = client.containers.run("busybox", ["sh", "-c", "echo a; sleep 0.3; echo b; sleep 300"], detach=True,
                              name=cname, labels={"k": "v"})
    try:
        it = c.logs(stream=True)
        assert next(it) == b"a\n" and next(it) == b"b\n"
        res = c.exec_run(["sh", "-c", "echo x; exit 3"])
        assert (res.exit_code, res.output) == (3, b"x\n")
        res = c.exec_run("sh -c 'echo o; echo e >&2'", demux=True)
        assert res.output == (b"o\n", b"e\n")
        found = client.containers.list(filters={"name": cname, "label": "k=v"})
        assert [x.name for x in found] == [cname]
        c.kill()
        assert c.wait()["StatusCode"] == 137
        c.reload()
        assert c.status == "exited"
    finally:
        c.remove(force=True)


def test_exec_run_output_of_fast_commands(client, cname):
    """docker-py reads the 101's head through a buffered file and then the raw socket: output sent
    with the head would be lost to it (docker-py issues 3332, 2042); berthd holds the stream until the
    head has been read."""
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, name=cname)
    try:
        got = [c.exec_run(["echo", f"e{i}"]) for i in range(30)]
        assert [(r.exit_code, r.output) for r in got] == [(0, f"e{i}\n".encode()) for i in range(30)]
    finally:
        c.remove(force=True)


def test_attach_socket(client, cname):
    c = client.containers.create("busybox", ["sh", "-c", "read x; echo got $x"], stdin_open=True, name=cname)
    try:
        sock = client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        c.start()
        raw = sock._sock
        raw.sendall(b"hello\n")
        data = b""
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
        raw.close()
        assert data == b"\x01\x00\x00\x00\x00\x00\x00\x0agot hello\n"
        assert c.wait()["StatusCode"] == 0
    finally:
        c.remove(force=True)
