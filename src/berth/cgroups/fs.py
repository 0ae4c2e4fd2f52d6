"""Small file helpers for cgroupfs: every failure names the file and the value."""

import errno
import os
import time

from berth import errors

SIGKILL = 9   # the value on every Linux arch; `import signal` costs ~4 ms (enum) on the start path


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def read_int(path: str, default: int = 0) -> int:
    """An integer file; "max" reads as -1. Missing files give `default`."""
    try:
        s = read(path)
    except FileNotFoundError:
        return default
    if s == "max":
        return -1
    return int(s) if s else default


def read_kv(path: str) -> dict[str, int]:
    """"key value" lines (memory.stat, cpu.stat, memory.events...); missing file -> {}."""
    out: dict[str, int] = {}
    try:
        text = read(path)
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            continue
    return out


def write(path: str, value: str | int, what: str = "") -> None:
    """Write one value the way the kernel wants it (one write call, no buffering)."""
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if not os.path.isdir(os.path.dirname(path)):
            raise errors.NotFound(f"cgroup {os.path.dirname(path)} does not exist (writing {path})")
        ctl = os.path.basename(path).split(".", 1)[0]
        raise errors.Unsupported(
            f"cgroup file {path} does not exist: the {ctl!r} controller or this knob is not available"
            f" here{' (' + what + ')' if what else ''}"
        )
    try:
        os.write(fd, data)
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.ERANGE):
            raise errors.InvalidArgument(
                f"the kernel rejected {data.decode()!r} for {path}{' (' + what + ')' if what else ''}: {e.strerror}"
            )
        raise errors.SystemError_(f"cannot write {data.decode()!r} to {path}: {e.strerror}")
    finally:
        os.close(fd)


def rmdir_retry(path: str, attempts: int = 50) -> None:
    """rmdir, retrying briefly on EBUSY while the kernel releases exiting tasks; missing is fine."""
    delay = 0.002
    for i in range(attempts):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.EAGAIN) or i == attempts - 1:
                raise errors.SystemError_(f"cannot remove cgroup {path}: {e.strerror}")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def read_pids(path: str) -> list[int]:
    try:
        return [int(x) for x in read(path).split()]
    except FileNotFoundError:
        return []
