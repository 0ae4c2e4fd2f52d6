"""What every driver shares: layer directories, crash-safe creation, refcounted get/put, recovery.

On disk, below the driver's home (`<store home>/<driver name>`):

    <id>/parent           parent layer id (absent for a base layer)
    <id>/rw               present for a container's writable layer
    <id>/mounts           get() refcount (survives a restart; reconciled with /proc/self/mountinfo)
    <id>/...              driver data (overlay: diff/ work/ merged/ link lower; vfs, btrfs: root/)
    .tmp-<pid>-<rand>-<id>  a layer being created; renamed to <id> only once complete
    .rm-<pid>-<rand>-<id>   a layer being removed
    .lock                 flock serialising metadata changes across threads and processes

A crash at any point leaves either a complete layer or a `.tmp-`/`.rm-` entry whose owner pid is gone,
which the next open (`_recover`) deletes; mounts left by a dead process are found in mountinfo.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import IO, Any

from berth import errors
from berth.linux import libc, mountinfo
from berth.storage import _fsutil as fs

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_FS_NAMES = {0xEF53: "extfs", 0x9123683E: "btrfs", 0x58465342: "xfs", 0x01021994: "tmpfs",
             0x794C7630: "overlayfs", 0x2FC12FC1: "zfs"}
_TMP_RE = re.compile(r"^\.(tmp|rm)-(\d+)-[0-9a-f]+-")


class Driver:
    """Base class; see docs/architecture.md "storage drivers" for the contract."""

    name = "base"
    whiteouts = "delete"          # the apply_layer mode for this driver's layers
    mounts = False                # does get() mount something?
    reserved: frozenset[str] = frozenset()

    def __init__(self, home: str) -> None:
        os.makedirs(home, mode=0o700, exist_ok=True)
        self.home = os.path.realpath(home)
        self._lockfile = os.path.join(self.home, ".lock")
        self._recover()

    # -- paths and metadata ------------------------------------------------------------------------
    def _check_id(self, id: str) -> str:
        if not isinstance(id, str) or not _ID_RE.match(id) or id in self.reserved:
            raise errors.InvalidArgument(f"storage {self.name}: invalid layer id {id!r}")
        return id

    def _dir(self, id: str) -> str:
        return os.path.join(self.home, self._check_id(id))

    def _need(self, id: str) -> str:
        d = self._dir(id)
        if not os.path.isdir(d):
            raise errors.NotFound(f"storage {self.name}: layer {id} not found")
        return d

    def exists(self, id: str) -> bool:
        return os.path.isdir(self._dir(id))

    def parent(self, id: str) -> str | None:
        """The parent layer id recorded at creation (extension)."""
        p = fs.read_text(os.path.join(self._need(id), "parent"))
        return p.strip() if p else None

    def is_rw(self, id: str) -> bool:
        return os.path.exists(os.path.join(self._need(id), "rw"))

    def list(self) -> list[str]:
        """Every complete layer id (extension)."""
        return sorted(
            e.name for e in os.scandir(self.home)
            if e.is_dir(follow_symlinks=False) and not e.name.startswith(".") and e.name not in self.reserved
        )

    def _lock(self):
        return fs.flocked(self._lockfile)

    def _count(self, d: str) -> int:
        try:
            return int(fs.read_text(os.path.join(d, "mounts"), "0") or 0)
        except ValueError:
            return 0

    def _set_count(self, d: str, n: int) -> None:
        fs.write_atomic(os.path.join(d, "mounts"), str(n), fsync=False)

    # -- creation ----------------------------------------------------------------------------------
    def create(self, id: str, parent: str | None) -> None:
        self._create(id, parent, rw=False)

    def create_rw(self, id: str, parent: str | None) -> None:
        self._create(id, parent, rw=True)

    def apply_diff(self, id: str, parent: str | None, stream: IO[bytes]) -> Any:
        """Apply a layer tar. An existing layer (made by create) is filled in place; a missing one is
        created and filled under a temporary name, so it appears only once the tar applied cleanly."""
        if self.exists(id):
            from berth.layers import apply_layer

            return apply_layer(stream, self._apply_target(id), whiteouts=self.whiteouts, sync=True)
        return self._create(id, parent, rw=False, stream=stream)

    def _create(self, id: str, parent: str | None, rw: bool, stream: IO[bytes] | None = None) -> Any:
        self._check_id(id)
        if parent is not None:
            self._check_id(parent)
        with self._lock():
            self._check_new(id, parent)
        tmp = os.path.join(self.home, f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{id}")
        os.mkdir(tmp, 0o700)
        applied = None
        try:
            self._prepare(tmp, id, parent, rw)
            if parent is not None:
                fs.write_atomic(os.path.join(tmp, "parent"), parent, fsync=False)
            if rw:
                fs.write_atomic(os.path.join(tmp, "rw"), "", fsync=False)
            if stream is not None:
                from berth.layers import apply_layer

                # sync: the layer's data is durable before its name is
                applied = apply_layer(stream, self._apply_target(id, tmp), whiteouts=self.whiteouts, sync=True)
            with self._lock():
                self._check_new(id, parent)
                os.rename(tmp, os.path.join(self.home, id))
                self._created(id)
            fs.fsync_dir(self.home)
        except BaseException:
            self._discard(tmp)
            raise
        return applied

    def _check_new(self, id: str, parent: str | None) -> None:
        if os.path.isdir(os.path.join(self.home, id)):
            raise errors.AlreadyExists(f"storage {self.name}: layer {id} already exists")
        if parent is not None and not os.path.isdir(os.path.join(self.home, parent)):
            raise errors.NotFound(f"storage {self.name}: parent layer {parent} of {id} not found")

    # -- get / put ---------------------------------------------------------------------------------
    def get(self, id: str) -> str:
        with self._lock():
            d = self._need(id)
            n = self._count(d)
            if self.mounts and self._needs_mount(id) and not mountinfo.is_mountpoint(self._root(id)):
                self._mount(id)
            self._set_count(d, n + 1)
            return self._root(id)

    def put(self, id: str) -> None:
        with self._lock():
            d = self._need(id)
            n = max(self._count(d) - 1, 0)
            if n == 0 and self.mounts and self._needs_mount(id):
                self._unmount(id)
            self._set_count(d, n)

    def mounted(self, id: str) -> int:
        """Current get() refcount of `id` (extension)."""
        return self._count(self._need(id))

    # -- removal -----------------------------------------------------------------------------------
    def remove(self, id: str) -> None:
        """Refused (Conflict) while the layer is mounted or has children."""
        with self._lock():
            d = self._need(id)
            if self._count(d) > 0 or (self.mounts and mountinfo.is_mountpoint(self._root(id))):
                raise errors.Conflict(f"storage {self.name}: layer {id} is in use (mounted); put() it first")
            children = [c for c in self.list() if c != id and self.parent(c) == id]
            if children:
                raise errors.Conflict(
                    f"storage {self.name}: layer {id} has {len(children)} child layer(s), e.g. {children[0]}"
                )
            gone = os.path.join(self.home, f".rm-{os.getpid()}-{secrets.token_hex(4)}-{id}")
            os.rename(d, gone)
            self._removed(id, gone)
        self._discard(gone)

    def _discard(self, path: str) -> None:
        """Delete a temporary or removed layer directory (driver hook for subvolumes, mounts)."""
        for mp, _ in mountinfo.mounts_under(path):
            libc.umount(mp)
        fs.rmtree(path)

    # -- recovery ----------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Startup: delete half-created/half-removed layers of dead processes, unmount stale mounts,
        reset refcounts that have no mount behind them."""
        with self._lock():
            for e in os.scandir(self.home):
                m = _TMP_RE.match(e.name)
                if m and not fs.pid_alive(int(m.group(2))):
                    self._discard(e.path)
            if self.mounts:
                for mp, _ in mountinfo.mounts_under(self.home):
                    rel = os.path.relpath(mp, self.home).split("/")
                    if rel[0].startswith("."):
                        continue  # a live process's temporary entry
                    d = os.path.join(self.home, rel[0])
                    if rel[0] in self.reserved or not os.path.isdir(d) or self._count(d) == 0 \
                            or mp != self._root(rel[0]):
                        libc.umount(mp)
                for id in self.list():
                    d = os.path.join(self.home, id)
                    if self._count(d) and self._needs_mount(id) and not mountinfo.is_mountpoint(self._root(id)):
                        self._set_count(d, 0)
            self._repair()

    def cleanup(self) -> None:
        """Unmount everything under home and zero every refcount (daemon shutdown, or after a crash
        when no container is known to run)."""
        with self._lock():
            for mp, _ in mountinfo.mounts_under(self.home):
                libc.umount(mp)
            for id in self.list():
                d = os.path.join(self.home, id)
                if self._count(d):
                    self._set_count(d, 0)

    # -- driver hooks ------------------------------------------------------------------------------
    def _prepare(self, tmp: str, id: str, parent: str | None, rw: bool) -> None:
        raise NotImplementedError

    def _created(self, id: str) -> None:
        """Called under the lock right after the rename that publishes `id`."""

    def _removed(self, id: str, gone: str) -> None:
        """Called under the lock right after `id` was renamed away to `gone`."""

    def _repair(self) -> None:
        """Called under the lock at startup after the generic recovery."""

    def _root(self, id: str) -> str:
        raise NotImplementedError

    def _apply_target(self, id: str, layer_dir: str | None = None) -> str:
        raise NotImplementedError

    def _needs_mount(self, id: str) -> bool:
        return False

    def _mount(self, id: str) -> None:
        raise NotImplementedError

    def _unmount(self, id: str) -> None:
        libc.umount(self._root(id))

    def diff(self, id: str, parent: str | None, out: IO[bytes]) -> None:
        raise NotImplementedError

    def changes(self, id: str, parent: str | None) -> list[tuple[str, str]]:
        raise NotImplementedError

    def size(self, id: str) -> int:
        raise NotImplementedError

    def status(self) -> list[list[str]]:
        """docker info's DriverStatus pairs (extension)."""
        magic = libc.fs_magic(self.home)
        return [["Backing Filesystem", _FS_NAMES.get(magic, hex(magic))], ["Supports d_type", "true"]]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.home}>"


def no_parent_mismatch(driver: Driver, id: str, parent: str | None) -> None:
    """diff/changes take the parent to compare with; only the recorded parent is supported."""
    recorded = driver.parent(id)
    if parent != recorded:
        raise errors.InvalidArgument(
            f"storage {driver.name}: layer {id} has parent {recorded!r}, not {parent!r}"
        )

