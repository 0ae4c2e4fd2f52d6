"""Layer tars <-> directories: apply (whiteouts, path safety, xattrs), deterministic diff, compression."""

from berth.layers.apply import Applied, apply_layer
from berth.layers.compression import compress, compress_to, compressor, decompress, sniff
from berth.layers.diff import changes_overlay, changes_trees, diff_overlay, diff_trees
from berth.layers.paths import remove_tree
from berth.layers.tarwriter import tar_directory

__all__ = [
    "Applied", "apply_layer", "changes_overlay", "changes_trees", "compress", "compress_to", "compressor",
    "decompress", "diff_overlay", "diff_trees", "remove_tree", "sniff", "tar_directory",
]
