"""Build small layer tars in memory for the storage tests (stdlib tarfile, pax xattrs)."""

from __future__ import annotations

import io
import os
import stat
import tarfile


class Layer:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115

    def _add(self, ti: tarfile.TarInfo, data: bytes | None = None) -> Layer:
        ti.mtime = ti.mtime or 1_700_000_000
        self.tar.addfile(ti, io.BytesIO(data) if data is not None else None)
        return self

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Layer:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid = tarfile.DIRTYPE, mode, uid, gid
        return self._add(ti)

    def file(self, name: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0,
             xattrs: dict[str, bytes] | None = None) -> Layer:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.uid, ti.gid = len(data), mode, uid, gid
        if xattrs:
            ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}
        return self._add(ti, data)

    def link(self, name: str, target: str) -> Layer:
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname = tarfile.LNKTYPE, target
        return self._add(ti)

    def symlink(self, name: str, target: str) -> Layer:
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, target, 0o777
        return self._add(ti)

    def device(self, name: str, major: int, minor: int, mode: int = 0o666) -> Layer:
        ti = tarfile.TarInfo(name)
        ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, major, minor, mode
        return self._add(ti)

    def whiteout(self, path: str) -> Layer:
        d, base = os.path.split(path)
        return self.file(os.path.join(d, ".wh." + base))

    def opaque(self, dirpath: str) -> Layer:
        return self.file(os.path.join(dirpath, ".wh..wh..opq"))

    def stream(self) -> io.BytesIO:
        self.tar.close()
        return io.BytesIO(self.buf.getvalue())


def tree(root: str) -> dict[str, tuple]:
    """A comparable picture of a directory tree: type, mode, owner, content or link target."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    body: object = f.read()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                body = st.st_rdev
            else:
                body = None
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, body)
    return out
