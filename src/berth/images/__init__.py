"""Image store: the storage-core facade (`Store`), references/tags, import/export."""

from berth.images.model import Image
from berth.images.store import Store

__all__ = ["Image", "Store"]
