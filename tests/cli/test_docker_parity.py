"""Side by side: docker CLI 28 and berth against the same berthd must print the same thing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from .conftest import BERTH

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

DOCKER = shutil.which("docker")


@pytest.fixture
def both(b):
    if not DOCKER:
        pytest.skip("the docker CLI (peer) is not installed")
    env = {**b.env, "DOCKER_HOST": b.host, "DOCKER_CONFIG": os.path.join(b.base, "docker-config")}

    def run(*args: str, input: bytes | None = None) -> tuple[tuple, tuple]:
        out = []
        for exe in (BERTH, DOCKER):
            r = subprocess.run([exe, *args], env=env, capture_output=True, timeout=30, input=input,
                               stdin=None if input is not None else subprocess.DEVNULL)
            out.append((r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")))
        return out[0], out[1]

    return run


@pytest.fixture
def ctr(b, unique_name):
    b.ok("run", "-d", "--name", unique_name, "-l", "tier=web", "-e", "A=1", "busybox", "sleep", "300")
    b.ok("exec", unique_name, "sh", "-c", "echo x > /added; rm /bin/ls")
    yield unique_name
    b("rm", "-f", unique_name)


def test_listing_and_inspect_match(both, ctr):
    cases = [
        ("ps", "-a", "--filter", f"name={ctr}", "--format",
         "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.State}}\\t{{.Names}}\\t{{.Labels}}\\t{{.Ports}}"),
        ("ps", "-q", "--filter", f"name={ctr}"),
        ("inspect", ctr),
        ("inspect", "-f", "{{.State.Status}} {{json .Config.Env}} {{index .Config.Labels \"tier\"}}", ctr),
        ("container", "inspect", "--format", "{{.Name}} {{.Config.Cmd}}", ctr),
        ("image", "inspect", "busybox"),
        ("images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.Size}}", "busybox"),
        ("history", "--format", "{{.ID}} {{.CreatedBy}} {{.Size}}", "busybox"),
        ("diff", ctr),
        ("top", ctr),
        ("port", ctr),
        ("logs", ctr),
        ("exec", ctr, "echo", "hi"),
        ("exec", ctr, "sh", "-c", "echo to-err >&2; exit 3"),
        # a window that has already ended: events emitted between the two clients' calls (the execs
        # above, in the current second) must not make the replays differ
        ("events", "--since", str(int(time.time()) - 60), "--until", str(int(time.time()) - 1)),
        ("events", "--since", str(int(time.time()) - 60), "--until", str(int(time.time()) - 1), "--format", "json"),
    ]
    for args in cases:
        mine, theirs = both(*args)
        assert mine == theirs, args


def test_errors_match(both, ctr):
    cases = [
        ("inspect", f"{ctr}-nope"),
        ("container", "inspect", f"{ctr}-nope"),
        ("image", "inspect", f"{ctr}-nope"),
        ("volume", "inspect", f"{ctr}-nope"),
        ("rm", f"{ctr}-nope"),
        ("rm", ctr),
        ("stop", f"{ctr}-nope"),
        ("port", ctr, "80"),
        ("inspect", "-f", "{{.State", ctr),
        ("logs", f"{ctr}-nope"),
    ]
    for args in cases:
        mine, theirs = both(*args)
        assert mine == theirs, args


def test_run_matches(both):
    for args, stdin in [
        (("run", "--rm", "busybox", "echo", "hello"), None),
        (("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"), None),
        (("run", "--rm", "-i", "busybox", "cat"), b"piped\n"),
        (("run", "--rm", "-e", "X=1", "-w", "/tmp", "-u", "65534", "busybox", "sh", "-c", "echo $X $(pwd) $(id -u)"), None),
    ]:
        mine, theirs = both(*args, input=stdin)
        assert mine == theirs, args
    # exit codes for a command that is missing / not runnable (the messages name the client)
    for cmd, code in (("nonexistent-cmd", 127), ("/etc", 126)):
        mine, theirs = both("run", "--rm", "busybox", cmd)
        assert mine[0] == theirs[0] == code


def test_volumes_match(both, b, unique_name):
    b.ok("volume", "create", "--label", "k=v", unique_name)
    try:
        for args in (("volume", "inspect", unique_name),
                     ("volume", "ls", "--filter", f"name={unique_name}"),
                     ("volume", "ls", "-q", "--filter", f"name={unique_name}"),
                     ("volume", "inspect", "-f", "{{.Name}} {{.Labels}}", unique_name)):
            mine, theirs = both(*args)
            assert mine == theirs, args
    finally:
        b("volume", "rm", unique_name)
