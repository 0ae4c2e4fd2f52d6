"""--log / --log-format: errors as runc writes them ({"level":"error","msg":...,"time":...}), since
containerd, conmon and dockerd read the log to report why the runtime failed."""

import os
import sys
import time

from berth.runtime import jsonio


class Log:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False):
        self.path, self.fmt, self.debug_on = path, fmt, debug
        if path:
            # As runc: a --log that cannot be opened is an error at once, before the command runs (not a
            # silent fallback when the first error has to be written).
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644))

    def _write(self, level: str, msg: str) -> None:
        now = time.time()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
        if self.fmt == "json":
            line = jsonio.dumps({"level": level, "msg": msg, "time": ts})
        else:
            line = f'time="{ts}" level={level} msg={jsonio.dumps(msg)}'
        if self.path:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                try:
                    os.write(fd, (line + "\n").encode())
                finally:
                    os.close(fd)
                return
            except OSError:
                pass
        if level != "error":
            sys.stderr.write(line + "\n")

    def error(self, msg: str) -> None:
        self._write("error", msg)

    def warn(self, msg: str) -> None:
        self._write("warning", msg)

    def debug(self, msg: str) -> None:
        if self.debug_on:
            self._write("debug", msg)
