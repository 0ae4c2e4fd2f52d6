"""Interop with the real peers: podman, skopeo and umoci read what berth writes, berth loads what they
write. Peers use private storage under tmp_path; nothing touches the network."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from berth.images import Store

pytestmark = pytest.mark.interop


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def run(*cmd: str, cwd: str | None = None) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=cwd)
    assert p.returncode == 0, f"{' '.join(cmd)} failed: {p.stderr[-2000:]}"
    return p.stdout


@pytest.fixture
def podman(tmp_path):
    """podman on private storage (its runroot path must be short: podman refuses > 50 characters)."""
    need("podman")
    run_root = tempfile.mkdtemp(prefix="bpr-", dir="/tmp")

    def call(*args: str) -> str:
        return run("podman", "--root", str(tmp_path / "p-root"), "--runroot", run_root,
                   "--tmpdir", str(tmp_path / "p-tmp"), "--storage-driver", "vfs", "--events-backend", "none",
                   "--cgroup-manager", "cgroupfs", *args)

    yield call
    shutil.rmtree(run_root, ignore_errors=True)


@pytest.fixture
def berth_images(store, busybox_tar):
    base = store.import_rootfs_tar(io.BytesIO(busybox_tar), "busybox:latest", changes=['CMD ["sh"]'])
    store.tag("busybox", "localhost:5000/bb:v1")
    store.create_container_fs("mk", base.id)
    with open(os.path.join(store.mount_container_fs("mk"), "app.txt"), "w") as f:
        f.write("app\n")
    store.unmount_container_fs("mk")
    app = store.commit_container("mk", None, ref="localhost/app:1")
    store.remove_container_fs("mk")
    return base, app


@pytest.fixture
def rootfs_tar_file(tmp_path, busybox_tar) -> str:
    p = tmp_path / "rootfs.tar"
    p.write_bytes(busybox_tar)
    return str(p)


def test_podman_loads_berth_archive(store, berth_images, tmp_path, podman):
    base, app = berth_images
    path = str(tmp_path / "berth.tar")
    with open(path, "wb") as f:
        store.save_archive(["busybox:latest", "localhost:5000/bb:v1", "localhost/app:1"], f)
    podman("load", "-i", path)
    out = json.loads(podman("images", "--format", "json"))
    ids = {"sha256:" + i["Id"]: sorted(i.get("Names") or []) for i in out}
    assert set(ids) == {base.id, app.id}  # podman's image id is the config digest too
    assert "localhost:5000/bb:v1" in ids[base.id] and "localhost/app:1" in ids[app.id]


def test_skopeo_reads_berth_archive_and_layout(store, berth_images, tmp_path):
    need("skopeo")
    base, app = berth_images
    path = str(tmp_path / "berth.tar")
    with open(path, "wb") as f:
        store.save_archive(["busybox:latest", "localhost/app:1"], f)
    run("skopeo", "copy", f"docker-archive:{path}:localhost/app:1", f"oci:{tmp_path}/sk-oci:app")
    cfg = json.loads(run("skopeo", "inspect", "--config", f"oci:{tmp_path}/sk-oci:app"))
    assert cfg["rootfs"]["diff_ids"] == app.diff_ids
    # berth's own OCI layout, directory and tar
    store.export_oci_layout(["busybox:latest", "localhost/app:1"], str(tmp_path / "layout"))
    store.export_oci_layout(["localhost/app:1"], str(tmp_path / "layout.tar"))
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci:{tmp_path}/layout:1"))
    assert raw["config"]["digest"] == app.id
    cfg = json.loads(run("skopeo", "inspect", "--config", f"oci-archive:{tmp_path}/layout.tar"))
    assert cfg["rootfs"]["diff_ids"] == app.diff_ids


def test_umoci_unpacks_berth_layout(store, berth_images, tmp_path):
    need("umoci")
    store.export_oci_layout(["localhost/app:1"], str(tmp_path / "layout"))
    run("umoci", "unpack", "--rootless", "--image", f"{tmp_path}/layout:1", str(tmp_path / "bundle"))
    rootfs = tmp_path / "bundle" / "rootfs"
    assert (rootfs / "app.txt").read_text() == "app\n" and os.access(rootfs / "bin" / "busybox", os.X_OK)


def test_berth_loads_podman_save(store, tmp_path, rootfs_tar_file, podman):
    podman("import", "--change", "CMD [\"sh\"]", rootfs_tar_file, "localhost/pimp:1")
    podman("tag", "localhost/pimp:1", "localhost:5000/pimp:2")
    podman("import", "--change", "ENV A=b", rootfs_tar_file, "localhost/pother:1")
    path = str(tmp_path / "podman.tar")
    podman("save", "-m", "-o", path, "localhost/pimp:1", "localhost:5000/pimp:2", "localhost/pother:1")
    loaded = store.load_archive(open(path, "rb"))  # noqa: SIM115
    assert sorted(loaded) == ["localhost/pimp:1", "localhost/pother:1", "localhost:5000/pimp:2"]
    pimp = store.resolve_image("localhost/pimp:1")
    assert pimp.config["config"]["Cmd"] == ["sh"]
    assert store.resolve_image("localhost:5000/pimp:2").id == pimp.id
    assert store.resolve_image("localhost/pother:1").config["config"]["Env"][-1] == "A=b"
    podman_ids = {"sha256:" + i["Id"] for i in json.loads(podman("images", "--format", "json"))}
    assert {i.id for i in store.list_images()} == podman_ids
    assert len(store.driver.list()) == 1  # both imports are the same layer


def test_berth_loads_skopeo_outputs(store, tmp_path, rootfs_tar_file, berth_images):
    need("skopeo")
    base, app = berth_images
    src = str(tmp_path / "src.tar")
    with open(src, "wb") as f:
        store.save_archive(["localhost/app:1"], f)
    run("skopeo", "copy", f"docker-archive:{src}", f"docker-archive:{tmp_path}/sk.tar:foo/bar:baz")
    run("skopeo", "copy", f"docker-archive:{src}", f"oci:{tmp_path}/sk-oci:mytag")
    run("skopeo", "copy", f"docker-archive:{src}", f"oci-archive:{tmp_path}/sk-oci.tar:other")
    fresh = Store(str(tmp_path / "fresh"), driver="vfs")
    try:
        assert fresh.load_archive(open(f"{tmp_path}/sk.tar", "rb")) == ["foo/bar:baz"]  # noqa: SIM115
        assert fresh.import_oci_layout(f"{tmp_path}/sk-oci", name="localhost/sk") == ["localhost/sk:mytag"]
        assert fresh.import_oci_layout(f"{tmp_path}/sk-oci.tar", name="skarch") == ["skarch:other"]
        for ref in ("foo/bar:baz", "localhost/sk:mytag", "skarch:other"):
            assert fresh.resolve_image(ref).diff_ids == app.diff_ids
        assert fresh.db.query_one("SELECT COUNT(*) FROM layers")[0] == 2
    finally:
        fresh.close()


def test_berth_loads_umoci_layout(store, tmp_path, busybox_rootfs):
    need("umoci")
    layout = f"{tmp_path}/uml"
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", f"{layout}:t1")
    run("umoci", "insert", "--rootless", "--image", f"{layout}:t1", busybox_rootfs, "/")
    run("umoci", "config", "--image", f"{layout}:t1", "--config.cmd", "sh")
    assert store.import_oci_layout(layout, name="umoci") == ["umoci:t1"]
    img = store.resolve_image("umoci:t1")
    assert img.config["config"]["Cmd"] == ["sh"]
    store.create_container_fs("u", img.id)
    try:
        assert os.access(os.path.join(store.mount_container_fs("u"), "bin", "busybox"), os.X_OK)
        store.unmount_container_fs("u")
    finally:
        store.remove_container_fs("u")
