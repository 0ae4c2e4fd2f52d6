"""Layer tars <-> directories: apply (whiteouts, path safety, xattrs), deterministic diff, compression."""

from berth.layers.apply import Applied, apply_layer
from berth.layers.compression import compress, compress_to, compressor, decompress, sniff
from berth.layers.paths import remove_tree

__all__ = [
    "Applied", "apply_layer", "compress", "compress_to", "compressor", "decompress", "remove_tree", "sniff",
]
