"""overlay driver: read-only lower layers, an upper + work dir per container, merged mount on get().

Per layer: `diff/` (its content; lowers hold overlay-format whiteouts), `link` (a 26-char short id
with a symlink `l/<short>` -> `../<id>/diff`), `lower` (the parents' short links, nearest first,
`l/A:l/B`), `merged/` (mount point), and for writable layers `work/`. Short links keep the mount
option string small; past one page the driver switches to fsconfig(`lowerdir+`) (one string per
layer, kernel >= 6.8) or, on older kernels, to relative paths resolved in a chdir'ed child.
"""

from __future__ import annotations

import base64
import errno
import os
import secrets
from typing import IO

from berth import errors
from berth.linux import libc, mountinfo
from berth.storage import _fsutil as fs
from berth.storage.base import Driver, no_parent_mismatch

LINKS = "l"
# index=off: layers are moved/copied by inode-agnostic tools; redirect_dir/metacopy=off: the upper
# dir must hold real copies so that diff_overlay reproduces the changes from it alone.
_PREFERRED_OPTS = ("index=off", "redirect_dir=off", "metacopy=off")


def _short_id() -> str:
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")


class OverlayDriver(Driver):
    name = "overlay"
    whiteouts = "overlay"
    mounts = True
    reserved = frozenset({LINKS})

    def __init__(self, home: str, mount_mode: str = "auto") -> None:
        if "," in home or ":" in home:
            raise errors.InvalidArgument(f"storage overlay: home {home!r} must not contain ',' or ':'")
        self.mount_mode = mount_mode  # auto | classic | fsconfig | chdir (the last three for tests)
        os.makedirs(os.path.join(home, LINKS), mode=0o700, exist_ok=True)
        super().__init__(home)
        self.options = probe(self.home)
        if self.options is None:
            raise errors.Unsupported(f"storage overlay: overlayfs cannot be mounted on {self.home}")

    # -- layout ------------------------------------------------------------------------------------
    def _root(self, id: str) -> str:
        d = self._dir(id)
        return os.path.join(d, "merged") if self._needs_mount(id) else os.path.join(d, "diff")

    def _apply_target(self, id: str, layer_dir: str | None = None) -> str:
        return os.path.join(layer_dir or self._dir(id), "diff")

    def _needs_mount(self, id: str) -> bool:
        # a base read-only layer is its own diff dir; anything else needs an overlay
        d = self._dir(id)
        return os.path.exists(os.path.join(d, "rw")) or os.path.exists(os.path.join(d, "parent"))

    def _lowers(self, id: str) -> list[str]:
        """Short link paths (relative to home) of `id`'s parents, nearest first."""
        text = fs.read_text(os.path.join(self._dir(id), "lower"), "") or ""
        return [p for p in text.strip().split(":") if p]

    def _prepare(self, tmp: str, id: str, parent: str | None, rw: bool) -> None:
        os.mkdir(os.path.join(tmp, "diff"), 0o755)
        os.mkdir(os.path.join(tmp, "merged"), 0o700)
        fs.write_atomic(os.path.join(tmp, "link"), _short_id(), fsync=False)
        if parent is not None:
            plink = (fs.read_text(os.path.join(self._dir(parent), "link")) or "").strip()
            lowers = [f"{LINKS}/{plink}"] + self._lowers(parent)
            fs.write_atomic(os.path.join(tmp, "lower"), ":".join(lowers), fsync=False)
        if rw:
            os.mkdir(os.path.join(tmp, "work"), 0o700)
            if parent is None:  # overlay needs at least one lower dir
                os.mkdir(os.path.join(tmp, "empty"), 0o755)

    def _link_of(self, id: str) -> str:
        return (fs.read_text(os.path.join(self._dir(id), "link")) or "").strip()

    def _created(self, id: str) -> None:
        link = os.path.join(self.home, LINKS, self._link_of(id))
        if not os.path.islink(link):
            os.symlink(f"../{id}/diff", link)

    def _removed(self, id: str, gone: str) -> None:
        link = (fs.read_text(os.path.join(gone, "link")) or "").strip()
        if link:
            try:
                os.unlink(os.path.join(self.home, LINKS, link))
            except FileNotFoundError:
                pass

    def _repair(self) -> None:
        """Drop dangling short links; recreate missing ones (a crash between rename and symlink)."""
        ldir = os.path.join(self.home, LINKS)
        for e in os.scandir(ldir):
            if e.is_symlink() and not os.path.exists(e.path):
                os.unlink(e.path)
        for id in self.list():
            if self._link_of(id):
                self._created(id)

    # -- mounting ----------------------------------------------------------------------------------
    def _mount(self, id: str) -> None:
        d = self._dir(id)
        rw = os.path.exists(os.path.join(d, "rw"))
        lowers = self._lowers(id)
        if not rw:
            lowers = [f"{LINKS}/{self._link_of(id)}"] + lowers
        elif not lowers:
            lowers = [f"{id}/empty"]
        target = os.path.join(d, "merged")
        rel_upper = [f"upperdir={id}/diff", f"workdir={id}/work"] if rw else []
        flags = 0 if rw else libc.MS_RDONLY
        page = os.sysconf("SC_PAGE_SIZE")

        def data(prefix: str) -> str:
            parts = ["lowerdir=" + ":".join(prefix + lo for lo in lowers)]
            parts += [p.replace("=", "=" + prefix, 1) for p in rel_upper]
            return ",".join(parts + list(self.options))

        absolute = data(self.home + "/")
        mode = self.mount_mode
        if mode == "auto":
            mode = "classic" if len(absolute) < page else "fsconfig"
        if mode == "classic":
            if len(absolute) >= page:
                raise errors.Unsupported(f"storage overlay: mount options of {id} exceed one page")
            libc.mount("overlay", target, "overlay", flags, absolute)
            return
        if mode == "fsconfig":
            opts: list[tuple[str, str | None]] = [("source", "overlay")]
            opts += [("lowerdir+", os.path.join(self.home, lo)) for lo in lowers]
            if rw:
                opts += [("upperdir", os.path.join(d, "diff")), ("workdir", os.path.join(d, "work"))]
            opts += [tuple(o.split("=", 1)) for o in self.options]  # type: ignore[misc]
            try:
                libc.mount_fsconfig("overlay", target, opts, readonly=not rw)
                return
            except OSError as e:
                if self.mount_mode == "fsconfig" or e.errno not in (errno.EINVAL, errno.ENOSYS):
                    raise
        relative = data("")
        if len(relative) >= page:
            raise errors.Unsupported(
                f"storage overlay: layer {id} has {len(lowers)} lower layers, too many for this kernel"
            )
        libc.mount_in_dir(self.home, "overlay", target, "overlay", flags, relative)

    def status(self) -> list[list[str]]:
        return super().status() + [
            ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"],
        ]

    # -- content -----------------------------------------------------------------------------------
    def diff(self, id: str, parent: str | None, out: IO[bytes]) -> None:
        from berth.layers import diff_overlay

        no_parent_mismatch(self, id, parent)
        diff_overlay(os.path.join(self._need(id), "diff"), out)

    def changes(self, id: str, parent: str | None) -> list[tuple[str, str]]:
        from berth.layers import changes_overlay

        no_parent_mismatch(self, id, parent)
        lowers = [os.path.join(self.home, lo) for lo in self._lowers(id)]
        return changes_overlay(os.path.join(self._need(id), "diff"), lowers)

    def size(self, id: str) -> int:
        return fs.tree_size(os.path.join(self._need(id), "diff"))


_probe_cache: dict[int, tuple[str, ...] | None] = {}


def probe(home: str) -> tuple[str, ...] | None:
    """Mount a tiny overlay inside `home`; returns the mount options that worked, or None."""
    os.makedirs(home, exist_ok=True)
    dev = os.stat(home).st_dev
    if dev in _probe_cache:
        return _probe_cache[dev]
    result: tuple[str, ...] | None = None
    if os.geteuid() == 0:
        base = os.path.join(home, f".tmp-{os.getpid()}-{secrets.token_hex(4)}-probe")
        try:
            for sub in ("lower", "upper", "work", "merged"):
                os.makedirs(os.path.join(base, sub))
            with open(os.path.join(base, "lower", "f"), "w") as f:
                f.write("x")
            for opts in (_PREFERRED_OPTS, ("index=off",), ()):
                data = ",".join([f"lowerdir={base}/lower", f"upperdir={base}/upper", f"workdir={base}/work",
                                 *opts])
                try:
                    libc.mount("overlay", f"{base}/merged", "overlay", 0, data)
                except OSError:
                    continue
                try:
                    if os.path.exists(f"{base}/merged/f"):
                        result = opts
                finally:
                    libc.umount(f"{base}/merged")
                break
        finally:
            for mp, _ in mountinfo.mounts_under(base):
                libc.umount(mp)
            fs.rmtree(base)
    _probe_cache[dev] = result
    return result
