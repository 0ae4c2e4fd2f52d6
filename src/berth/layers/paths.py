"""Safe path handling inside a layer directory.

Every lookup goes through directory file descriptors opened with O_NOFOLLOW, one component at a time,
so no entry can reach outside the layer through '..', an absolute name or a symlink (whether the
symlink came with the layer or was already in dest).
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import stat

from berth.errors import InvalidArgument

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_entry(name: str, what: str = "entry") -> tuple[str, ...]:
    """Components of a tar member name relative to the layer root; rejects absolute names and '..'."""
    if "\0" in name:
        raise InvalidArgument(f"layer {what} {name!r}: NUL byte in name")
    if name.startswith("/"):
        raise InvalidArgument(f"layer {what} {name!r}: absolute path escapes the layer")
    comps = []
    for c in name.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            raise InvalidArgument(f"layer {what} {name!r}: '..' escapes the layer")
        comps.append(c)
    return tuple(comps)


class DirTree:
    """Directory fds below root, cached by relative path; never follows a symlink."""

    # Layers list a directory's entries together, so a modest FIFO cache hits nearly always; stay
    # well below the open-files limit.
    MAX_CACHED = max(16, min(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 8))

    def __init__(self, root: str) -> None:
        try:
            self.root_fd = os.open(root, _DIR_FLAGS)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise InvalidArgument(f"layer destination {root!r} is not a directory (or is a symlink)")
            raise
        self._cache: dict[tuple[str, ...], int] = {(): self.root_fd}
        self._stale: list[int] = []  # dropped fds, closed by release() so callers' fds stay valid

    def release(self) -> None:
        """Close fds dropped from the cache; call between entries, when no fd is held."""
        for fd in self._stale:
            os.close(fd)
        self._stale = []

    def close(self) -> None:
        self.release()
        for fd in self._cache.values():
            os.close(fd)
        self._cache = {}

    def __enter__(self) -> DirTree:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def dir_fd(self, comps: tuple[str, ...], entry: str, create: bool = True) -> int:
        """fd of the directory comps (creating missing ones 0755 when create); InvalidArgument when a
        component is a symlink or not a directory."""
        fd = self._cache.get(comps)
        if fd is not None:
            return fd
        parent = self.dir_fd(comps[:-1], entry, create)
        name = comps[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(name, 0o755, dir_fd=parent)
            except FileExistsError:
                pass
            fd = self._open_existing(parent, comps, entry)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            fd = self._open_existing(parent, comps, entry)
        if len(self._cache) >= self.MAX_CACHED:
            self._evict()
        self._cache[comps] = fd
        return fd

    def _open_existing(self, parent: int, comps: tuple[str, ...], entry: str) -> int:
        try:
            return os.open(comps[-1], _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = os.lstat(comps[-1], dir_fd=parent)
            where = "/".join(comps)
            if stat.S_ISLNK(st.st_mode):
                raise InvalidArgument(f"layer entry {entry!r}: {where!r} is a symlink; refusing to follow it")
            raise InvalidArgument(f"layer entry {entry!r}: {where!r} is not a directory")

    def _evict(self) -> None:
        for k in list(self._cache)[:2]:  # the oldest entry other than the root
            if k:
                self._stale.append(self._cache.pop(k))
                return

    def forget(self, comps: tuple[str, ...]) -> None:
        """Drop cached fds at and below comps (after removing or replacing that path)."""
        n = len(comps)
        for k in [k for k in self._cache if k[:n] == comps and k]:
            self._stale.append(self._cache.pop(k))

    def remove(self, parent_fd: int, comps: tuple[str, ...]) -> bool:
        """Remove comps (a file or a whole tree) without following symlinks; False if absent."""
        name = comps[-1]
        try:
            st = os.lstat(name, dir_fd=parent_fd)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            self.forget(comps)
            shutil.rmtree(name, dir_fd=parent_fd)
        else:
            os.unlink(name, dir_fd=parent_fd)
        return True


def remove_tree(path: str) -> None:
    """Remove a (half-applied) layer directory; no-op if it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
