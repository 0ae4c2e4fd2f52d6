"""berth.linux.mountinfo and the mount helpers of berth.linux.libc, on real mounts."""

from __future__ import annotations

import errno
import os

import pytest

from berth.linux import libc, mountinfo

TMPFS_MAGIC = 0x01021994


@pytest.fixture
def tmp(tmp_path):
    """tmp_path, with everything mounted below it unmounted afterwards (even on failure)."""
    yield tmp_path
    for mp, _ in mountinfo.mounts_under(str(tmp_path)):
        libc.umount2(mp, libc.MNT_DETACH)


def test_unescape():
    assert mountinfo.unescape("/plain/path") == "/plain/path"
    assert mountinfo.unescape(r"/a\040b\011c\012d\134e") == "/a b\tc\nd\\e"
    assert mountinfo.unescape(r"/short\04") == r"/short\04"  # not a full escape: kept as is


def test_parse_fields():
    text = ("36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n"
            "37 35 0:5 / /proc rw - proc proc rw\n")
    a, b = mountinfo.parse(text)
    assert a[3:5] == ["/mnt1", "/mnt/with space"]
    assert a[a.index("-") + 1:] == ["ext3", "/dev/root", "rw,errors=continue"]
    assert a[6:a.index("-")] == ["master:1", "shared:2"]
    assert b[4] == "/proc" and b[b.index("-") + 1] == "proc"


def test_mounts_under_deepest_first_and_umount(tmp):
    top = tmp / "a dir"  # a space: mountinfo escapes it
    inner = top / "inner"
    top.mkdir()
    libc.mount("tmpfs", str(top), "tmpfs", 0, "size=1m")
    inner.mkdir()
    libc.mount("tmpfs", str(inner), "tmpfs", 0, "size=1m")
    assert mountinfo.mounts_under(str(tmp)) == [(str(inner), "tmpfs"), (str(top), "tmpfs")]
    assert mountinfo.is_mountpoint(str(top)) and not mountinfo.is_mountpoint(str(tmp))
    assert libc.fs_magic(str(inner)) == TMPFS_MAGIC
    for mp, _ in mountinfo.mounts_under(str(tmp)):
        libc.umount(mp)
    assert mountinfo.mounts_under(str(tmp)) == []
    libc.umount(str(top))  # not a mount point any more: no error
    libc.umount(str(tmp / "missing"))


def test_umount_busy(tmp):
    libc.mount("tmpfs", str(tmp), "tmpfs", 0, "size=1m")
    fd = os.open(str(tmp / "f"), os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        with pytest.raises(OSError, match=f"umount {tmp}") as e:
            libc.umount(str(tmp), detach_if_busy=False)
        assert e.value.errno == errno.EBUSY and mountinfo.is_mountpoint(str(tmp))
        libc.umount(str(tmp))  # detached lazily
        assert not mountinfo.is_mountpoint(str(tmp))
    finally:
        os.close(fd)


def test_errors_name_the_path(tmp):
    with pytest.raises(OSError, match=f"on {tmp}/missing"):
        libc.mount("tmpfs", str(tmp / "missing"), "tmpfs")
    with pytest.raises(OSError, match=f"statfs {tmp}/missing"):
        libc.fs_magic(str(tmp / "missing"))
    with pytest.raises(OSError, match="syncfs /nowhere"):
        libc.syncfs(-1, "/nowhere")
    fd = os.open(str(tmp), os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc.syncfs(fd)
    finally:
        os.close(fd)


def test_mount_fsconfig(tmp):
    libc.mount_fsconfig("tmpfs", str(tmp), [("source", "berth-test"), ("size", "1m")], readonly=True)
    assert mountinfo.mounts_under(str(tmp)) == [(str(tmp), "tmpfs")]
    with pytest.raises(OSError) as e:
        open(tmp / "f", "w").close()
    assert e.value.errno == errno.EROFS
    libc.umount(str(tmp))
    with pytest.raises(OSError, match="fsconfig tmpfs bogus=1"):
        libc.mount_fsconfig("tmpfs", str(tmp), [("bogus", "1")])
    assert not mountinfo.is_mountpoint(str(tmp))


def test_mount_in_dir_resolves_relative_paths(tmp):
    (tmp / "src").mkdir()
    (tmp / "src" / "hello").write_text("hi")
    (tmp / "dst").mkdir()
    cwd = os.getcwd()
    libc.mount_in_dir(str(tmp), "src", str(tmp / "dst"), "none", libc.MS_BIND, "")
    assert os.getcwd() == cwd  # the chdir happened in a child
    assert (tmp / "dst" / "hello").read_text() == "hi"
    libc.umount(str(tmp / "dst"))
    with pytest.raises(OSError, match=f"on {tmp}/dst"):
        libc.mount_in_dir(str(tmp), "nothing-here", str(tmp / "dst"), "none", libc.MS_BIND, "")
    with pytest.raises(OSError, match="child failed"):
        libc.mount_in_dir(str(tmp / "no-such-dir"), "src", str(tmp / "dst"), "none", libc.MS_BIND, "")
