"""OCI image spec and Docker schema2: media types, validation of manifests, indexes, configs and
descriptors (errors name the offending field), platform matching, chain ids. Pure data, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
from collections.abc import Iterable
from typing import Any

from berth.errors import InvalidArgument, Unsupported
from berth.oci import digest as _digest

# OCI image-spec media types.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = OCI_LAYER_ND + "+gzip"
OCI_LAYER_ND_ZSTD = OCI_LAYER_ND + "+zstd"

# Docker image manifest v2, schema 2.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
# layer media type -> compression ("" = none)
LAYER_TYPES = {
    OCI_LAYER: "", OCI_LAYER_GZIP: "gzip", OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_ND: "", OCI_LAYER_ND_GZIP: "gzip", OCI_LAYER_ND_ZSTD: "zstd",
    DOCKER_LAYER: "", DOCKER_LAYER_GZIP: "gzip", DOCKER_LAYER_ZSTD: "zstd",
    DOCKER_FOREIGN_LAYER: "gzip",
}
FOREIGN_LAYER_TYPES = (DOCKER_FOREIGN_LAYER, OCI_LAYER_ND, OCI_LAYER_ND_GZIP, OCI_LAYER_ND_ZSTD)

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
EMPTY_LAYER_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"  # 1024 zero bytes


def layer_media_type(compression: str, oci: bool = True) -> str:
    table = {"": (OCI_LAYER, DOCKER_LAYER), "gzip": (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP),
             "zstd": (OCI_LAYER_ZSTD, DOCKER_LAYER_ZSTD)}
    if compression not in table:
        raise Unsupported(f"layer compression {compression!r} is not supported (gzip, zstd, none)")
    return table[compression][0 if oci else 1]


def _where(where: str, field: str) -> str:
    return f"{where}.{field}" if where else field


def _need(obj: dict, field: str, typ: type | tuple, where: str, required: bool = True) -> Any:
    if field not in obj or obj[field] is None:
        if required:
            raise InvalidArgument(f"{_where(where, field)}: required field is missing")
        return None
    val = obj[field]
    if isinstance(val, bool) and typ is int:
        raise InvalidArgument(f"{_where(where, field)}: must be an integer, got a boolean")
    if not isinstance(val, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise InvalidArgument(f"{_where(where, field)}: must be {names}, got {type(val).__name__}")
    return val


def _object(doc: Any, where: str) -> dict:
    if isinstance(doc, (bytes, bytearray, str)):
        try:
            doc = json.loads(doc)
        except ValueError as e:
            raise InvalidArgument(f"{where or 'document'}: not valid JSON: {e}")
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{where or 'document'}: must be a JSON object, got {type(doc).__name__}")
    return doc


def _annotations(obj: dict, where: str) -> None:
    ann = _need(obj, "annotations", dict, where, required=False)
    for k, v in (ann or {}).items():
        if not isinstance(v, str):
            raise InvalidArgument(f"{_where(where, 'annotations')}[{k!r}]: value must be a string")


def validate_platform(p: Any, where: str = "platform") -> dict:
    p = _object(p, where)
    for f in ("architecture", "os"):
        if not _need(p, f, str, where):
            raise InvalidArgument(f"{_where(where, f)}: must not be empty")
    _need(p, "variant", str, where, required=False)
    _need(p, "os.version", str, where, required=False)
    feats = _need(p, "os.features", list, where, required=False)
    if feats and not all(isinstance(x, str) for x in feats):
        raise InvalidArgument(f"{_where(where, 'os.features')}: must be a list of strings")
    return p


def validate_descriptor(d: Any, where: str = "descriptor") -> dict:
    d = _object(d, where)
    mt = _need(d, "mediaType", str, where)
    if not mt or "/" not in mt:
        raise InvalidArgument(f"{_where(where, 'mediaType')}: {mt!r} is not a media type")
    dg = _need(d, "digest", str, where)
    try:
        _digest.parse(dg)
    except InvalidArgument as e:
        raise InvalidArgument(f"{_where(where, 'digest')}: {e}")
    size = _need(d, "size", int, where)
    if size < 0:
        raise InvalidArgument(f"{_where(where, 'size')}: must not be negative, got {size}")
    urls = _need(d, "urls", list, where, required=False)
    if urls and not all(isinstance(u, str) for u in urls):
        raise InvalidArgument(f"{_where(where, 'urls')}: must be a list of strings")
    _annotations(d, where)
    if d.get("platform") is not None:
        validate_platform(d["platform"], _where(where, "platform"))
    return d


def validate_manifest(doc: Any, where: str = "manifest") -> dict:
    """An OCI image manifest or a Docker schema2 manifest."""
    m = _object(doc, where)
    if _need(m, "schemaVersion", int, where) != 2:
        raise InvalidArgument(f"{_where(where, 'schemaVersion')}: must be 2, got {m['schemaVersion']}")
    mt = _need(m, "mediaType", str, where, required=False)
    if mt is not None and mt not in MANIFEST_TYPES:
        raise InvalidArgument(f"{_where(where, 'mediaType')}: {mt!r} is not an image manifest media type")
    if "manifests" in m:
        raise InvalidArgument(f"{where}: has 'manifests': this is an index, not an image manifest")
    cfg = validate_descriptor(_need(m, "config", dict, where), _where(where, "config"))
    if mt == DOCKER_MANIFEST and cfg["mediaType"] != DOCKER_CONFIG:
        raise InvalidArgument(f"{where}.config.mediaType: Docker manifests need {DOCKER_CONFIG}")
    layers = _need(m, "layers", list, where)
    for i, layer in enumerate(layers):
        validate_descriptor(layer, f"{where}.layers[{i}]")
    _annotations(m, where)
    return m


def validate_index(doc: Any, where: str = "index") -> dict:
    """An OCI image index or a Docker manifest list."""
    x = _object(doc, where)
    if _need(x, "schemaVersion", int, where) != 2:
        raise InvalidArgument(f"{_where(where, 'schemaVersion')}: must be 2, got {x['schemaVersion']}")
    mt = _need(x, "mediaType", str, where, required=False)
    if mt is not None and mt not in INDEX_TYPES:
        raise InvalidArgument(f"{_where(where, 'mediaType')}: {mt!r} is not an image index media type")
    for i, d in enumerate(_need(x, "manifests", list, where)):
        validate_descriptor(d, f"{where}.manifests[{i}]")
    _annotations(x, where)
    return x


def validate_config(doc: Any, where: str = "config") -> dict:
    """An image configuration (OCI config == Docker container image v1 for what matters here)."""
    c = _object(doc, where)
    for f in ("architecture", "os"):
        if not _need(c, f, str, where):
            raise InvalidArgument(f"{_where(where, f)}: must not be empty")
    rootfs = _need(c, "rootfs", dict, where)
    if _need(rootfs, "type", str, f"{where}.rootfs") != "layers":
        raise InvalidArgument(f"{where}.rootfs.type: must be 'layers', got {rootfs['type']!r}")
    diff_ids = _need(rootfs, "diff_ids", list, f"{where}.rootfs")
    for i, d in enumerate(diff_ids):
        if not isinstance(d, str) or not _digest.is_valid(d):
            raise InvalidArgument(f"{where}.rootfs.diff_ids[{i}]: {d!r} is not a valid digest")
    _need(c, "created", str, where, required=False)
    _need(c, "author", str, where, required=False)
    cc = _need(c, "config", dict, where, required=False) or {}
    cw = f"{where}.config"
    for f in ("Env", "Entrypoint", "Cmd"):
        v = _need(cc, f, list, cw, required=False)
        if v and not all(isinstance(s, str) for s in v):
            raise InvalidArgument(f"{cw}.{f}: must be a list of strings")
    for f in ("ExposedPorts", "Volumes", "Labels"):
        _need(cc, f, dict, cw, required=False)
    for f in ("User", "WorkingDir", "StopSignal"):
        _need(cc, f, str, cw, required=False)
    hist = _need(c, "history", list, where, required=False) or []
    non_empty = 0
    for i, h in enumerate(hist):
        if not isinstance(h, dict):
            raise InvalidArgument(f"{where}.history[{i}]: must be an object")
        for f in ("created", "created_by", "author", "comment"):
            _need(h, f, str, f"{where}.history[{i}]", required=False)
        if not h.get("empty_layer"):
            non_empty += 1
    if hist and non_empty != len(diff_ids):
        raise InvalidArgument(
            f"{where}.history: {non_empty} entries without empty_layer but {len(diff_ids)} rootfs.diff_ids"
        )
    return c


def parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"{what}: not valid JSON: {e}")


def canonical_json(obj: Any) -> bytes:
    """Stable bytes for documents berth writes (digests must not depend on dict order)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


# --- platforms -------------------------------------------------------------------------------------

_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64", "armhf": "arm", "armel": "arm", "arm": "arm",
    "i386": "386", "i686": "386", "386": "386",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}


def normalize_platform(p: dict) -> dict:
    """Canonical os/architecture/variant, as containerd's platforms package describes them."""
    os_ = (p.get("os") or "").lower()
    arch = (p.get("architecture") or "").lower()
    variant = (p.get("variant") or "").lower()
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch == "arm64":
        variant = "" if variant in ("v8", "8") else variant
    elif arch == "arm":
        variant = {"": "v7", "7": "v7", "6": "v6", "5": "v5", "8": "v8"}.get(variant, variant)
    elif arch == "amd64":
        variant = "" if variant == "v1" else variant
    out = {"os": os_, "architecture": arch}
    if variant:
        out["variant"] = variant
    return out


def host_platform() -> dict:
    return normalize_platform({"os": "linux", "architecture": _platform.machine()})


def platform_matches(want: dict, have: dict) -> bool:
    """`have` (from an index entry) satisfies `want`: same os and arch; if want names a variant, the
    same variant (an arm64 image without variant counts as v8)."""
    w, h = normalize_platform(want), normalize_platform(have)
    if w["os"] != h["os"] or w["architecture"] != h["architecture"]:
        return False
    return not w.get("variant") or w.get("variant") == h.get("variant", "")


def select_manifest(index: dict, want: dict | None = None) -> dict:
    """Pick the descriptor for `want` (default: this host) from a validated index. Entries without a
    platform are taken only when nothing matches and they are the sole image manifest."""
    want = want or host_platform()
    manifests = [d for d in index.get("manifests", []) if d.get("mediaType") in MANIFEST_TYPES + INDEX_TYPES]
    for d in manifests:
        if d.get("platform") and platform_matches(want, d["platform"]):
            return d
    bare = [d for d in manifests if not d.get("platform")]
    if len(bare) == 1:
        return bare[0]
    plats = ", ".join(
        "/".join(filter(None, (d["platform"].get("os"), d["platform"].get("architecture"),
                               d["platform"].get("variant"))))
        for d in manifests if d.get("platform")
    )
    w = normalize_platform(want)
    raise InvalidArgument(
        f"no image for platform {'/'.join(filter(None, (w['os'], w['architecture'], w.get('variant'))))}"
        f" in the index (has: {plats or 'none'})"
    )


def config_platform(config: dict) -> dict:
    p = {"os": config.get("os", ""), "architecture": config.get("architecture", "")}
    if config.get("variant"):
        p["variant"] = config["variant"]
    return p
