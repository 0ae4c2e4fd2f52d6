"""An image read from an archive, with its blobs already in the content store, not yet registered."""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.content import ContentStore
from berth.layers.compression import sniff
from berth.oci import image as oi


@dataclass
class PendingImage:
    config_digest: str
    layers: list[tuple[str, str]]                # (blob digest, media type), base first
    manifest_digest: str | None = None          # an original manifest to keep (OCI layout)
    manifest_media_type: str | None = None
    tags: list[str] = field(default_factory=list)  # normalised references
    where: str = ""                             # for error messages: which entry of which file


def layer_media_type_of(cs: ContentStore, blob: str, oci: bool = True) -> str:
    with cs.open(blob) as f:
        head = f.read(8)
    comp = sniff(head)
    if comp in ("bzip2", "xz"):
        from berth.errors import Unsupported

        raise Unsupported(f"layer blob {blob} is {comp}-compressed; layers may be plain, gzip or zstd")
    return oi.layer_media_type("" if comp == "none" else comp, oci)
