"""berthd's side of the monitor: start one per container start, talk to its socket."""

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


def write_json_atomic(path: str, obj: Any, mode: int = 0o600) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, json.dumps(obj).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


_ZYGOTE_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from berth.monitor.zygote import main; main()")


class Zygote:
    """berthd's handle on the warm monitor parent (berth.monitor.zygote)."""

    def __init__(self, exec_root: str) -> None:
        self.sock = os.path.join(exec_root, "monitor-zygote.sock")
        self.proc: asyncio.subprocess.Process | None = None
        self.lock = asyncio.Lock()

    async def ensure(self) -> None:
        async with self.lock:
            if self.proc is not None and self.proc.returncode is None:
                return
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", "-c", _ZYGOTE_BOOT, SRC_DIR, self.sock,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=None, start_new_session=True)
            assert self.proc.stdout is not None
            line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
            if line.strip() != b"ready":
                raise errors.SystemError_("the monitor zygote did not start")

    async def spawn(self, rundir: str, timeout: float) -> bytes:
        await self.ensure()
        reader, writer = await connect(self.sock, {"rundir": rundir})
        try:
            return await asyncio.wait_for(reader.readline(), timeout)
        finally:
            writer.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass


async def spawn(rundir: str, cfg: dict, timeout: float = 60.0, zygote: Zygote | None = None) -> dict:
    """Start a monitor for `cfg` (monitor.json); returns its status {"pid", "monitor"} once the
    runtime created the container, or raises with the runtime's error."""
    write_json_atomic(os.path.join(rundir, "monitor.json"), cfg)
    if zygote is not None:
        try:
            data = await zygote.spawn(rundir, timeout)
        except TimeoutError:
            raise errors.SystemError_("the container monitor did not report within %ds" % timeout)  # noqa: UP031
        except (errors.BerthError, OSError) as e:
            import logging

            logging.getLogger("berthd").warning("monitor zygote unavailable (%s): starting the monitor directly", e)
        else:
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
