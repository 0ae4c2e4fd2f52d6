"""Filesystem helpers shared by the drivers and volumes: atomic small files, tree copy, sizes."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator

from berth import errors


def write_atomic(path: str, data: str, fsync: bool = True) -> None:
    """tmp + (fsync) + rename: readers see the old or the new content, never a torn one."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data.encode())
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def read_text(path: str, default: str | None = None) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return default


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def flocked(path: str) -> Iterator[None]:
    """An exclusive flock on `path`: serialises threads (one open file each) and processes alike."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def copy_tree(src: str, dst: str) -> None:
    """Copy `src`'s content into the existing directory `dst`, keeping hardlinks, xattrs, devices,
    ownership, modes and times; reflinks where the filesystem can (btrfs, xfs)."""
    r = subprocess.run(
        ["cp", "-a", "--reflink=auto", "--no-target-directory", src, dst],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )
    if r.returncode != 0:
        raise errors.SystemError_(f"copying {src} to {dst} failed: {r.stderr.strip()}")


def rmtree(path: str) -> None:
    """Remove a tree, tolerating its absence; files made immutable/append-only are a clear error."""
    def onerror(func, p, exc_info):
        e = exc_info[1]
        if isinstance(e, FileNotFoundError):
            return
        if isinstance(e, PermissionError):  # a dir with mode 000 (overlay's work/work) or chmod'ed away
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(p), 0o700)
                func(p)
                return
        raise errors.SystemError_(f"removing {p}: {e}")

    if os.path.islink(path) or os.path.isfile(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    shutil.rmtree(path, onerror=onerror)


def tree_size(root: str) -> int:
    """Apparent size in bytes of the regular files and symlinks below `root` (hardlinks once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                total += st.st_size
    return total


def changed_size(parent_root: str | None, root: str) -> int:
    """Bytes of files in `root` that are new or differ (size, mtime, mode, owner) from `parent_root`:
    a full-copy or snapshot layer's own contribution."""
    if parent_root is None:
        return tree_size(root)
    total = 0
    seen: set[int] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                continue
            if st.st_nlink > 1:
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
            try:
                pst = os.lstat(os.path.join(parent_root, rel, name))
            except (FileNotFoundError, NotADirectoryError):
                total += st.st_size
                continue
            if (pst.st_size, pst.st_mtime_ns, pst.st_mode, pst.st_uid, pst.st_gid) != (
                st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid, st.st_gid
            ):
                total += st.st_size
    return total


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_empty_dir(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise
