"""A real berthd per test session (own temp --root, --exec-root and socket) and a busybox image in it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

BIN = os.path.dirname(sys.executable)
BERTH = os.path.join(BIN, "berth")
BERTHD = os.path.join(BIN, "berthd")


class Berth:
    """Runs the berth CLI against one daemon."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.env = {**os.environ, "BERTH_HOST": host}

    def __call__(self, *args: str, input: bytes | str | None = None, timeout: float = 60,
                 check: bool = False) -> subprocess.CompletedProcess:
        if isinstance(input, str):
            input = input.encode()
        r = subprocess.run([BERTH, *args], input=input, capture_output=True, timeout=timeout, env=self.env,
                           stdin=None if input is not None else subprocess.DEVNULL)
        r.out = r.stdout.decode(errors="replace")  # type: ignore[attr-defined]
        r.err = r.stderr.decode(errors="replace")  # type: ignore[attr-defined]
        if check and r.returncode != 0:
            raise AssertionError(f"berth {' '.join(args)} -> {r.returncode}\nstdout: {r.out}\nstderr: {r.err}")
        return r

    def ok(self, *args: str, **kw) -> str:
        return self(*args, check=True, **kw).out  # type: ignore[attr-defined]


def _mounts_under(path: str) -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


def _reap_leftovers(base: str) -> None:
    """Safety net after berthd stopped: kill monitors/runtimes/containers still naming our dirs (by pid)
    and remove their cgroups, so a daemon bug cannot leak processes out of the test run."""
    ids: set[str] = set()
    for sub in ("exec/containers", "exec/runtime", "root/containers"):
        try:
            ids |= {d for d in os.listdir(os.path.join(base, sub)) if len(d) == 64}
        except OSError:
            pass
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if base.encode() in cmd and pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    time.sleep(0.2)
    for cid in ids:
        for hier in os.listdir("/sys/fs/cgroup"):
            path = os.path.join("/sys/fs/cgroup", hier, "berth", cid)
            if os.path.isdir(path):
                try:
                    with open(os.path.join(path, "cgroup.procs")) as f:
                        for pid in f.read().split():
                            os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
                for _ in range(20):
                    try:
                        os.rmdir(path)
                        break
                    except OSError:
                        time.sleep(0.05)


@pytest.fixture(scope="session")
def berthd():
    """Start berthd on a private socket and state dirs; tear everything down, even on failure."""
    if not os.path.exists(BERTHD):
        pytest.fail(f"{BERTHD} is missing (make install)")
    base = tempfile.mkdtemp(prefix="bcli-", dir="/tmp")
    sock = os.path.join(base, "s.sock")
    log = open(os.path.join(base, "berthd.log"), "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [BERTHD, "-H", f"unix://{sock}", "--root", os.path.join(base, "root"), "--exec-root",
         os.path.join(base, "exec"), "--runtime", os.path.join(BIN, "berth-runtime"), "--log-level", "debug"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    b = Berth(f"unix://{sock}")
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.flush()
                with open(os.path.join(base, "berthd.log"), "rb") as f:
                    pytest.fail(f"berthd exited with {proc.returncode}:\n{f.read().decode(errors='replace')[-3000:]}")
            if os.path.exists(sock) and b("version").returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail("berthd did not answer on its socket within 30 s")
            time.sleep(0.1)
        b.base = base  # type: ignore[attr-defined]
        yield b
    finally:
        try:
            ids = b("ps", "-aq", "--no-trunc", timeout=30).out.split()  # type: ignore[attr-defined]
            if ids:
                b("rm", "-f", *ids, timeout=60)
            for v in b("volume", "ls", "-q", timeout=30).out.split():  # type: ignore[attr-defined]
                b("volume", "rm", "-f", v, timeout=30)
        except Exception:
            pass
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        _reap_leftovers(base)
        for mp in sorted(_mounts_under(base), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        if os.environ.get("BERTH_KEEP_TEST_STATE"):
            print(f"berthd state kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox(berthd) -> str:
    """`berth image bootstrap` once per session; the image is busybox:latest."""
    r = berthd("image", "bootstrap", timeout=120)
    assert r.returncode == 0, f"berth image bootstrap failed: {r.err}"
    return r.out.strip()


@pytest.fixture
def b(berthd, busybox) -> Berth:
    return berthd
