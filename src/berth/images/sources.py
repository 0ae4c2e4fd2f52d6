"""Archive contents as a name -> bytes/blob map, wherever they come from.

A tar stream (docker-archive or OCI layout, possibly compressed, possibly a pipe) is read once: small
metadata files are kept in memory and everything large or under `blobs/` goes straight into the
content store (blobs before metadata: a crash leaves only unreferenced blobs, which gc removes). A
directory (OCI layout) is read in place.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from typing import BinaryIO

from berth.content import ContentStore
from berth.errors import InvalidArgument, NotFound
from berth.oci import digest as dg

SMALL = 1 << 20


def _clean(name: str) -> str:
    n = posixpath.normpath(name.lstrip("/"))
    return "" if n == "." else n


class Source:
    """Read access to an archive's files by path."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        raise NotImplementedError

    def blob(self, name: str, expected: str | None = None) -> str:
        """Digest of the file, stored in the content store (verified against expected)."""
        raise NotImplementedError


class TarSource(Source):
    def __init__(self, stream: BinaryIO, cs: ContentStore, on_blob=None) -> None:
        self.cs = cs
        self._small: dict[str, bytes] = {}
        self._blobs: dict[str, str] = {}
        self._links: dict[str, str] = {}
        self._on_blob = on_blob or (lambda d: None)
        try:
            tf = tarfile.open(fileobj=stream, mode="r|*")  # noqa: SIM115 - closed below
        except tarfile.TarError as e:
            raise InvalidArgument(f"archive is not a tar file: {e}")
        try:
            for m in tf:
                name = _clean(m.name)
                if not name or name.startswith(".."):
                    continue
                if m.isfile():
                    f = tf.extractfile(m)
                    assert f is not None
                    base = posixpath.basename(name)
                    expected = None
                    if name.startswith("blobs/") and name.count("/") == 2:
                        algo = name.split("/")[1]
                        if dg.is_valid(f"{algo}:{base}"):
                            expected = f"{algo}:{base}"
                    if m.size <= SMALL and expected is None:
                        self._small[name] = f.read()
                    else:
                        info = cs.write(f, expected=expected, size=m.size)
                        self._blobs[name] = info.digest
                        self._on_blob(info.digest)
                elif m.issym():
                    self._links[name] = _clean(posixpath.join(posixpath.dirname(name), m.linkname))
                elif m.islnk():
                    self._links[name] = _clean(m.linkname)
        except tarfile.TarError as e:
            raise InvalidArgument(f"archive is truncated or corrupt: {e}")
        finally:
            tf.close()

    def _resolve(self, name: str) -> str:
        name = _clean(name)
        for _ in range(16):
            if name in self._links:
                name = self._links[name]
            else:
                break
        return name

    def names(self) -> list[str]:
        return sorted(set(self._small) | set(self._blobs) | set(self._links))

    def has(self, name: str) -> bool:
        n = self._resolve(name)
        return n in self._small or n in self._blobs

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        n = self._resolve(name)
        if n in self._small:
            return self._small[n]
        if n in self._blobs:
            d = self._blobs[n]
            if self.cs.info(d).size > limit:
                raise InvalidArgument(f"archive member {name!r} is too large to be metadata")
            return self.cs.read_bytes(d)
        raise NotFound(f"archive has no file {name!r}")

    def blob(self, name: str, expected: str | None = None) -> str:
        n = self._resolve(name)
        if n in self._blobs:
            d = self._blobs[n]
            if expected is not None and d != expected:
                raise InvalidArgument(f"archive member {name!r} has digest {d}, expected {expected}")
            return d
        if n in self._small:
            info = self.cs.write(self._small[n], expected=expected)
            self._on_blob(info.digest)
            self._blobs[n] = info.digest
            return info.digest
        raise NotFound(f"archive has no file {name!r}")


class DirSource(Source):
    def __init__(self, root: str, cs: ContentStore, on_blob=None) -> None:
        self.root = os.path.realpath(root)
        self.cs = cs
        self._on_blob = on_blob or (lambda d: None)

    def _path(self, name: str) -> str:
        p = os.path.realpath(os.path.join(self.root, _clean(name)))
        if p != self.root and not p.startswith(self.root + "/"):
            raise InvalidArgument(f"{name!r} points outside {self.root}")
        return p

    def names(self) -> list[str]:
        out = []
        for dirpath, _, files in os.walk(self.root):
            for f in files:
                out.append(os.path.relpath(os.path.join(dirpath, f), self.root))
        return sorted(out)

    def has(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        p = self._path(name)
        try:
            if os.path.getsize(p) > limit:
                raise InvalidArgument(f"{p} is too large to be metadata")
            with open(p, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFound(f"{self.root} has no file {name!r}")

    def blob(self, name: str, expected: str | None = None) -> str:
        p = self._path(name)
        if expected is not None and self.cs.exists(expected):
            self._on_blob(expected)
            return expected
        try:
            with open(p, "rb") as f:
                info = self.cs.write(f, expected=expected)
        except FileNotFoundError:
            raise NotFound(f"{self.root} has no file {name!r}")
        self._on_blob(info.digest)
        return info.digest
