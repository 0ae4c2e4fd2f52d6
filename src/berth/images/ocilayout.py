"""OCI image layout (image-spec image-layout.md), as a directory or a tar of one.

    oci-layout        {"imageLayoutVersion": "1.0.0"}
    index.json        an index; each entry names a tag in org.opencontainers.image.ref.name
    blobs/sha256/...  manifests, configs, layers

berth writes ref.name = the tag (what skopeo and umoci look up) and io.containerd.image.name = the full
reference (what containerd and docker use). Reading, a full reference in either wins; a bare tag
needs a repository name from the caller, or the image is loaded untagged.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from typing import BinaryIO

from berth.content import ContentStore
from berth.errors import InvalidArgument, Unsupported
from berth.images.pending import PendingImage
from berth.images.sources import Source
from berth.oci import digest as dg
from berth.oci import image as oi
from berth.oci import reference

LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def blob_path(digest: str) -> str:
    d = dg.parse(digest)
    return f"blobs/{d.algorithm}/{d.hex}"


def _tag_from(ann: dict, name: str | None, where: str) -> str | None:
    full = ann.get(oi.ANNOTATION_CONTAINERD_NAME)
    rn = ann.get(oi.ANNOTATION_REF_NAME)
    try:
        if full:
            return str(reference.parse(full))
        if rn and (":" in rn or "/" in rn):
            return str(reference.parse(rn))
        if rn:
            if name:
                return str(reference.parse(name, default_tag=False).with_tag(rn))
            return None
    except InvalidArgument as e:
        raise InvalidArgument(f"{where}.annotations: {e}")
    return None


def read(src: Source, cs: ContentStore, name: str | None = None,
         platform: dict | None = None) -> list[PendingImage]:
    layout = oi.parse_json(src.read("oci-layout"), "oci-layout")
    if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
        raise InvalidArgument("oci-layout: imageLayoutVersion must be \"1.0.0\"")
    index = oi.validate_index(oi.parse_json(src.read("index.json"), "index.json"), "index.json")
    by_config: dict[str, PendingImage] = {}
    for i, desc in enumerate(index["manifests"]):
        where = f"index.json.manifests[{i}]"
        tag = _tag_from(desc.get("annotations") or {}, name, where)
        for _ in range(8):  # nested indexes: pick the platform each time
            if desc["mediaType"] not in oi.INDEX_TYPES:
                break
            sub = oi.parse_json(src.read(blob_path(desc["digest"])), f"{where} ({desc['digest']})")
            src.blob(blob_path(desc["digest"]), expected=desc["digest"])
            sub = oi.validate_index(sub, f"index {desc['digest']}")
            desc = oi.select_manifest(sub, platform)
            where = f"index {desc['digest']}"
        if desc["mediaType"] not in oi.MANIFEST_TYPES:
            continue  # artifacts, signatures...: not images
        mdigest = src.blob(blob_path(desc["digest"]), expected=desc["digest"])
        m = oi.validate_manifest(oi.parse_json(cs.read_bytes(mdigest), f"manifest {mdigest}"),
                                 f"manifest {mdigest}")
        cfg = m["config"]
        cdigest = src.blob(blob_path(cfg["digest"]), expected=cfg["digest"])
        layers = []
        for j, ld in enumerate(m["layers"]):
            mt = ld["mediaType"]
            if mt not in oi.LAYER_TYPES:
                raise Unsupported(f"manifest {mdigest}.layers[{j}]: media type {mt!r} is not a layer type")
            if not src.has(blob_path(ld["digest"])) and not cs.exists(ld["digest"]):
                raise InvalidArgument(
                    f"manifest {mdigest}.layers[{j}]: blob {ld['digest']} is not in the layout"
                    + (" (foreign layer: berth does not fetch from urls)" if mt in oi.FOREIGN_LAYER_TYPES else "")
                )
            layers.append((src.blob(blob_path(ld["digest"]), expected=ld["digest"]), mt))
        p = by_config.get(cdigest)
        if p is None:
            p = by_config[cdigest] = PendingImage(
                cdigest, layers, mdigest, m.get("mediaType") or desc["mediaType"], where=where)
        if tag and tag not in p.tags:
            p.tags.append(tag)
    return list(by_config.values())


def index_entries(images: list[tuple[str, str, int, list[str]]]) -> dict:
    """images: (manifest digest, media type, size, full refs). One entry per tag (or one untagged)."""
    manifests = []
    for digest, mt, size, refs in images:
        if not refs:
            manifests.append({"mediaType": mt, "digest": digest, "size": size})
        for r in refs:
            ref = reference.parse(r)
            manifests.append({"mediaType": mt, "digest": digest, "size": size, "annotations": {
                oi.ANNOTATION_CONTAINERD_NAME: str(ref), oi.ANNOTATION_REF_NAME: ref.tag or "latest"}})
    return {"schemaVersion": 2, "mediaType": oi.OCI_INDEX, "manifests": manifests}


def write_dir(dest: str, blobs: list[str], index: dict, open_blob: Callable[[str], BinaryIO]) -> None:
    """Blobs first, index.json last (atomically): a crash never leaves an index naming missing blobs.
    An existing layout is extended: its other index entries are kept."""
    os.makedirs(dest, exist_ok=True)
    if not os.path.exists(os.path.join(dest, "oci-layout")):
        _write_atomic(os.path.join(dest, "oci-layout"), LAYOUT)
    for d in blobs:
        p = os.path.join(dest, blob_path(d))
        if os.path.exists(p):
            continue
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open_blob(d) as f:
            tmp = p + f".tmp-{os.getpid()}"
            with open(tmp, "wb") as out:
                while chunk := f.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.rename(tmp, p)
    ipath = os.path.join(dest, "index.json")
    if os.path.exists(ipath):
        with open(ipath, "rb") as f:
            old = oi.validate_index(oi.parse_json(f.read(), ipath), ipath)
        names = {(e.get("annotations") or {}).get(oi.ANNOTATION_REF_NAME) for e in index["manifests"]} - {None}
        kept = [e for e in old["manifests"]
                if (e.get("annotations") or {}).get(oi.ANNOTATION_REF_NAME) not in names
                and e not in index["manifests"]]
        index = dict(index, manifests=kept + index["manifests"])
    _write_atomic(ipath, json.dumps(index, indent=None).encode())


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def write_tar(out: BinaryIO, blobs: list[str], index: dict, open_blob: Callable[[str], BinaryIO],
              size_of: Callable[[str], int]) -> None:
    tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed below

    def add(name: str, data: bytes | None = None, f: BinaryIO | None = None, size: int = 0) -> None:
        ti = tarfile.TarInfo(name)
        ti.mtime = 0
        if data is None and f is None:
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
            return
        ti.mode = 0o644
        ti.size = len(data) if data is not None else size
        tf.addfile(ti, io.BytesIO(data) if data is not None else f)

    try:
        add("oci-layout", LAYOUT)
        add("blobs/")
        for algo in sorted({dg.parse(d).algorithm for d in blobs}):
            add(f"blobs/{algo}/")
        for d in blobs:
            with open_blob(d) as f:
                add(blob_path(d), f=f, size=size_of(d))
        add("index.json", json.dumps(index).encode())
    finally:
        tf.close()
