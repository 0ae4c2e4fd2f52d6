"""Clients that send half a request and stall are closed after the header/body timeout, while a
well-behaved client is served meanwhile; the daemon's log stays small."""

from __future__ import annotations

import os
import resource
import select
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import new_daemon  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def short_berthd():
    d = new_daemon("bdh")
    d.extra_args = ("--header-timeout", "3", "--body-timeout", "3")
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


def test_half_sent_requests_are_closed_and_others_served(short_berthd):
    d = short_berthd
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4500), hard))
    def log_lines() -> list[str]:  # all of it (read_log keeps the tail); the per-request DEBUG trace aside
        with open(d.log, errors="replace") as f:
            return [ln for ln in f if " DEBUG " not in ln]

    lines_before = len(log_lines())
    socks = []
    try:
        for i in range(2000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            for _ in range(3000):
                try:
                    s.connect(d.sock)
                    break
                except BlockingIOError:  # the listen backlog is full until the daemon accepts
                    time.sleep(0.01)
            if i % 2:
                s.sendall(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: x\r\nUser-Ag")
            else:
                s.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                          b"\r\nContent-Length: 100\r\n\r\n{\"Ima")
            socks.append(s)
        cli = d.client()
        t0 = time.monotonic()
        assert cli.ping()
        cli.containers.list()
        assert time.monotonic() - t0 < 20
        # every half-sent request is closed by the daemon (EOF) after its 3 s timeout
        deadline = time.monotonic() + 120
        open_ = {s.fileno(): s for s in socks}
        p = select.poll()
        for fd in open_:
            p.register(fd, select.POLLIN | select.POLLHUP)
        while open_ and time.monotonic() < deadline:
            for fd, _ in p.poll(1000):
                s = open_.get(fd)
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    p.unregister(fd)
                    del open_[fd]
        assert not open_, f"{len(open_)} half-sent connections still open"
        assert cli.ping()
        lines = log_lines()
        assert not any("Traceback" in ln for ln in lines)
        assert len(lines) - lines_before < 50, lines[lines_before:][:60]
    finally:
        for s in socks:
            s.close()
