"""Helpers to build layer tars entry by entry (including malicious ones) and to compare trees."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile

from berth.layers import tar_directory

T0 = 1_600_000_000


def entry(name: str, kind: str = "file", data: bytes = b"", *, link: str = "", mode: int | None = None,
          uid: int = 0, gid: int = 0, mtime: int = T0, major: int = 0, minor: int = 0,
          xattrs: dict[str, bytes] | None = None) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
               "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
               "fifo": tarfile.FIFOTYPE}[kind]
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.uid, ti.gid, ti.mtime, ti.linkname = uid, gid, mtime, link
    ti.devmajor, ti.devminor = major, minor
    ti.size = len(data) if kind == "file" else 0
    for k, v in (xattrs or {}).items():
        ti.pax_headers["SCHILY.xattr." + k] = v.decode("utf-8", "surrogateescape")
    return ti, data


def build_tar(*entries: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


def tree_digest(root: str) -> str:
    """Digest of a deterministic export: equal trees (to the second) give equal digests."""
    buf = io.BytesIO()
    tar_directory(root, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def snapshot(root: str) -> dict[str, tuple]:
    """path -> (type, mode, uid, gid, size, mtime s, rdev, link target, xattrs) for every entry."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            xs = {}
            for k in sorted(os.listxattr(p, follow_symlinks=False)):
                xs[k] = os.getxattr(p, k, follow_symlinks=False)
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                        st.st_size if stat.S_ISREG(st.st_mode) else 0, int(st.st_mtime), st.st_rdev,
                        os.readlink(p) if stat.S_ISLNK(st.st_mode) else None, xs)
    return out
