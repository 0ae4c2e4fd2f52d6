"""berthd's side of the monitors: start monitoring a container (in the shared monitor host, or a
host of its own), talk to a container's monitor socket."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
from typing import Any

from berth import errors

SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STDOUT, STDERR, CONTROL = 1, 2, 3
_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
         "from berth.monitor.monitor import main; main()")


def write_json_atomic(path: str, obj: Any, mode: int = 0o600, sync: bool = True) -> None:
    """tmp (+ fsync) + rename. sync=False for files in the exec root (runtime config, exec process specs,
    monitor.json): like /run it does not outlive a reboot, and a killed berthd keeps the page cache."""
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, json.dumps(obj).encode())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


_HOST_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
              "from berth.monitor.host import main; main()")
MODES = ("shared", "per-container")


class MonitorHost:
    """berthd's handle on the monitor host (berth.monitor.host) of its exec root.

    shared: one detached host serves every container; started on the first container start,
    found again through <exec_root>/monitor-host.sock by a restarted berthd, which keeps a
    "hello" connection open (the host exits once it has no container and no berthd).
    per-container: every container start runs a host of its own for that container alone.
    """

    def __init__(self, exec_root: str, mode: str = "shared") -> None:
        self.sock = os.path.join(exec_root, "monitor-host.sock")
        self.mode = mode
        self.pid = 0
        self.ctl: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.lock = asyncio.Lock()

    @property
    def shared(self) -> bool:
        return self.mode == "shared"

    def _alive(self) -> bool:
        return self.ctl is not None and not self.ctl[0].at_eof() and not self.ctl[1].is_closing()

    async def _hello(self) -> bool:
        try:
            reader, writer = await connect(self.sock, {"op": "hello"})
        except (errors.BerthError, OSError):
            return False
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            st = json.loads(line) if line else {}
        except (OSError, ValueError, TimeoutError):
            st = {}
        if not st.get("ok"):
            writer.close()
            return False
        self.pid = int(st.get("pid") or 0)
        self.ctl = (reader, writer)
        return True

    async def attach(self) -> bool:
        """Connect to a host that is already there (berthd start); never starts one."""
        if not self.shared or not os.path.exists(self.sock):
            return False
        async with self.lock:
            return self._alive() or await self._hello()

    async def ensure(self) -> None:
        """Connected to a live host, starting one if there is none (or only a stale socket)."""
        async with self.lock:
            if self._alive() or await self._hello():
                return
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", "-c", _HOST_BOOT, SRC_DIR, "host", self.sock,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=None, start_new_session=True)
            assert proc.stdout is not None
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
            finally:
                await proc.wait()  # the host itself is a grandchild, detached
            if not line.startswith(b"ready") or not await self._hello():
                raise errors.SystemError_("the monitor host did not start")

    async def spawn(self, rundir: str, timeout: float) -> bytes:
        await self.ensure()
        reader, writer = await connect(self.sock, {"op": "spawn", "rundir": rundir})
        try:
            return await asyncio.wait_for(reader.readline(), timeout)
        finally:
            writer.close()

    def forget(self) -> None:
        """The host is gone (its socket refuses us): the next ensure() starts a new one."""
        if self.ctl is not None:
            self.ctl[1].close()
            self.ctl = None

    def close(self) -> None:
        """berthd stops: say goodbye (the host stays while it monitors containers); if it exits,
        wait a moment for it to be gone so nothing of ours outlives a clean shutdown."""
        if self.ctl is None:
            return
        writer = self.ctl[1]
        self.ctl = None
        sock = writer.get_extra_info("socket")
        exiting = False
        try:
            if sock is not None and not writer.is_closing():
                import socket as _socket

                s = _socket.socket(fileno=os.dup(sock.fileno()))
                try:
                    s.setblocking(True)
                    s.settimeout(2)
                    s.sendall(b'{"op": "bye"}\n')
                    buf = b""
                    while b"\n" not in buf:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
                    exiting = bool(buf) and bool(json.loads(buf.split(b"\n", 1)[0]).get("exit"))
                finally:
                    s.close()
        except (OSError, ValueError):
            pass
        writer.close()
        if exiting and self.pid:
            import time

            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and _running(self.pid):
                time.sleep(0.01)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False




async def spawn(rundir: str, cfg: dict, timeout: float = 60.0, host: MonitorHost | None = None) -> dict:
    """Start monitoring `cfg` (monitor.json): in the shared host, or a host of its own. Returns the
    status {"pid", "monitor"} once the runtime created the container, or raises with its error."""
    write_json_atomic(os.path.join(rundir, "monitor.json"), cfg, sync=False)
    for attempt in range(2) if host is not None and host.shared else ():
        try:
            await host.ensure()
        except (errors.BerthError, OSError, TimeoutError) as e:
            import logging

            logging.getLogger("berthd").warning("monitor host unavailable (%s): a host for this container alone", e)
            break
        try:
            data = await host.spawn(rundir, timeout)
        except errors.Unavailable:
            if attempt == 0:
                host.forget()
                continue  # it exited between our hello and this request (not sent): a new one
            raise
        except TimeoutError:
            raise errors.SystemError_("the container monitor did not report within %ds" % timeout)  # noqa: UP031
        except ConnectionError as e:
            raise errors.SystemError_(f"the monitor host went away: {e}")
        return _status(rundir, data)
    r, w = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", "-c", _BOOT, SRC_DIR, rundir, str(w),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, pass_fds=(w,), start_new_session=True)
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    os.close(w)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", 0))
    try:
        data = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        raise errors.SystemError_("the container monitor did not report within %ds" % timeout)  # noqa: UP031
    finally:
        transport.close()
        await proc.wait()
    return _status(rundir, data)


def _status(rundir: str, data: bytes) -> dict:
    if not data:
        log = ""
        try:
            with open(os.path.join(rundir, "monitor.log")) as f:
                log = f.read().strip()[-2000:]
        except OSError:
            pass
        raise errors.SystemError_("the container monitor failed to start" + (f": {log}" if log else ""))
    st = json.loads(data)
    if "error" in st:
        raise _runtime_error(st["error"])
    return st


def _runtime_error(msg: str) -> errors.BerthError:
    low = msg.lower()
    if "exec" in low and ("not found" in low or "no such file or directory" in low or "permission denied" in low):
        # The CLI maps these texts to exit codes 127 / 126.
        if "not found" not in low and "no such file" in low:
            msg += " (executable file not found in $PATH)"
        return errors.InvalidArgument(f"failed to create task for container: {msg}: unknown")
    return errors.SystemError_(msg)


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", kind, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    try:
        hdr = await reader.readexactly(8)
        kind, n = struct.unpack(">BxxxI", hdr)
        return kind, await reader.readexactly(n)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


async def connect(sock: str, req: dict) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    dfd = -1
    path = sock
    try:
        if len(sock) >= 100:
            # AF_UNIX paths are limited to 108 bytes: go through a directory fd.
            dfd = os.open(os.path.dirname(sock), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            path = f"/proc/self/fd/{dfd}/{os.path.basename(sock)}"
        reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as e:
        raise errors.Unavailable(f"container monitor not reachable: {e}")
    finally:
        if dfd >= 0:
            os.close(dfd)
    writer.write(json.dumps(req).encode() + b"\n")
    await writer.drain()
    return reader, writer


async def call(sock: str, req: dict) -> dict:
    """A one-shot request; returns the first control message."""
    reader, writer = await connect(sock, req)
    try:
        while True:
            fr = await read_frame(reader)
            if fr is None:
                raise errors.Unavailable("container monitor closed the connection")
            if fr[0] == CONTROL:
                return json.loads(fr[1])
    finally:
        writer.close()
