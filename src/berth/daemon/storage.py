"""The daemon's access to the storage core (berth.images.Store).

Until berth.images.Store lands, `DevStore` stands in with the same method names for the subset the
daemon uses (flat rootfs images, overlay container layers); it is only used when the import fails.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from typing import Any

from berth import errors

log = logging.getLogger("berthd.storage")


def open_store(root: str, driver: str | None) -> Any:
    try:
        from berth.images import Store  # type: ignore[attr-defined]
    except ImportError:
        log.warning("berth.images.Store is not available: using the daemon's development store")
        return DevStore(root, driver)
    return Store(root, driver=driver)


@dataclass
class DevImage:
    id: str
    config: dict
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    size: int = 0
    created: str = ""
    manifest: dict = field(default_factory=dict)


class DevStore:
    driver_name = "overlay"

    def __init__(self, root: str, driver: str | None = None) -> None:
        self.root = os.path.join(root, "devstore")
        os.makedirs(os.path.join(self.root, "images"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "containers"), exist_ok=True)
        self.volumes = None

    def _tags_path(self) -> str:
        return os.path.join(self.root, "tags.json")

    def _tags(self) -> dict[str, str]:
        try:
            with open(self._tags_path()) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _save_tags(self, tags: dict[str, str]) -> None:
        tmp = self._tags_path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(tags, f)
        os.replace(tmp, self._tags_path())

    @staticmethod
    def _norm(ref: str) -> str:
        last = ref.rsplit("/", 1)[-1]
        return ref if ":" in last or "@" in ref else ref + ":latest"

    def import_rootfs_tar(self, stream, ref: str | None = None, changes=(), message: str = "") -> DevImage:
        h = hashlib.sha256()
        tmpdir = os.path.join(self.root, "images", f"tmp-{os.getpid()}-{time.time_ns()}")
        os.makedirs(tmpdir)
        data = stream.read()
        h.update(data)
        iid = "sha256:" + h.hexdigest()
        dest = os.path.join(self.root, "images", iid[7:])
        if not os.path.exists(dest):
            import io

            os.makedirs(os.path.join(tmpdir, "rootfs"))
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                tf.extractall(os.path.join(tmpdir, "rootfs"), numeric_owner=True, filter="fully_trusted")
            cfg = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}
            with open(os.path.join(tmpdir, "config.json"), "w") as f:
                json.dump({"config": cfg, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "size": len(data)}, f)
            os.rename(tmpdir, dest)
        else:
            shutil.rmtree(tmpdir)
        if ref:
            tags = self._tags()
            tags[self._norm(ref)] = iid
            self._save_tags(tags)
        return self.resolve_image(iid)

    def resolve_image(self, ref: str) -> DevImage:
        tags = self._tags()
        iid = None
        if ref.startswith("sha256:"):
            iid = ref
        elif self._norm(ref) in tags:
            iid = tags[self._norm(ref)]
        else:
            for d in os.listdir(os.path.join(self.root, "images")):
                if len(ref) >= 4 and d.startswith(ref):
                    iid = "sha256:" + d
        if not iid or not os.path.isdir(os.path.join(self.root, "images", iid[7:])):
            raise errors.NotFound(f"No such image: {ref}")
        with open(os.path.join(self.root, "images", iid[7:], "config.json")) as f:
            meta = json.load(f)
        return DevImage(iid, meta["config"], [t for t, i in tags.items() if i == iid], [], meta["size"],
                        meta["created"])

    def list_images(self) -> list[DevImage]:
        return [self.resolve_image("sha256:" + d) for d in os.listdir(os.path.join(self.root, "images"))
                if not d.startswith("tmp-")]

    def _cdir(self, cid: str) -> str:
        return os.path.join(self.root, "containers", cid)

    def create_container_fs(self, cid: str, image_id: str) -> None:
        d = self._cdir(cid)
        for sub in ("upper", "work", "merged"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "image"), "w") as f:
            f.write(image_id)

    def mount_container_fs(self, cid: str) -> str:
        d = self._cdir(cid)
        merged = os.path.join(d, "merged")
        if os.path.ismount(merged):
            return merged
        with open(os.path.join(d, "image")) as f:
            iid = f.read().strip()
        lower = os.path.join(self.root, "images", iid[7:], "rootfs")
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={lower},upperdir={d}/upper,workdir={d}/work", merged], check=True)
        return merged

    def unmount_container_fs(self, cid: str) -> None:
        merged = os.path.join(self._cdir(cid), "merged")
        if os.path.ismount(merged):
            subprocess.run(["umount", "-l", merged], check=False)

    def remove_container_fs(self, cid: str) -> None:
        self.unmount_container_fs(cid)
        shutil.rmtree(self._cdir(cid), ignore_errors=True)

    def container_fs_size(self, cid: str) -> int:
        return 0
