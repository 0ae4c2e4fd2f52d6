import io
import os
import stat
import subprocess

import pytest

from berth.layers import apply_layer

from .layer_helpers import build_tar, entry

PARENT = build_tar(
    entry("a", "dir"),
    entry("a/b", data=b"b"),
    entry("a/c", data=b"c"),
    entry("a/sub", "dir"),
    entry("a/sub/deep", data=b"deep"),
    entry("d", "dir"),
    entry("d/e", data=b"e"),
    entry("d/f", "dir"),
    entry("d/f/g", data=b"g"),
    entry("keep", data=b"k"),
)
CHILD = build_tar(
    entry("a", "dir"),
    entry("a/.wh.b", data=b""),
    entry("a/.wh.sub", data=b""),  # a whole directory
    entry("a/.wh.never-existed", data=b""),
    entry("d", "dir"),
    entry("d/-sorts-first", data=b"new"),  # before the marker in tar order, still this layer's
    entry("d/.wh..wh..opq", data=b""),
    entry("d/new", data=b"n"),
    entry(".wh..wh..aufs-junk", data=b""),
)


def apply(tar: bytes, dest, mode: str):
    return apply_layer(io.BytesIO(tar), str(dest), whiteouts=mode)


def tree(root) -> list[str]:
    out = []
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(out)


def test_delete_mode_removes_from_the_parent_copy(tmp_path):
    dest = tmp_path / "snap"
    apply(PARENT, dest, "delete")
    apply(CHILD, dest, "delete")
    assert tree(dest) == ["a", "a/c", "d", "d/-sorts-first", "d/new", "keep"]


def is_whiteout(p) -> bool:
    st = os.lstat(p)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def test_overlay_mode_makes_char_devices_and_opaque_xattrs(tmp_path):
    dest = tmp_path / "diff"
    apply(CHILD, dest, "overlay")
    assert is_whiteout(dest / "a/b") and is_whiteout(dest / "a/sub") and is_whiteout(dest / "a/never-existed")
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"
    with pytest.raises(OSError):
        os.getxattr(dest / "a", "trusted.overlay.opaque")
    assert tree(dest) == ["a", "a/b", "a/never-existed", "a/sub", "d", "d/-sorts-first", "d/new"]


def test_overlay_mount_of_applied_layers_hides_whited_out_files(tmp_path):
    lower1, lower2, merged = tmp_path / "l1", tmp_path / "l2", tmp_path / "merged"
    apply(PARENT, lower1, "overlay")
    apply(CHILD, lower2, "overlay")
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower2}:{lower1}", str(merged)],
                   check=True)
    try:
        assert tree(merged) == ["a", "a/c", "d", "d/-sorts-first", "d/new", "keep"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    # the same result as applying both into one directory in delete mode
    snap = tmp_path / "snap"
    apply(PARENT, snap, "delete")
    apply(CHILD, snap, "delete")
    assert tree(snap) == ["a", "a/c", "d", "d/-sorts-first", "d/new", "keep"]


def test_whiteout_then_recreate_in_same_layer(tmp_path):
    dest = tmp_path / "snap"
    apply(PARENT, dest, "delete")
    replace_d = build_tar(entry(".wh.d", data=b""), entry("d", "dir"), entry("d/only", data=b"o"),
                          entry(".wh.keep", data=b""), entry("keep", "dir"))
    apply(replace_d, dest, "delete")
    assert os.path.isdir(dest / "keep") and tree(dest / "d") == ["only"]
    # overlay mode: the new "d" must hide the lower "d" (opaque), not merge with it
    lower, upper, merged = tmp_path / "lower", tmp_path / "upper", tmp_path / "merged"
    apply(PARENT, lower, "overlay")
    apply(replace_d, upper, "overlay")
    assert os.getxattr(upper / "d", "trusted.overlay.opaque") == b"y"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(merged)],
                   check=True)
    try:
        assert tree(merged / "d") == ["only"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    d2 = tmp_path / "ov"
    apply(build_tar(entry("x", data=b"1"), entry(".wh.x", data=b"")), d2, "overlay")
    assert is_whiteout(d2 / "x")
