"""A berthd per test session (own root, exec-root and socket), a busybox image imported through the
storage core, the docker CLI and docker-py pointed at it; everything torn down even on failure."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass

import pytest

from berth.bootstrap import make_rootfs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else shutil.which("docker") or "docker"


def runtime_path() -> str:
    p = os.path.join(VENV_BIN, "berth-runtime")
    return p if os.path.exists(p) else "berth-runtime"


@pytest.fixture
def berth_runtime() -> str:
    """The berth-runtime berthd runs (tests import no conftest: its module name is not unique)."""
    return runtime_path()


@dataclass
class Daemon:
    base: str
    root: str
    exec_root: str
    sock: str
    proc: subprocess.Popen | None = None
    log: str = ""
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] | None = None  # extra environment (BERTH_CRASH_AT=...)

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def docker_cmd(self) -> str:
        return f"{DOCKER} -H {self.host}"

    def start(self) -> None:
        logf = open(self.log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "berth.daemon.main", "-H", self.host, "--root", self.root,
             "--exec-root", self.exec_root, "--runtime", runtime_path(), "--log-level", "debug",
             *self.extra_args],
            stdout=logf, stderr=logf,
            env={**os.environ, "PYTHONPATH": os.path.join(REPO, "src"), **(self.env or {})})
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berthd exited with {self.proc.returncode}:\n{self.read_log()}")
            if os.path.exists(self.sock):
                r = subprocess.run([DOCKER, "-H", self.host, "version", "-f", "{{.Server.Version}}"],
                                   capture_output=True)
                if r.returncode == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"berthd did not come up:\n{self.read_log()}")

    def wait_killed(self, timeout: float = 60) -> int:
        """Wait for berthd to die at its crash point; returns its exit status."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self.proc = None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def read_log(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-5000:]
        except OSError:
            return ""

    def docker(self, *args: str, input: bytes | str | None = None, check: bool = True,
               timeout: float = 60) -> subprocess.CompletedProcess:
        if isinstance(input, str):
            input = input.encode()
        r = subprocess.run([DOCKER, "-H", self.host, *args], input=input, capture_output=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} -> {r.returncode}\nstdout: {r.stdout!r}\n"
                                 f"stderr: {r.stderr!r}\nberthd log:\n{self.read_log()[-2000:]}")
        return r

    def out(self, *args: str, **kw) -> str:
        return self.docker(*args, **kw).stdout.decode()

    def inspect(self, name: str) -> dict:
        return json.loads(self.out("inspect", name))[0]

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)

    def cleanup(self) -> None:
        """Kill every container's processes and monitor, undo mounts and cgroups, remove the dirs."""
        self.stop(signal.SIGKILL)
        cdir = os.path.join(self.exec_root, "containers")
        rt_root = os.path.join(self.exec_root, "runtime")
        ids = set(os.listdir(cdir)) if os.path.isdir(cdir) else set()
        if os.path.isdir(rt_root):
            ids |= set(os.listdir(rt_root))
        for cid in ids:
            try:
                with open(os.path.join(cdir, cid, "monitor.pid")) as f:
                    os.kill(int(f.read()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
            subprocess.run([runtime_path(), "--root", rt_root, "kill", cid, "9"], capture_output=True)
            subprocess.run([runtime_path(), "--root", rt_root, "delete", "--force", cid], capture_output=True)
            for ctl in os.listdir("/sys/fs/cgroup"):
                p = f"/sys/fs/cgroup/{ctl}/berth/{cid}"
                if os.path.isdir(p):
                    try:
                        os.rmdir(p)
                    except OSError:
                        pass
        with open("/proc/self/mountinfo") as f:
            mps = [line.split()[4] for line in f]
        for mp in sorted((m for m in mps if m.startswith(self.base)), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def _busybox_tar() -> io.BytesIO:
    with tempfile.TemporaryDirectory() as d:
        make_rootfs(os.path.join(d, "rootfs"))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            tf.add(os.path.join(d, "rootfs"), arcname=".")
    buf.seek(0)
    return buf


def new_daemon(prefix: str = "bd") -> Daemon:
    # A short base path: the socket path must fit AF_UNIX's 108 bytes.
    base = tempfile.mkdtemp(prefix=f"{prefix}-", dir="/tmp")
    d = Daemon(base=base, root=os.path.join(base, "root"), exec_root=os.path.join(base, "run"),
               sock=os.path.join(base, "berth.sock"), log=os.path.join(base, "berthd.log"))
    from berth.images import Store

    st = Store(d.root)
    try:
        st.import_rootfs_tar(_busybox_tar(), ref="busybox:latest", changes=['CMD ["sh"]'])
        st.import_rootfs_tar(_busybox_tar(), ref="nocmd:latest")
    finally:
        st.close()
    return d


@pytest.fixture(scope="session")
def berthd():
    d = new_daemon()
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def fresh_berthd():
    """A berthd of one's own (for tests that kill or restart the daemon)."""
    d = new_daemon("bdk")
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def crash_berthd(request):
    """A berthd of its own that SIGKILLs itself at crash point `request.param` (BERTH_CRASH_AT)."""
    d = new_daemon("bdc")
    d.env = {"BERTH_CRASH_AT": request.param}
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def cname(unique_name):
    return unique_name
