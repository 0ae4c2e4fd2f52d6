"""Size-based rotation of the daemon's JSON-lines logs (audit.jsonl, events.jsonl).

<path> is written; <path>.1 is the newest rotated file, <path>.N the oldest. `max_files` counts them
all, <path> included (as the json-file log driver's max-file does).
"""

from __future__ import annotations

import os


def rotated(path: str) -> list[int]:
    """Indexes of the rotated files that exist, oldest (highest) first."""
    d, base = os.path.split(path)
    out = []
    for name in os.listdir(d or "."):
        if name.startswith(base + ".") and name[len(base) + 1:].isdigit():
            out.append(int(name[len(base) + 1:]))
    return sorted(out, reverse=True)


def files_oldest_first(path: str) -> list[str]:
    return [f"{path}.{k}" for k in rotated(path)] + [path]


def open_private(path: str) -> int:
    """An append fd on `path`, created 0600 and made 0600 if an older berthd left it wider: the
    logs say who did what, and from which process."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def chmod_rotated(path: str) -> None:
    for k in rotated(path):
        try:
            os.chmod(f"{path}.{k}", 0o600)
        except FileNotFoundError:
            pass


def shift(path: str, max_files: int) -> list[str]:
    """Rename <path> to <path>.1 (and .k to .k+1); returns the files retention takes away, which the
    caller reads (if it must) and then unlinks: they are renamed to <path>.drop-<k> first, so that a
    crash leaves them visible rather than gone. With max_files 1, <path> itself is the one dropped."""
    keep = max(max_files, 1) - 1
    dropped = []
    for k in rotated(path):
        if k + 1 > keep:
            tmp = f"{path}.drop-{k}"
            os.rename(f"{path}.{k}", tmp)
            dropped.append(tmp)
        else:
            os.rename(f"{path}.{k}", f"{path}.{k + 1}")
    if keep >= 1:
        os.rename(path, f"{path}.1")
    else:
        os.rename(path, f"{path}.drop-0")
        dropped.append(f"{path}.drop-0")
    _fsync_dir(os.path.dirname(path) or ".")
    return dropped


def _fsync_dir(d: str) -> None:
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
