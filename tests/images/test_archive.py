"""docker-archive and OCI layout: round trips, archive structure, platform choice, bad archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from berth.errors import DataCorruption, InvalidArgument
from berth.images import Store
from berth.oci import image as oi

from .conftest import tar_of_files


@pytest.fixture
def two_images(store, busybox_tar):
    """busybox (tags busybox:latest, localhost:5000/bb:v1) and app:1 (busybox + one layer)."""
    base = store.import_rootfs_tar(io.BytesIO(busybox_tar), "busybox:latest", changes=['CMD ["sh"]'])
    store.tag("busybox", "localhost:5000/bb:v1")
    store.create_container_fs("mk", base.id)
    root = store.mount_container_fs("mk")
    with open(os.path.join(root, "app.txt"), "w") as f:
        f.write("app\n")
    store.unmount_container_fs("mk")
    app = store.commit_container("mk", None, ref="app:1")
    store.remove_container_fs("mk")
    return base, app


@pytest.fixture
def other_store(tmp_path):
    s = Store(str(tmp_path / "other"), driver="vfs")
    yield s
    s.close()


def _members(data: bytes) -> dict[str, bytes | None]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m) if m.isfile() else None
            out[m.name] = f.read() if f else None
    return out


def test_docker_archive_round_trip(store, other_store, two_images):
    base, app = two_images
    buf = io.BytesIO()
    store.save_archive(["busybox:latest", "localhost:5000/bb:v1", "app:1"], buf)
    files = _members(buf.getvalue())
    manifest = json.loads(files["manifest.json"])
    assert [sorted(e["RepoTags"]) for e in manifest] == [["busybox:latest", "localhost:5000/bb:v1"], ["app:1"]]
    assert manifest[0]["Config"] == base.id[7:] + ".json"
    assert hashlib.sha256(files[manifest[1]["Config"]]).hexdigest() == app.id[7:]
    assert manifest[1]["Layers"][0] == manifest[0]["Layers"][0]  # the shared layer is written once
    for i, layer in enumerate(manifest[1]["Layers"]):
        d = os.path.dirname(layer)
        assert files[f"{d}/VERSION"] == b"1.0"
        assert json.loads(files[f"{d}/json"])["id"] == d
        assert "sha256:" + hashlib.sha256(files[layer]).hexdigest() == app.diff_ids[i]
    repos = json.loads(files["repositories"])
    assert set(repos) == {"busybox", "localhost:5000/bb", "app"}
    assert repos["app"]["1"] == os.path.dirname(manifest[1]["Layers"][-1])

    loaded = other_store.load_archive(io.BytesIO(buf.getvalue()))
    assert sorted(loaded) == ["app:1", "busybox:latest", "localhost:5000/bb:v1"]
    got = {i.id: sorted(i.repo_tags) for i in other_store.list_images()}
    assert got == {base.id: ["busybox:latest", "localhost:5000/bb:v1"], app.id: ["app:1"]}
    assert other_store.db.query_one("SELECT COUNT(*) FROM layers")[0] == 2
    # loading again changes nothing; a gzip'd archive loads too
    assert sorted(other_store.load_archive(io.BytesIO(gzip.compress(buf.getvalue())))) == sorted(loaded)
    assert len(other_store.list_images()) == 2 and len(other_store.driver.list()) == 2


def test_save_by_id_and_by_repository(store, other_store, two_images):
    base, _ = two_images
    buf = io.BytesIO()
    store.save_archive([base.id], buf)
    assert json.loads(_members(buf.getvalue())["manifest.json"])[0]["RepoTags"] is None
    assert other_store.load_archive(io.BytesIO(buf.getvalue())) == [base.id]
    buf = io.BytesIO()
    store.tag("busybox", "busybox:second")
    store.save_archive(["busybox"], buf)  # a repository: all its tags
    assert json.loads(_members(buf.getvalue())["manifest.json"])[0]["RepoTags"] == [
        "busybox:latest", "busybox:second"]


@pytest.mark.parametrize("as_tar", [False, True])
def test_oci_layout_round_trip(store, other_store, two_images, tmp_path, as_tar):
    base, app = two_images
    dest = str(tmp_path / ("layout.tar" if as_tar else "layout"))
    store.export_oci_layout(["busybox:latest", "app:1"], dest)
    if as_tar:
        files = _members(open(dest, "rb").read())  # noqa: SIM115
        index = json.loads(files["index.json"])
        assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    else:
        with open(os.path.join(dest, "index.json")) as f:
            index = json.load(f)
        assert sorted(os.listdir(dest)) == ["blobs", "index.json", "oci-layout"]
    oi.validate_index(index)
    anns = [m["annotations"] for m in index["manifests"]]
    assert [a[oi.ANNOTATION_REF_NAME] for a in anns] == ["latest", "1"]
    assert [a[oi.ANNOTATION_CONTAINERD_NAME] for a in anns] == ["docker.io/library/busybox:latest",
                                                                 "docker.io/library/app:1"]
    loaded = other_store.import_oci_layout(dest)
    assert sorted(loaded) == ["app:1", "busybox:latest"]
    assert {i.id for i in other_store.list_images()} == {base.id, app.id}
    # the manifest is kept byte for byte
    assert other_store.resolve_image("app:1").manifest_digest == app.manifest_digest


def _layout_with_platforms(tmp_path, busybox_tar, host_arch: str) -> str:
    """An OCI layout whose index points to a nested index of two platforms, tag given as a bare ref.name."""
    root = tmp_path / "multi"
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    layer = put(busybox_tar)
    manifests = []
    for arch in (("arm64" if host_arch != "arm64" else "s390x"), host_arch):
        cfg = put(json.dumps({"architecture": arch, "os": "linux", "config": {"Env": [f"ARCH={arch}"]},
                              "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
        m = put(json.dumps({"schemaVersion": 2, "mediaType": oi.OCI_MANIFEST,
                            "config": {"mediaType": oi.OCI_CONFIG, **cfg},
                            "layers": [{"mediaType": oi.OCI_LAYER, **layer}]}).encode())
        manifests.append({"mediaType": oi.OCI_MANIFEST, **m, "platform": {"os": "linux", "architecture": arch}})
    idx = put(json.dumps({"schemaVersion": 2, "mediaType": oi.OCI_INDEX, "manifests": manifests}).encode())
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": oi.OCI_INDEX, **idx, "annotations": {oi.ANNOTATION_REF_NAME: "v1"}}]}))
    return str(root)


def test_oci_index_platform_selection(store, busybox_tar, tmp_path):
    host = oi.host_platform()["architecture"]
    layout = _layout_with_platforms(tmp_path, busybox_tar, host)
    assert store.import_oci_layout(layout, name="multi") == ["multi:v1"]
    img = store.resolve_image("multi:v1")
    assert img.config["architecture"] == host and img.config["config"]["Env"] == [f"ARCH={host}"]
    # without a repository name a bare ref.name tag cannot be placed: loaded untagged, by id
    other = store.import_oci_layout(layout, platform={"os": "linux", "architecture": "arm64"}) \
        if host != "arm64" else store.import_oci_layout(layout, platform={"os": "linux", "architecture": "s390x"})
    assert len(other) == 1 and other[0].startswith("sha256:")
    assert store.resolve_image(other[0]).config["architecture"] != host
    with pytest.raises(InvalidArgument, match="no image for platform linux/riscv64"):
        store.import_oci_layout(layout, platform={"os": "linux", "architecture": "riscv64"})


def _tar(files: dict[str, bytes]) -> bytes:
    return tar_of_files(files)


def test_bad_archives_leave_nothing(store, busybox_tar):
    layer = busybox_tar
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    wrong_cfg = json.dumps({"architecture": "amd64", "os": "linux",
                            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
    wrong_name = hashlib.sha256(wrong_cfg).hexdigest() + ".json"
    cases = [
        (b"this is not a tar" * 100, InvalidArgument, "not a tar"),
        (_tar({"hello": b"x"}), InvalidArgument, "neither a docker-archive"),
        (_tar({"manifest.json": b"{}"}), InvalidArgument, "manifest.json: must be a JSON array"),
        (_tar({"manifest.json": b'[{"Config": "c.json", "Layers": []}]'}), InvalidArgument,
         r"manifest.json\[0\].Config: archive has no file 'c.json'"),
        (_tar({"manifest.json": json.dumps([{"Config": cfg_name, "Layers": ["l/layer.tar"]}]).encode(),
               cfg_name: cfg}), InvalidArgument, r"Layers\[0\]: archive has no file"),
        (_tar({"manifest.json": json.dumps([{"Config": cfg_name, "RepoTags": ["Bad:tag"],
                                             "Layers": ["l/layer.tar"]}]).encode(),
               cfg_name: cfg, "l/layer.tar": layer}), InvalidArgument, "RepoTags.*lowercase"),
        (_tar({"manifest.json": json.dumps([{"Config": wrong_name, "RepoTags": ["x:1"],
                                             "Layers": ["l/layer.tar"]}]).encode(),
               wrong_name: wrong_cfg, "l/layer.tar": layer}), DataCorruption, "does not match the config"),
        (_tar({"manifest.json": json.dumps([{"Config": cfg_name, "Layers": []}]).encode(), cfg_name: cfg}),
         InvalidArgument, "1 rootfs.diff_ids but the image has 0 layers"),
    ]
    for data, exc, needle in cases:
        with pytest.raises(exc, match=needle):
            store.load_archive(io.BytesIO(data))
    assert store.list_images() == []
    # each failed load removed what it had written: no gc needed
    assert list(store.cs.list()) == [] and store.driver.list() == []
    assert store.db.query_one("SELECT COUNT(*) FROM layers")[0] == 0
    # a good archive still loads afterwards
    good = _tar({"manifest.json": json.dumps([{"Config": cfg_name, "RepoTags": ["ok:1"],
                                               "Layers": ["l/layer.tar"]}]).encode(),
                 cfg_name: cfg, "l/layer.tar": layer})
    assert store.load_archive(io.BytesIO(good)) == ["ok:1"]


def test_load_docker25_style_archive(store, other_store, two_images, tmp_path):
    """docker 25+ writes an OCI layout plus a manifest.json whose paths point into blobs/."""
    base, app = two_images
    path = str(tmp_path / "layout.tar")
    store.export_oci_layout(["app:1"], path)
    files = _members(open(path, "rb").read())  # noqa: SIM115
    cfg = app.manifest["config"]["digest"]
    files["manifest.json"] = json.dumps([{
        "Config": "blobs/sha256/" + cfg[7:], "RepoTags": ["app:25"],
        "Layers": ["blobs/sha256/" + d["digest"][7:] for d in app.manifest["layers"]]}]).encode()
    data = tar_of_files({k: v for k, v in files.items() if v is not None})
    assert other_store.load_archive(io.BytesIO(data)) == ["app:25"]  # manifest.json wins over index.json
    assert other_store.resolve_image("app:25").id == app.id
