"""Process, pty, mount and cgroup helpers for the interop tests (no peer-specific knowledge here)."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time

CGROUP_ROOT = "/sys/fs/cgroup"


def run(cmd: list[str], check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}\nstdout: {p.stdout[-3000:]}\nstderr: {p.stderr[-3000:]}")
    return p


PTY_ROWS, PTY_COLS = 37, 101  # an unusual window size, to see that it reaches the container's terminal
# ctr (and conmon) resize the container's console only after start, so a program's first look may see 0x0:
# poll (up to 5 s) inside the container, then print the size
WAIT_SIZE = ('i=0; while [ $i -lt 50 ]; do s=$(stty size 2>/dev/null) && [ "$s" != "0 0" ] && break; '
             'i=$((i+1)); sleep 0.1; done; echo "$s"')


def run_pty(cmd: list[str], timeout: float = 60, env: dict | None = None, input: bytes = b"") -> tuple[int, str]:
    """Run cmd with a pty as its stdin/stdout/stderr (its controlling terminal); return (exit code, output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", PTY_ROWS, PTY_COLS, 0, 0))
    try:
        proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                                preexec_fn=_take_ctty)
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        if input:
            os.write(master, input)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{cmd} still running after {timeout}s; output so far: {bytes(out)!r}")
            r, _, _ = select.select([master], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError as e:  # EIO: every slave end is closed
                    if e.errno != errno.EIO:
                        raise
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break  # exited, but something else (a container) may still hold the slave open
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return rc, out.decode(errors="replace")


def _take_ctty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def kill_procs_mentioning(text: str) -> list[int]:
    """SIGKILL every process whose argv contains `text` (a unique temp dir of ours); return their pids."""
    me = os.getpid()
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read()
        except OSError:
            continue
        if text.encode() in argv:
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
            except ProcessLookupError:
                pass
    return killed


def procs_mentioning(text: str) -> list[str]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read()
            except OSError:
                continue
            if text.encode() in argv:
                out.append(argv.replace(b"\0", b" ").decode(errors="replace"))
    return out


def mounts_under(prefix: str) -> list[str]:
    prefix = prefix.rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if (mp + "/").startswith(prefix):
                found.append(mp)
    return found


def unmount_under(prefix: str) -> None:
    for _ in range(5):  # stacked mounts need several passes
        mps = mounts_under(prefix)
        if not mps:
            return
        for mp in sorted(mps, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)


def cgroup_dirs(parent: str) -> list[str]:
    """Every hierarchy's directory for cgroup path `parent` that exists (v1, hybrid or pure v2)."""
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):  # pure v2: one hierarchy
        d = os.path.join(CGROUP_ROOT, parent.lstrip("/"))
        return [d] if os.path.isdir(d) else []
    out = []
    for ctrl in sorted(os.listdir(CGROUP_ROOT)):
        d = os.path.join(CGROUP_ROOT, ctrl, parent.lstrip("/"))
        if os.path.isdir(d) and not os.path.islink(os.path.join(CGROUP_ROOT, ctrl)):
            out.append(d)
    return out


def remove_cgroup_tree(parent: str) -> None:
    """rmdir `parent` (and its children) in every hierarchy, killing what is left inside first."""
    for top in cgroup_dirs(parent):
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            procs = os.path.join(dirpath, "cgroup.procs")
            try:
                with open(procs) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
