"""Drivers whose layers are whole trees: vfs (a full copy per layer) and btrfs (a snapshot per layer).

Per layer: `root/` is the layer's complete filesystem (parent's content + its own changes), so get()
mounts nothing; diff/changes/size compare `root/` with the parent's `root/`.
"""

from __future__ import annotations

import os
from typing import IO

from berth import errors
from berth.linux import libc
from berth.storage import _btrfs
from berth.storage import _fsutil as fs
from berth.storage.base import Driver, no_parent_mismatch


class _TreeDriver(Driver):
    whiteouts = "delete"
    mounts = False

    def _root(self, id: str) -> str:
        return os.path.join(self._dir(id), "root")

    def _apply_target(self, id: str, layer_dir: str | None = None) -> str:
        return os.path.join(layer_dir or self._dir(id), "root")

    def _parent_root(self, id: str) -> str | None:
        p = self.parent(id)
        return None if p is None else self._root(p)

    def diff(self, id: str, parent: str | None, out: IO[bytes]) -> None:
        from berth.layers import diff_trees

        no_parent_mismatch(self, id, parent)
        diff_trees(self._parent_root(id), self._root(id), out)

    def changes(self, id: str, parent: str | None) -> list[tuple[str, str]]:
        from berth.layers import changes_trees

        no_parent_mismatch(self, id, parent)
        return changes_trees(self._parent_root(id), self._root(id))

    def size(self, id: str) -> int:
        self._need(id)
        return fs.changed_size(self._parent_root(id), self._root(id))


class VfsDriver(_TreeDriver):
    name = "vfs"

    def _prepare(self, tmp: str, id: str, parent: str | None, rw: bool) -> None:
        root = os.path.join(tmp, "root")
        if parent is None:
            os.mkdir(root, 0o755)
        else:
            fs.copy_tree(self._root(parent), root)


class BtrfsDriver(_TreeDriver):
    name = "btrfs"

    def __init__(self, home: str) -> None:
        os.makedirs(home, mode=0o700, exist_ok=True)
        if libc.fs_magic(home) != libc.BTRFS_SUPER_MAGIC:
            raise errors.Unsupported(f"storage btrfs: {home} is not on a btrfs filesystem")
        super().__init__(home)

    def _prepare(self, tmp: str, id: str, parent: str | None, rw: bool) -> None:
        root = os.path.join(tmp, "root")
        if parent is None:
            _btrfs.create_subvolume(root)
        else:
            _btrfs.snapshot(self._root(parent), root)

    def _discard(self, path: str) -> None:
        root = os.path.join(path, "root")
        if _btrfs.is_subvolume(root):
            self._delete_nested(root)
            _btrfs.delete_subvolume(root)
        super()._discard(path)

    def _delete_nested(self, root: str) -> None:
        """A container may have created subvolumes inside its own; those go first."""
        top = os.stat(root).st_dev
        for dirpath, dirnames, _ in os.walk(root):
            for name in list(dirnames):
                p = os.path.join(dirpath, name)
                if not os.path.islink(p) and os.stat(p).st_dev != top and _btrfs.is_subvolume(p):
                    self._delete_nested(p)
                    _btrfs.delete_subvolume(p)
                    dirnames.remove(name)
