"""SIGKILL in the middle of load, commit and rmi; the next open is consistent and the operation redone."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import pytest

from berth.images import Store

from .conftest import open_store

SCRIPT = r"""
import io, sys
from berth.images import Store
op, root = sys.argv[1], sys.argv[2]
s = Store(root)
if op == "load":
    with open(sys.argv[3], "rb") as f:
        s.load_archive(f)
elif op == "commit":
    s.commit_container(sys.argv[3], None, ref="committed:1")
elif op == "ctr":
    s.create_container_fs(sys.argv[3], "busybox")
elif op == "rmi":
    s.remove_image(sys.argv[3])
"""


def run_killed(point: str, *args: str) -> None:
    env = dict(os.environ, BERTH_CRASH_AT=point)
    p = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr.decode()[-2000:]


@pytest.fixture(scope="module")
def archive(tmp_path_factory, busybox_tar):
    """A docker-archive with busybox and app:1 (two layers)."""
    tmp_path = tmp_path_factory.mktemp("crash-archive")
    s = Store(str(tmp_path / "src"), driver="vfs")
    base = s.import_rootfs_tar(io.BytesIO(busybox_tar), "busybox:latest")
    s.create_container_fs("a", base.id)
    root = s.mount_container_fs("a")
    with open(os.path.join(root, "f"), "w") as f:
        f.write("x")
    s.unmount_container_fs("a")
    s.commit_container("a", None, ref="app:1")
    path = str(tmp_path / "archive.tar")
    with open(path, "wb") as f:
        s.save_archive(["busybox:latest", "app:1"], f)
    s.remove_container_fs("a")
    s.close()
    return path


@pytest.mark.parametrize("point", ["load-blobs-written", "layer-applied", "before-image-tx"])
def test_kill_mid_load(tmp_path, archive, point):
    root = str(tmp_path / "store")
    Store(root, driver="vfs").close()
    run_killed(point, "load", root, archive)
    s = Store(root)  # repairs
    try:
        assert s.list_images() == []
        assert s.driver.list() == []  # half-made layers of the dead load are gone
        assert s.db.query_one("SELECT COUNT(*) FROM leases")[0] == 0
        s.gc()
        assert list(s.cs.list()) == []
        with open(archive, "rb") as f:
            assert sorted(s.load_archive(f)) == ["app:1", "busybox:latest"]
        assert len(s.driver.list()) == 2
        s.create_container_fs("c", "app:1")
        assert os.path.exists(os.path.join(s.mount_container_fs("c"), "f"))
        s.unmount_container_fs("c")
        s.remove_container_fs("c")
    finally:
        s.close()


def test_kill_after_load_tx_keeps_first_image(tmp_path, archive):
    root = str(tmp_path / "store")
    Store(root, driver="vfs").close()
    run_killed("after-image-tx", "load", root, archive)  # killed right after the first image's commit
    s = Store(root)
    try:
        assert [i.repo_tags for i in s.list_images()] == [["busybox:latest"]]
        s.gc()
        assert len(s.driver.list()) == 1
        with open(archive, "rb") as f:
            s.load_archive(f)
        assert len(s.list_images()) == 2
    finally:
        s.close()


@pytest.mark.parametrize("driver", ["vfs", "overlay"])
@pytest.mark.parametrize("point", ["commit-diffed", "commit-blob-written", "layer-applied", "commit-config-written"])
def test_kill_mid_commit(tmp_path, busybox_tar, driver, point):
    root = str(tmp_path / "store")
    s = open_store(root, driver)
    base = s.import_rootfs_tar(io.BytesIO(busybox_tar), "busybox:latest")
    s.create_container_fs("c", base.id)
    with open(os.path.join(s.mount_container_fs("c"), "new"), "w") as f:
        f.write("data")
    s.unmount_container_fs("c")
    blobs_before = set(s.cs.list())
    s.close()
    run_killed(point, "commit", root, "c")
    s = Store(root)
    try:
        assert [i.id for i in s.list_images()] == [base.id]
        assert sorted(s.driver.list()) == sorted(["c", base.diff_ids[0][7:]])
        assert s.container_changes("c") == [("A", "/new")]
        s.gc()
        assert set(s.cs.list()) == blobs_before
        img = s.commit_container("c", None, ref="committed:1")
        assert len(img.diff_ids) == 2 and s.resolve_image("committed:1").id == img.id
        s.remove_container_fs("c")
    finally:
        s.driver.cleanup()
        s.close()


def test_kill_mid_rmi(tmp_path, busybox_tar):
    root = str(tmp_path / "store")
    s = Store(root, driver="vfs")
    s.import_rootfs_tar(io.BytesIO(busybox_tar), "busybox:latest")
    s.close()
    run_killed("remove-after-tx", "rmi", root, "busybox")
    s = Store(root)
    try:
        assert s.list_images() == [] and s.driver.list() == []  # the queued driver layer went at open
        s.gc()
        assert list(s.cs.list()) == []
        s.import_rootfs_tar(io.BytesIO(busybox_tar), "busybox:latest")
        assert len(s.driver.list()) == 1
    finally:
        s.close()


def test_concurrent_loads_of_the_same_archive(tmp_path, archive):
    root = str(tmp_path / "store")
    Store(root, driver="vfs").close()
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, "load", root, archive], stderr=subprocess.PIPE)
             for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    s = Store(root)
    try:
        assert sorted(t for i in s.list_images() for t in i.repo_tags) == ["app:1", "busybox:latest"]
        assert len(s.driver.list()) == 2 and s.db.query_one("SELECT COUNT(*) FROM layers")[0] == 2
        assert s.gc() == 0  # nothing left over
    finally:
        s.close()


def test_live_lease_protects_from_gc(store, busybox_tar):
    from berth.images import leases

    info = store.cs.write(b"in-flight blob")
    os.utime(store.cs.path(info.digest), (1, 1))  # old: only the lease's reference protects it
    with leases.lease(store.db, "test") as le:
        le.add("blob", info.digest)
        store.gc()
        assert store.cs.exists(info.digest)
    store.gc()
    assert not store.cs.exists(info.digest)


def test_kill_mid_create_container_fs(tmp_path, busybox_tar):
    root = str(tmp_path / "store")
    s = open_store(root, "overlay")
    img = s.import_rootfs_tar(io.BytesIO(busybox_tar), "busybox:latest")
    s.close()
    run_killed("container-fs-created", "ctr", root, "c1")
    s = Store(root)
    try:
        assert s.driver.list() == [img.diff_ids[0][7:]]  # the unrecorded rw layer is gone
        s.create_container_fs("c1", "busybox")
        assert s.container_changes("c1") == []
        s.remove_container_fs("c1")
    finally:
        s.close()
