"""docker-archive: the `docker save` / `docker load` format.

    manifest.json     [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"], "Layers": ["<id>/layer.tar"]}]
    repositories      {"busybox": {"latest": "<top layer id>"}}   (legacy)
    <hex>.json        image config
    <id>/layer.tar    uncompressed layer; <id>/VERSION "1.0"; <id>/json legacy v1 layer metadata

Several images and tags fit in one archive; layers shared by images are written once.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from typing import BinaryIO

from berth.content import ContentStore
from berth.errors import InvalidArgument
from berth.images.pending import PendingImage, layer_media_type_of
from berth.images.sources import Source
from berth.oci import reference
from berth.oci.image import parse_json


def read(src: Source, cs: ContentStore) -> list[PendingImage]:
    doc = parse_json(src.read("manifest.json"), "manifest.json")
    if not isinstance(doc, list):
        raise InvalidArgument("manifest.json: must be a JSON array of image entries")
    out = []
    for i, e in enumerate(doc):
        where = f"manifest.json[{i}]"
        if not isinstance(e, dict):
            raise InvalidArgument(f"{where}: must be an object")
        cfg = e.get("Config")
        if not isinstance(cfg, str) or not cfg:
            raise InvalidArgument(f"{where}.Config: required string is missing")
        layers = e.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidArgument(f"{where}.Layers: must be a list of paths")
        tags = e.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
            raise InvalidArgument(f"{where}.RepoTags: must be a list of strings")
        norm = []
        for t in tags:
            try:
                ref = reference.parse(t)
            except InvalidArgument as ex:
                raise InvalidArgument(f"{where}.RepoTags: {ex}")
            if ref.digest is not None:
                raise InvalidArgument(f"{where}.RepoTags: {t!r} has a digest; only tags can be loaded")
            norm.append(str(ref))
        if not src.has(cfg):
            raise InvalidArgument(f"{where}.Config: archive has no file {cfg!r}")
        cfg_digest = src.blob(cfg)
        blobs = []
        for j, name in enumerate(layers):
            if not src.has(name):
                raise InvalidArgument(f"{where}.Layers[{j}]: archive has no file {name!r}")
            d = src.blob(name)
            blobs.append((d, layer_media_type_of(cs, d)))
        out.append(PendingImage(cfg_digest, blobs, tags=norm, where=where))
    return out


def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None, fileobj: BinaryIO | None = None,
         size: int = 0) -> None:
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    if data is None and fileobj is None:
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        tf.addfile(ti)
        return
    ti.mode = 0o644
    if data is not None:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        ti.size = size
        tf.addfile(ti, fileobj)


def v1_id(chain_id: str) -> str:
    """Legacy per-layer directory name: stable per chain (its content never changes)."""
    return hashlib.sha256(f"berth-v1 {chain_id}".encode()).hexdigest()


def write(out: BinaryIO, images: list[tuple[str, bytes, list[tuple[str, str]], list[str]]],
          open_layer: Callable[[str], tuple[BinaryIO, int]]) -> None:
    """images: (image id, config bytes, [(chain id, diff id)], familiar repo tags).
    open_layer(chain_id) -> (uncompressed tar stream, size)."""
    tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed below
    written: set[str] = set()
    manifest = []
    repos: dict[str, dict[str, str]] = {}
    try:
        for image_id, config, layers, tags in images:
            cfg = json.loads(config)
            paths = []
            parent = None
            for chain, _diff_id in layers:
                lid = v1_id(chain)
                if lid not in written:
                    _add(tf, lid + "/")
                    _add(tf, lid + "/VERSION", b"1.0")
                    legacy = {"id": lid, "created": "1970-01-01T00:00:00Z",
                              "os": cfg.get("os", "linux"), "architecture": cfg.get("architecture", "")}
                    if parent:
                        legacy["parent"] = parent
                    _add(tf, lid + "/json", json.dumps(legacy, sort_keys=True).encode())
                    f, size = open_layer(chain)
                    with f:
                        _add(tf, lid + "/layer.tar", fileobj=f, size=size)
                    written.add(lid)
                paths.append(lid + "/layer.tar")
                parent = lid
            hexid = image_id.split(":", 1)[1]
            if hexid + ".json" not in written:
                _add(tf, hexid + ".json", config)
                written.add(hexid + ".json")
            manifest.append({"Config": hexid + ".json", "RepoTags": tags or None, "Layers": paths})
            for t in tags:
                ref = reference.parse(t)
                if parent:
                    repos.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = parent
        _add(tf, "manifest.json", json.dumps(manifest).encode())
        if repos:
            _add(tf, "repositories", json.dumps(repos, sort_keys=True).encode())
    finally:
        tf.close()
