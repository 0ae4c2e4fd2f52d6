"""Layer diffs: an overlay upper dir or two trees -> layer tar with whiteouts, and docker-diff lists.

Ancestors of every emitted entry are emitted first (once), so the tar recreates parents with their
own metadata, and `changes_*` reports them as "C" like `docker diff`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from berth.layers.apply import OVERLAY_OPAQUE_XATTR, WH_OPAQUE, WH_PREFIX
from berth.layers.tarwriter import LayerWriter, is_whiteout, read_xattrs, scan

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPAQUE_KEYS = (OVERLAY_OPAQUE_XATTR, "user.overlay.opaque")


def _is_opaque(dir_fd: int, name: str) -> bool:
    path = f"/proc/self/fd/{dir_fd}/{name}"
    for k in _OPAQUE_KEYS:
        try:
            if os.getxattr(path, k, follow_symlinks=False) == b"y":
                return True
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
    return False


def _open_dir(path: str) -> int:
    return os.open(path, _DIR_FLAGS)


# Events: (kind, dir_fd, name, relpath, stat). kind: "A", "C", "D" (deleted: stat of the old entry),
# "P" (unchanged parent, emitted only when something below it is), "O" (opaque marker for relpath dir).
Event = tuple[str, int, str, str, os.stat_result]


def _overlay_events(dir_fd: int, prefix: str) -> Iterator[Event]:
    for name, st in scan(dir_fd):
        rel = prefix + name
        if is_whiteout(st):
            yield "D", dir_fd, name, rel, st
            continue
        yield "C", dir_fd, name, rel, st
        if stat.S_ISDIR(st.st_mode):
            if _is_opaque(dir_fd, name):
                yield "O", dir_fd, name, rel, st
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            try:
                yield from _overlay_events(fd, rel + "/")
            finally:
                os.close(fd)


def _differs(ofd: int, nfd: int, name: str, o: os.stat_result, n: os.stat_result) -> bool:
    if stat.S_IFMT(o.st_mode) != stat.S_IFMT(n.st_mode):
        return True
    if (o.st_mode, o.st_uid, o.st_gid, o.st_mtime_ns) != (n.st_mode, n.st_uid, n.st_gid, n.st_mtime_ns):
        return True
    if stat.S_ISREG(n.st_mode) and o.st_size != n.st_size:
        return True
    if (stat.S_ISCHR(n.st_mode) or stat.S_ISBLK(n.st_mode)) and o.st_rdev != n.st_rdev:
        return True
    if stat.S_ISLNK(n.st_mode) and os.readlink(name, dir_fd=ofd) != os.readlink(name, dir_fd=nfd):
        return True
    return read_xattrs(ofd, name) != read_xattrs(nfd, name)


def _tree_events(ofd: int | None, nfd: int, prefix: str) -> Iterator[Event]:
    new = dict(scan(nfd))
    old = dict(scan(ofd)) if ofd is not None else {}
    names = sorted(new.keys() | old.keys(), key=os.fsencode)
    for name in names:
        rel = prefix + name
        nst = new.get(name)
        if nst is None:
            yield "D", ofd, name, rel, old[name]  # type: ignore[misc]
            continue
        ost = old.get(name)
        if ost is None:
            yield "A", nfd, name, rel, nst
        elif ofd is not None and _differs(ofd, nfd, name, ost, nst):
            yield "C", nfd, name, rel, nst
        elif stat.S_ISDIR(nst.st_mode):
            yield "P", nfd, name, rel, nst
        if stat.S_ISDIR(nst.st_mode):
            both_dirs = ost is not None and stat.S_ISDIR(ost.st_mode) and ofd is not None
            cfd = os.open(name, _DIR_FLAGS, dir_fd=nfd)
            cofd = os.open(name, _DIR_FLAGS, dir_fd=ofd) if both_dirs else None  # type: ignore[arg-type]
            try:
                yield from _tree_events(cofd, cfd, rel + "/")
            finally:
                os.close(cfd)
                if cofd is not None:
                    os.close(cofd)


class _Parents:
    """Unchanged directories (with a dup'd parent fd) waiting to be written before their first
    changed descendant; directories already written stay on the stack with payload None."""

    def __init__(self) -> None:
        self.stack: list[tuple[str, tuple[int, str, os.stat_result] | None]] = []

    def _pop_to(self, rel: str) -> None:
        while self.stack and not rel.startswith(self.stack[-1][0] + "/"):
            _, payload = self.stack.pop()
            if payload is not None:
                os.close(payload[0])

    def push(self, rel: str, payload: tuple[int, str, os.stat_result] | None) -> None:
        self._pop_to(rel)
        self.stack.append((rel, payload))

    def flush_for(self, rel: str, w: LayerWriter) -> None:
        """Write the parents of rel that are still waiting, outermost first."""
        self._pop_to(rel)
        for i, (prel, payload) in enumerate(self.stack):
            if payload is not None:
                pfd, pname, pst = payload
                try:
                    w.add(pfd, pname, prel, pst)
                finally:
                    os.close(pfd)
                self.stack[i] = (prel, None)

    def close(self) -> None:
        self._pop_to("")


def _write(events: Iterator[Event], out: BinaryIO, source_date_epoch: int | None) -> None:
    with LayerWriter(out, source_date_epoch) as w:
        parents = _Parents()
        try:
            for kind, dfd, name, rel, st in events:
                if kind == "P":
                    parents.push(rel, (os.dup(dfd), name, st))
                    continue
                if kind == "O":
                    marker = rel + "/" + WH_OPAQUE
                    parents.flush_for(marker, w)
                    w.add_marker(marker, st)
                    continue
                parents.flush_for(rel, w)
                if kind == "D":
                    head, _, base = rel.rpartition("/")
                    w.add_marker((head + "/" if head else "") + WH_PREFIX + base, st)
                    continue
                w.add(dfd, name, rel, st)
                if stat.S_ISDIR(st.st_mode):
                    parents.push(rel, None)
        finally:
            parents.close()


def diff_overlay(upper: str, out: BinaryIO, *, source_date_epoch: int | None = None) -> None:
    """Layer tar of an overlay upper dir: 0/0 char devices -> .wh.<name>, opaque dirs -> .wh..wh..opq."""
    fd = _open_dir(upper)
    try:
        _write(_overlay_events(fd, ""), out, source_date_epoch)
    finally:
        os.close(fd)


def diff_trees(old: str | None, new: str, out: BinaryIO, *, source_date_epoch: int | None = None) -> None:
    """Layer tar turning tree old into tree new (old=None: everything in new is added)."""
    nfd = _open_dir(new)
    ofd = _open_dir(old) if old is not None else None
    try:
        _write(_tree_events(ofd, nfd, ""), out, source_date_epoch)
    finally:
        os.close(nfd)
        if ofd is not None:
            os.close(ofd)


def _report(events: Iterator[tuple[str, str, bool]]) -> list[tuple[str, str]]:
    """(kind, relpath, is_dir) -> docker-diff list; unchanged parents of reported entries become "C"."""
    out: dict[str, str] = {}
    for kind, rel, _ in events:
        if kind == "P":
            continue
        out[rel] = kind
        head = rel
        while "/" in head:
            head = head.rpartition("/")[0]
            if head in out:
                break
            out[head] = "C"
    return sorted(((k, "/" + r) for r, k in out.items()), key=lambda x: os.fsencode(x[1]))


def changes_trees(old: str | None, new: str) -> list[tuple[str, str]]:
    """[(kind, "/path")] with kind "A" added, "C" changed, "D" deleted (docker diff)."""
    nfd = _open_dir(new)
    ofd = _open_dir(old) if old is not None else None
    try:
        return _report((k, rel, False) for k, _, _, rel, _ in _tree_events(ofd, nfd, ""))
    finally:
        os.close(nfd)
        if ofd is not None:
            os.close(ofd)


def _in_lowers(rel: str, lowers: list[str]) -> bool:
    """Whether rel is visible in the merged view of lowers (top-most first)."""
    parts = rel.split("/")
    for lower in lowers:
        hidden_below = False
        path = lower
        blocked = False
        for part in parts[:-1]:
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except OSError:
                break
            if not stat.S_ISDIR(st.st_mode):
                blocked = True  # a file, symlink or whiteout here hides everything below
                break
            if _is_opaque_path(path):
                hidden_below = True
        if blocked:
            return False
        try:
            st = os.lstat(os.path.join(lower, rel))
            return not is_whiteout(st)
        except OSError:
            pass
        if hidden_below:
            return False
    return False


def _is_opaque_path(path: str) -> bool:
    for k in _OPAQUE_KEYS:
        try:
            if os.getxattr(path, k, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def _lower_children(rel: str, lowers: list[str]) -> set[str]:
    names: set[str] = set()
    for lower in lowers:
        try:
            names.update(os.listdir(os.path.join(lower, rel)))
        except OSError:
            continue
    return {n for n in names if _in_lowers(f"{rel}/{n}", lowers)}


def _names_in(dfd: int, name: str) -> set[str]:
    """The entries of dfd/name, never through a symlink (the container may have swapped one in)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return set()
    try:
        return set(os.listdir(fd))
    finally:
        os.close(fd)


def changes_overlay(upper: str, lowers: list[str]) -> list[tuple[str, str]]:
    """docker-diff list of an overlay upper dir over lowers (lowerdir order: top-most first)."""
    fd = _open_dir(upper)

    def events() -> Iterator[tuple[str, str, bool]]:
        opaque_roots: list[str] = []
        for kind, dfd, name, rel, st in _overlay_events(fd, ""):
            inside_opaque = any(rel.startswith(o + "/") for o in opaque_roots)
            if kind == "D":
                yield "D", rel, False
            elif kind == "O":
                opaque_roots.append(rel)
                present = _names_in(dfd, name)
                for n in sorted(_lower_children(rel, lowers) - present):
                    yield "D", f"{rel}/{n}", False
            else:
                visible = not inside_opaque and _in_lowers(rel, lowers)
                yield ("C" if visible else "A"), rel, stat.S_ISDIR(st.st_mode)

    try:
        return _report(events())
    finally:
        os.close(fd)
