"""Helpers for berth-runtime tests: a runtime (picked from $OCI_RUNTIME, like crun's suite, so the same
tests can run against runc) with its own --root, and busybox bundles. Everything is torn down."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from berth.runtime.spec import default_spec

REPO = Path(__file__).resolve().parents[2]
RUNTIME = os.environ.get("OCI_RUNTIME") or str(REPO / ".venv" / "bin" / "berth-runtime")
IS_BERTH = os.path.basename(RUNTIME) == "berth-runtime"


class Runtime:
    def __init__(self, root: str):
        self.root = root
        self.exe = RUNTIME

    def __call__(self, *args: str, check: bool = True, timeout: float = 60, fd3: str | None = None,
                 wrap: list[str] | None = None, **kw) -> subprocess.CompletedProcess:
        cmd = [RUNTIME, "--root", self.root, *args]
        if wrap:  # e.g. ["unshare", "-m"]: the runtime runs in a throwaway mount namespace
            cmd = [*wrap, *cmd]
        if fd3 is not None:  # the runtime starts with fd 3 open on this file (never touch our own fds)
            cmd = ["sh", "-c", 'exec 3<"$0"; exec "$@"', fd3, *cmd]
        kw.setdefault("stdin", subprocess.DEVNULL)
        # Files, not pipes: a detached container inherits the runtime's stdio and would hold a pipe open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kw.setdefault("stdout", out)
            kw.setdefault("stderr", err)
            rc = subprocess.run(cmd, timeout=timeout, **kw).returncode
            out.seek(0)
            err.seek(0)
            p = subprocess.CompletedProcess(cmd, rc, out.read().decode(errors="replace"),
                                            err.read().decode(errors="replace"))
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid).stdout)

    def ids(self) -> list[str]:
        p = self("list", "--format", "json", check=False)
        if p.returncode != 0 or not p.stdout.strip():
            return []
        return [c["id"] for c in json.loads(p.stdout) or []]

    def cleanup(self) -> None:
        for cid in self.ids():
            self("delete", "--force", cid, check=False)


class Bundle:
    def __init__(self, path: Path, rootfs: str):
        self.path = path
        self.rootfs = rootfs
        self.config = default_spec(args=["true"], terminal=False)
        self.config["root"] = {"path": rootfs, "readonly": False}

    @property
    def process(self) -> dict:
        return self.config["process"]

    @property
    def linux(self) -> dict:
        return self.config["linux"]

    def args(self, *args: str) -> Bundle:
        self.process["args"] = list(args)
        return self

    def sh(self, script: str) -> Bundle:
        return self.args("sh", "-c", script)

    def write(self) -> str:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return str(self.path)



def run(rt: Runtime, bundle: Bundle, cid: str, *extra: str, check: bool = True, **kw):
    """`run` the bundle in the foreground; returns the CompletedProcess."""
    return rt("run", "--bundle", bundle.write(), *extra, cid, check=check, **kw)


def host_mounts() -> str:
    with open("/proc/self/mountinfo") as f:
        return f.read()


def gone(pid: int, timeout: float = 10.0) -> bool:
    """Wait until pid has exited (gone or a zombie); True if it did."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def in_container(bundle: Bundle, rt: Runtime, cid: str, script: str, *extra: str, check: bool = True):
    """Run a shell script as the container's program in the foreground; return the CompletedProcess."""
    bundle.sh(script)
    return run(rt, bundle, cid, *extra, check=check)
