"""Driver selection, the recorded choice, and overlay's mount paths for deep images."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from berth import errors
from berth.linux import libc, mountinfo
from berth.storage import detect, get_driver, recorded_driver
from berth.storage.overlay import OverlayDriver

from .conformance import C1
from .tarbuild import Layer, tree


@pytest.fixture
def home(tmp_path):
    h = str(tmp_path / "store")
    yield h
    left = mountinfo.mounts_under(str(tmp_path))
    for mp, _ in left:
        libc.umount(mp)
    assert not left, left


def test_detect_prefers_overlay_and_records_it(home):
    drv = get_driver(None, home)
    assert drv.name == "overlay"
    assert recorded_driver(home) == "overlay"
    assert get_driver(None, home).name == "overlay"
    assert get_driver("overlay2", home).name == "overlay"  # docker's name is an alias


def test_other_driver_refused_on_existing_store(home):
    get_driver("vfs", home)
    with pytest.raises(errors.Conflict, match=r"created with driver 'vfs'.*'overlay'"):
        get_driver("overlay", home)
    assert get_driver(None, home).name == "vfs"


def test_unknown_driver(home):
    with pytest.raises(errors.InvalidArgument, match="zfs"):
        get_driver("zfs", home)
    assert recorded_driver(home) is None


def test_btrfs_refused_off_btrfs(home):
    with pytest.raises(errors.Unsupported, match="not on a btrfs"):
        get_driver("btrfs", home)
    assert recorded_driver(home) is None


def test_detect_falls_back_to_vfs_where_overlay_cannot_mount(tmp_path):
    """An overlay's upper dir cannot itself live on an overlay: a home there must get vfs."""
    base = tmp_path / "ovl"
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir(parents=True)
    merged = str(base / "merged")
    libc.mount("overlay", merged, "overlay", 0,
               f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work")
    try:
        assert detect(os.path.join(merged, "home")) == "vfs"
    finally:
        libc.umount(merged)


def test_detect_btrfs_when_overlay_unusable(btrfs_mount, unique_name, monkeypatch):
    import berth.storage as storage

    monkeypatch.setattr(storage, "overlay_usable", lambda home: None)
    assert detect(os.path.join(btrfs_mount, unique_name)) == "btrfs"


@pytest.mark.parametrize("mode", ["classic", "fsconfig", "chdir"])
def test_overlay_mount_modes(request, home, mode):
    """Each way of mounting gives the same merged tree; classic only while options fit a page."""
    short = tempfile.mkdtemp(prefix="b")  # a short home: classic mount(2) options fit 40 layers


    def undo() -> None:
        for mp, _ in mountinfo.mounts_under(short):
            libc.umount(mp)
        shutil.rmtree(short, ignore_errors=True)

    request.addfinalizer(undo)
    drv = OverlayDriver(os.path.join(short if mode == "classic" else home, "overlay"), mount_mode=mode)
    n = 40 if mode == "classic" else 90
    parent = None
    for i in range(n):
        lid = f"{i + 1:064x}"
        drv.apply_diff(lid, parent, Layer().file(f"f{i:03d}", b"x").stream())
        parent = lid
    drv.create_rw(C1, parent)
    root = drv.get(C1)
    try:
        assert len(tree(root)) == n
        with open(os.path.join(root, "written"), "w") as f:
            f.write("upper")
    finally:
        drv.put(C1)
    assert os.path.exists(os.path.join(drv.home, C1, "diff", "written"))
    drv.cleanup()
    assert mountinfo.mounts_under(drv.home) == []


def test_overlay_options_exceed_a_page_for_deep_images(home):
    """The 130-layer case above really is past mount(2)'s limit with absolute links."""
    drv = OverlayDriver(os.path.join(home, "overlay"))
    one = len(os.path.join(drv.home, "l", "X" * 26)) + 1
    assert one * 130 > os.sysconf("SC_PAGE_SIZE")


def test_read_only_layer_get(home):
    drv = get_driver("overlay", home)
    drv.apply_diff("a" * 64, None, Layer().file("one", b"1").stream())
    drv.apply_diff("b" * 64, "a" * 64, Layer().file("two", b"2").stream())
    base = drv.get("a" * 64)
    top = drv.get("b" * 64)
    try:
        assert sorted(tree(base)) == ["/one"]
        assert sorted(tree(top)) == ["/one", "/two"]
        with pytest.raises(OSError):
            open(os.path.join(top, "three"), "w").close()
    finally:
        drv.put("a" * 64)
        drv.put("b" * 64)
    assert not mountinfo.is_mountpoint(top)


def test_overlay_repairs_links_after_crash(home):
    drv = get_driver("overlay", home)
    drv.apply_diff("a" * 64, None, Layer().file("one", b"1").stream())
    link = drv._link_of("a" * 64)
    os.unlink(os.path.join(drv.home, "l", link))
    os.symlink("../gone/diff", os.path.join(drv.home, "l", "DANGLING"))
    again = get_driver("overlay", home)
    assert os.path.realpath(os.path.join(again.home, "l", link)) == os.path.join(again.home, "a" * 64, "diff")
    assert not os.path.lexists(os.path.join(again.home, "l", "DANGLING"))


def test_status_names_backing_filesystem(home):
    assert ["Backing Filesystem", "extfs"] in get_driver("overlay", home).status()


def test_btrfs_removes_subvolumes_a_container_created(btrfs_mount, unique_name):
    from berth.storage import _btrfs

    home = os.path.join(btrfs_mount, unique_name)
    drv = get_driver("btrfs", home)
    drv.apply_diff("a" * 64, None, Layer().file("one", b"1").stream())
    drv.create_rw(C1, "a" * 64)
    root = drv.get(C1)
    os.makedirs(os.path.join(root, "var/lib"))
    _btrfs.create_subvolume(os.path.join(root, "var/lib/inner"))
    _btrfs.create_subvolume(os.path.join(root, "var/lib/inner/deeper"))
    assert _btrfs.is_subvolume(os.path.join(root, "var/lib/inner/deeper"))
    drv.put(C1)
    drv.remove(C1)
    drv.remove("a" * 64)
    assert drv.list() == []
    assert [e for e in os.listdir(drv.home) if not e.startswith(".lock")] == []
