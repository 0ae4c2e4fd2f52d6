"""Images for the tests and benchmarks, made from berth.bootstrap's busybox root filesystem (no registry).

  rootfs_tar(root, out)        a root filesystem as a deterministic tar (`import` input, or a first layer)
  busybox_rootfs_tar(path)     the busybox root filesystem as such a tar file
  files_tar(files)             a tar of a few regular files (a small layer)
  docker_archive(path, ref, layers)
                               a `docker save` archive that berth, docker, podman and `ctr images import` load

Only tests and benchmarks use this module.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from typing import BinaryIO

EPOCH = "1970-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# A layer of docker_archive: (its history's created_by, a function writing the layer's tar to a stream).
Layer = tuple[str, Callable[[BinaryIO], None]]


def rootfs_tar(root: str, out: BinaryIO) -> None:
    """Everything below root as a tar: sorted, numeric owners, every mtime 0, so the same tree always
    gives the same bytes (the same layer digest)."""
    from berth.layers import tar_directory

    tar_directory(root, out, source_date_epoch=0)


def busybox_rootfs_tar(path: str) -> str:
    """Write rootfs_tar of berth.bootstrap.make_rootfs's busybox tree to path; returns path."""
    from berth.bootstrap import make_rootfs

    tmp = tempfile.mkdtemp(prefix="berth-busybox-")
    try:
        root = make_rootfs(os.path.join(tmp, "rootfs"))
        with open(path, "wb") as f:
            rootfs_tar(root, f)
    finally:
        shutil.rmtree(tmp)
    return path


def member(name: str, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    """A regular file entry owned by 0:0 with mtime 0."""
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = size, mode
    return ti


def files_tar(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """A tar of regular files (name -> content), in the order given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            tf.addfile(member(name, len(data), mode), io.BytesIO(data))
    return buf.getvalue()


def tar_file_layer(path: str) -> Callable[[BinaryIO], None]:
    """A docker_archive layer writer copying an existing tar file as it is."""
    def write(out: BinaryIO) -> None:
        with open(path, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
    return write


def bytes_layer(data: bytes) -> Callable[[BinaryIO], None]:
    return lambda out: out.write(data)


class _Hashing(io.RawIOBase):
    """A write-only file that passes bytes on and hashes them (a layer's diff_id)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.h = f, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.h.update(b)
        return self.f.write(b)


def docker_archive(path: str, ref: str, layers: Sequence[Layer], cmd: Sequence[str] = ("sh",)) -> str:
    """Write a docker-archive (manifest.json, <config>.json, <diff id>/layer.tar) of one image tagged
    ref, of the host's architecture, running cmd; returns path. Layers are staged one at a time in a
    temp file, so a large one is never held in memory."""
    from berth.oci.image import host_platform

    diff_ids: list[str] = []
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for _created_by, write in layers:
            with tempfile.TemporaryFile() as tmp:
                hashing = _Hashing(tmp)
                write(hashing)  # type: ignore[arg-type]
                hexd = hashing.h.hexdigest()
                size = tmp.tell()
                tmp.seek(0)
                d = member(hexd, mode=0o755)
                d.type = tarfile.DIRTYPE
                tf.addfile(d)
                tf.addfile(member(f"{hexd}/layer.tar", size), tmp)
            diff_ids.append(hexd)
        config = {
            "architecture": host_platform()["architecture"], "os": "linux", "created": EPOCH,
            "config": {"Env": [PATH_ENV], "Cmd": list(cmd)},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
            "history": [{"created": EPOCH, "created_by": created_by} for created_by, _ in layers],
        }
        cbytes = json.dumps(config, separators=(",", ":")).encode()
        cname = hashlib.sha256(cbytes).hexdigest() + ".json"
        tf.addfile(member(cname, len(cbytes)), io.BytesIO(cbytes))
        manifest = [{"Config": cname, "RepoTags": [ref], "Layers": [f"{d}/layer.tar" for d in diff_ids]}]
        mbytes = json.dumps(manifest).encode()
        tf.addfile(member("manifest.json", len(mbytes)), io.BytesIO(mbytes))
    return path
