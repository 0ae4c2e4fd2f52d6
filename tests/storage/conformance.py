"""One conformance suite for every storage driver (overlay, vfs, btrfs on a loopback filesystem).

Every test runs against real mounts, real btrfs subvolumes and real files; the `driver` fixture
(conftest.py) is parametrised over the three drivers and checks that nothing stays mounted.
"""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from berth import errors
from berth.linux import libc, mountinfo
from berth.storage import get_driver

from .tarbuild import Layer, tree

L1, L2, L3 = "1" * 64, "2" * 64, "3" * 64
C1, C2 = "c1" + "0" * 62, "c2" + "0" * 62
PY = sys.executable


def image(driver, *layers: Layer, ids: list[str] | None = None) -> list[str]:
    """Apply a chain of layer tars; returns their ids (bottom first)."""
    ids = ids or [f"{i + 1:064x}" for i in range(len(layers))]
    parent = None
    for lid, layer in zip(ids, layers, strict=True):
        driver.apply_diff(lid, parent, layer.stream())
        parent = lid
    return ids


def base_layer() -> Layer:
    return (
        Layer().dir("etc").file("etc/hosts", b"127.0.0.1 localhost\n").file("a", b"A")
        .dir("dir").file("dir/x", b"x").file("dir/y", b"y").dir("keep").file("keep/k", b"k")
    )


def visible(driver, id: str) -> dict[str, tuple]:
    path = driver.get(id)
    try:
        return tree(path)
    finally:
        driver.put(id)


def test_create_apply_get_put_remove(driver):
    ids = image(driver, base_layer(), Layer().file("a", b"A2").file("b", b"B"))
    assert all(driver.exists(i) for i in ids)
    driver.create_rw(C1, ids[-1])
    root = driver.get(C1)
    with open(os.path.join(root, "a"), "rb") as f:
        assert f.read() == b"A2"
    with open(os.path.join(root, "c"), "w") as f:
        f.write("container")
    driver.put(C1)
    # the write is in the container's layer, not in the image's
    assert "/c" not in visible(driver, ids[-1])
    assert visible(driver, C1)["/c"][-1] == b"container"
    for i in [C1, *reversed(ids)]:
        driver.remove(i)
        assert not driver.exists(i)
    assert driver.list() == []
    leftovers = [e for e in os.listdir(driver.home) if not e.startswith(".lock") and e != "l"]
    assert leftovers == []


def test_whiteouts_hide_lower_files(driver):
    ids = image(driver, base_layer(), Layer().whiteout("a").whiteout("keep/k"))
    driver.create_rw(C1, ids[-1])
    t = visible(driver, C1)
    assert "/a" not in t and "/keep/k" not in t
    assert "/keep" in t and "/etc/hosts" in t
    assert not any(".wh." in p for p in t)


def test_opaque_dirs(driver):
    ids = image(driver, base_layer(), Layer().dir("dir").opaque("dir").file("dir/z", b"z"))
    driver.create_rw(C1, ids[-1])
    t = visible(driver, C1)
    assert sorted(p for p in t if p.startswith("/dir/")) == ["/dir/z"]


def test_hardlinks_and_xattrs_survive(driver):
    layer = (
        Layer().dir("d").file("d/f", b"data", xattrs={"user.berth": b"v1", "trusted.berth": b"t"})
        .link("d/g", "d/f").file("dev-owned", b"o", mode=0o4750, uid=1000, gid=2000)
        .device("null", 1, 3)
    )
    ids = image(driver, layer, Layer().file("other", b"1"))
    driver.create_rw(C1, ids[-1])
    root = driver.get(C1)
    try:
        f, g = os.lstat(os.path.join(root, "d/f")), os.lstat(os.path.join(root, "d/g"))
        assert f.st_ino == g.st_ino and f.st_nlink == 2
        assert os.getxattr(os.path.join(root, "d/f"), "user.berth") == b"v1"
        assert os.getxattr(os.path.join(root, "d/f"), "trusted.berth") == b"t"
        o = os.lstat(os.path.join(root, "dev-owned"))
        assert (stat.S_IMODE(o.st_mode), o.st_uid, o.st_gid) == (0o4750, 1000, 2000)
        assert f.st_mtime == 1_700_000_000
        dev = os.lstat(os.path.join(root, "null"))
        assert stat.S_ISCHR(dev.st_mode) and dev.st_rdev == os.makedev(1, 3)
    finally:
        driver.put(C1)


def _mutate(root: str) -> None:
    with open(os.path.join(root, "a"), "ab") as f:
        f.write(b"-appended")
    os.unlink(os.path.join(root, "dir/x"))
    os.makedirs(os.path.join(root, "new/sub"))
    with open(os.path.join(root, "new/sub/file"), "w") as f:
        f.write("new")
    os.symlink("/etc/hosts", os.path.join(root, "new/link"))
    os.chmod(os.path.join(root, "etc/hosts"), 0o600)
    os.setxattr(os.path.join(root, "keep/k"), "user.added", b"x")
    for name in os.listdir(os.path.join(root, "keep")):
        os.unlink(os.path.join(root, "keep", name))
    os.rmdir(os.path.join(root, "keep"))


def test_diff_of_rw_layer_reproduces_its_changes(driver):
    ids = image(driver, base_layer())
    driver.create_rw(C1, ids[-1])
    root = driver.get(C1)
    try:
        _mutate(root)
        expected = tree(root)
    finally:
        driver.put(C1)
    out = io.BytesIO()
    driver.diff(C1, ids[-1], out)
    out.seek(0)
    driver.apply_diff(L3, ids[-1], out)  # the diff as a new image layer on the same parent
    driver.create_rw(C2, L3)
    assert visible(driver, C2) == expected


def test_changes_list(driver):
    ids = image(driver, base_layer())
    driver.create_rw(C1, ids[-1])
    root = driver.get(C1)
    try:
        _mutate(root)
    finally:
        driver.put(C1)
    got = set(driver.changes(C1, ids[-1]))
    for want in [("C", "/a"), ("D", "/dir/x"), ("A", "/new"), ("A", "/new/sub/file"), ("C", "/etc/hosts"),
                 ("D", "/keep")]:
        assert want in got, f"{want} missing from {sorted(got)}"
    assert ("C", "/dir/y") not in got and ("A", "/a") not in got


def test_deep_chain(driver):
    n = 64
    ids = [f"{i + 1:064x}" for i in range(n)]
    parent = None
    for i, lid in enumerate(ids):
        layer = Layer().file(f"f{i:02d}", str(i).encode())
        if i == n - 1:
            layer.whiteout("f00")
        driver.apply_diff(lid, parent, layer.stream())
        parent = lid
    driver.create_rw(C1, ids[-1])
    t = visible(driver, C1)
    assert sorted(t) == [f"/f{i:02d}" for i in range(1, n)]


def test_refcounted_mounts(driver):
    ids = image(driver, base_layer())
    driver.create_rw(C1, ids[-1])
    p1, p2 = driver.get(C1), driver.get(C1)
    assert p1 == p2 and driver.mounted(C1) == 2
    driver.put(C1)
    assert os.path.exists(os.path.join(p1, "etc/hosts")) and driver.mounted(C1) == 1
    driver.put(C1)
    assert driver.mounted(C1) == 0
    if driver.mounts:
        assert not mountinfo.is_mountpoint(p1)
        assert not os.path.exists(os.path.join(p1, "etc/hosts"))


def test_removal_refused_while_mounted_or_parent(driver):
    ids = image(driver, base_layer())
    driver.create_rw(C1, ids[-1])
    driver.get(C1)
    with pytest.raises(errors.Conflict, match="in use"):
        driver.remove(C1)
    driver.put(C1)
    with pytest.raises(errors.Conflict, match="child"):
        driver.remove(ids[-1])
    driver.remove(C1)
    driver.remove(ids[-1])


def test_bad_ids_and_missing_layers(driver):
    with pytest.raises(errors.InvalidArgument, match="invalid layer id"):
        driver.create("../escape", None)
    with pytest.raises(errors.NotFound, match="parent"):
        driver.create_rw(C1, L1)
    with pytest.raises(errors.NotFound):
        driver.get(C1)
    driver.create(L1, None)
    with pytest.raises(errors.AlreadyExists):
        driver.create(L1, None)
    assert driver.list() == [L1]


def test_unsafe_layer_leaves_nothing(driver):
    bad = Layer().file("ok", b"1").file("../../evil", b"x")
    with pytest.raises(errors.InvalidArgument, match="evil"):
        driver.apply_diff(L1, None, bad.stream())
    assert not driver.exists(L1)
    assert [e for e in os.listdir(driver.home) if e.startswith(".tmp")] == []


def _run_child(driver, body: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import os, signal, sys
        from berth.storage import get_driver
        d = get_driver({driver.name!r}, {os.path.dirname(driver.home)!r})
    """) + textwrap.dedent(body)
    return subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)


def test_cleanup_after_crash(driver):
    ids = image(driver, base_layer())
    driver.create_rw(C1, ids[-1])
    # a process mounts the container's root, then dies without put()
    r = _run_child(driver, f"""
        print(d.get({C1!r}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert r.returncode == -signal.SIGKILL, r.stderr
    mounted_path = r.stdout.strip()
    # a process dies halfway through creating a layer (its tar stream kills it mid-read)
    r = _run_child(driver, f"""
        import io, tarfile
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for i in range(50):
                ti = tarfile.TarInfo(f"f{{i}}"); ti.size = 4096
                t.addfile(ti, io.BytesIO(b"x" * 4096))
        data = buf.getvalue()
        class Dying(io.RawIOBase):
            pos = 0
            def readable(self): return True
            def readinto(self, b):
                if self.pos > len(data) // 2:
                    os.kill(os.getpid(), signal.SIGKILL)
                n = min(len(b), 8192, len(data) - self.pos)
                b[:n] = data[self.pos:self.pos + n]; self.pos += n
                return n
        d.apply_diff({L2!r}, {ids[-1]!r}, io.BufferedReader(Dying()))
    """)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert any(e.startswith(".tmp-") for e in os.listdir(driver.home))
    if driver.mounts:
        assert mountinfo.is_mountpoint(mounted_path)

    restarted = get_driver(driver.name, os.path.dirname(driver.home))  # startup recovery
    assert not any(e.startswith(".tmp-") for e in os.listdir(driver.home))
    assert not restarted.exists(L2)
    restarted.cleanup()
    assert mountinfo.mounts_under(driver.home) == []
    assert restarted.mounted(C1) == 0
    restarted.remove(C1)
    restarted.remove(ids[-1])
    assert restarted.list() == []


def test_mount_state_survives_restart(driver):
    ids = image(driver, base_layer())
    driver.create_rw(C1, ids[-1])
    r = _run_child(driver, f"print(d.get({C1!r}))")
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip()
    reopened = get_driver(driver.name, os.path.dirname(driver.home))
    assert reopened.mounted(C1) == 1
    assert os.path.exists(os.path.join(path, "etc/hosts"))
    reopened.put(C1)
    if driver.mounts:
        assert not mountinfo.is_mountpoint(path)


def test_size_accounting(driver):
    ids = image(driver, base_layer(), Layer().file("big", b"b" * 300_000))
    assert driver.size(ids[-1]) >= 300_000
    driver.create_rw(C1, ids[-1])
    assert driver.size(C1) < 4096
    root = driver.get(C1)
    try:
        with open(os.path.join(root, "new"), "wb") as f:
            f.write(b"n" * 1_000_000)
    finally:
        driver.put(C1)
    assert 1_000_000 <= driver.size(C1) < 1_000_000 + 64 * 1024


def _disk_used(home: str) -> int:
    """Bytes allocated below home: st_blocks per inode; on btrfs (snapshots share extents but have
    distinct inodes) `btrfs filesystem du`'s exclusive + set-shared extents (each extent once)."""
    os.sync()
    if libc.fs_magic(home) == libc.BTRFS_SUPER_MAGIC:
        out = subprocess.run(["btrfs", "filesystem", "du", "-s", "--raw", home], check=True,
                             capture_output=True, text=True).stdout.splitlines()[-1].split()
        return int(out[1]) + int(out[2])
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(home):
        for n in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, n))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def test_two_containers_share_image_layers(driver):
    image_bytes = 16 * 1024 * 1024
    ids = image(driver, base_layer(), Layer().file("blob", os.urandom(image_bytes)))
    before = _disk_used(driver.home)
    for cid in (C1, C2):
        driver.create_rw(cid, ids[-1])
        root = driver.get(cid)
        try:
            with open(os.path.join(root, "own"), "wb") as f:
                f.write(os.urandom(1024 * 1024))
        finally:
            driver.put(cid)
    grown = _disk_used(driver.home) - before
    if driver.name == "vfs":
        assert grown > 2 * image_bytes  # a full copy per layer: vfs shares nothing, by design
    else:
        assert 2 * 1024 * 1024 <= grown < image_bytes // 2, grown


def test_apply_into_created_layer_and_base_changes(driver):
    driver.create(L1, None)
    driver.apply_diff(L1, None, Layer().dir("d").file("d/f", b"1").stream())
    assert sorted(driver.changes(L1, None)) == [("A", "/d"), ("A", "/d/f")]
    with pytest.raises(errors.InvalidArgument, match="parent"):
        driver.changes(L1, L2)
    driver.create_rw(C1, L1)
    assert visible(driver, C1)["/d/f"][-1] == b"1"


def test_concurrent_get_put_keeps_count(driver):
    import threading

    ids = image(driver, base_layer())
    driver.create_rw(C1, ids[-1])
    errs: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(15):
                p = driver.get(C1)
                assert os.path.exists(os.path.join(p, "etc/hosts"))
                driver.put(C1)
        except BaseException as e:  # reported below
            errs.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errs == []
    assert driver.mounted(C1) == 0
    assert mountinfo.mounts_under(driver.home) == []
