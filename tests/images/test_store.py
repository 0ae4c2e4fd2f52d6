"""The image store: import, resolve, tags, history, rmi, container filesystems, commit, export."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from berth.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from berth.oci import image as oi

from .conftest import open_store, tar_of_files


def imp(store, busybox_tar, ref="busybox:latest", **kw):
    return store.import_rootfs_tar(io.BytesIO(busybox_tar), ref, **kw)


def test_import_rootfs_gives_runnable_image(any_store, busybox_tar):
    img = imp(any_store, busybox_tar, changes=['CMD ["sh"]', "ENV PATH=/bin:/usr/bin", "WORKDIR /root"],
              message="from the busybox fixture")
    cfg = img.config
    assert img.id == "sha256:" + __import__("hashlib").sha256(any_store.cs.read_bytes(img.id)).hexdigest()
    assert cfg["os"] == "linux" and cfg["architecture"] == oi.host_platform()["architecture"]
    assert cfg["config"] == {"Cmd": ["sh"], "Env": ["PATH=/bin:/usr/bin"], "WorkingDir": "/root"}
    assert len(cfg["rootfs"]["diff_ids"]) == 1
    assert cfg["history"][0]["comment"] == "from the busybox fixture"
    assert img.repo_tags == ["busybox:latest"]
    assert img.size > 1_000_000
    oi.validate_config(cfg)
    oi.validate_manifest(img.manifest)
    # the image unpacks into a root filesystem holding an executable busybox
    any_store.create_container_fs("c1", img.id)
    try:
        root = any_store.mount_container_fs("c1")
        assert os.access(os.path.join(root, "bin", "busybox"), os.X_OK)
        assert os.readlink(os.path.join(root, "bin", "sh")) == "busybox"
        any_store.unmount_container_fs("c1")
    finally:
        any_store.remove_container_fs("c1")


def test_import_compressed_and_history(store, busybox_tar):
    import gzip
    img = store.import_rootfs_tar(io.BytesIO(gzip.compress(busybox_tar)), "bb:gz")
    assert img.manifest["layers"][0]["mediaType"] == oi.OCI_LAYER_GZIP
    plain = imp(store, busybox_tar, "bb:plain")
    assert img.diff_ids == plain.diff_ids  # same content, same diff id, one layer
    assert len(store.driver.list()) == 1
    h = store.history("bb:gz")
    assert len(h) == 1 and h[0]["Id"] == img.id and h[0]["Size"] == img.size
    assert h[0]["Comment"] == "Imported from -" and h[0]["Tags"] == ["bb:gz"]


def test_bad_import_leaves_nothing(store, busybox_tar):
    with pytest.raises(InvalidArgument, match=r"changes\[0\]"):
        imp(store, busybox_tar, changes=["RUN rm -rf /"])
    with pytest.raises(InvalidArgument, match="lowercase"):
        imp(store, busybox_tar, ref="BusyBox")
    with pytest.raises(InvalidArgument):
        store.import_rootfs_tar(io.BytesIO(b"\x00garbage" * 1000), "bad:1")
    assert store.list_images() == [] and list(store.cs.list()) == [] and store.driver.list() == []


def test_resolve_by_tag_id_prefix(store, busybox_tar):
    img = imp(store, busybox_tar)
    hexid = img.id.split(":")[1]
    for key in ("busybox", "busybox:latest", "docker.io/library/busybox:latest", img.id, hexid,
                hexid[:12], "sha256:" + hexid[:8], f"busybox@{img.manifest_digest}"):
        assert store.resolve_image(key).id == img.id, key
    with pytest.raises(NotFound, match="No such image: nope"):
        store.resolve_image("nope")
    with pytest.raises(InvalidArgument, match="lowercase"):
        store.resolve_image("Nope:1")
    # an ambiguous prefix is refused
    seen = {img.id[7]: img.id}
    for i in range(64):  # until two ids share their first hex digit
        other = store.import_rootfs_tar(io.BytesIO(tar_of_files({"a": str(i).encode()})), f"other:{i}")
        if other.id[7] in seen:
            break
        seen[other.id[7]] = other.id
    with pytest.raises(InvalidArgument, match="ambiguous"):
        store.resolve_image(other.id[7])
    assert store.resolve_image(other.id[7:20]).id == other.id


def test_tags_and_rmi(store, busybox_tar):
    img = imp(store, busybox_tar)
    store.tag("busybox", "localhost:5000/bb:v1")
    store.tag(img.id, "bb:2")
    assert sorted(store.resolve_image(img.id).repo_tags) == ["bb:2", "busybox:latest", "localhost:5000/bb:v1"]
    with pytest.raises(InvalidArgument, match="digest"):
        store.tag("busybox", "bb@sha256:" + "a" * 64)
    assert store.remove_image("bb:2") == [{"Untagged": "bb:2"}]
    with pytest.raises(Conflict, match="multiple repositories"):
        store.remove_image(img.id)
    store.untag("localhost:5000/bb:v1")
    with pytest.raises(NotFound):
        store.untag("localhost:5000/bb:v1")
    store.create_container_fs("ctr", "busybox")
    with pytest.raises(Conflict, match="being used by container"):
        store.remove_image("busybox")
    with pytest.raises(AlreadyExists):
        store.create_container_fs("ctr", "busybox")
    store.remove_container_fs("ctr")
    res = store.remove_image("busybox")
    assert res[0] == {"Untagged": "busybox:latest"} and res[1] == {"Deleted": img.id}
    assert store.list_images() == [] and store.driver.list() == [] and list(store.cs.list()) == []


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _tar_names(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def test_commit_changes_and_whiteouts(any_store, busybox_tar):
    store = any_store
    base = imp(store, busybox_tar, changes=['CMD ["sh"]'])
    store.create_container_fs("cc", base.id)
    try:
        root = store.mount_container_fs("cc")
        with open(os.path.join(root, "added.txt"), "w") as f:
            f.write("new file\n")
        with open(os.path.join(root, "etc", "passwd"), "a") as f:
            f.write("app:x:1000:1000::/home/app:/bin/sh\n")
        os.unlink(os.path.join(root, "bin", "cat"))
        store.unmount_container_fs("cc")
        changes = store.container_changes("cc")
        assert ("A", "/added.txt") in changes
        assert ("C", "/etc/passwd") in changes and ("C", "/etc") in changes
        assert ("D", "/bin/cat") in changes
        assert store.container_fs_size("cc") > 0
        new = store.commit_container("cc", {"Cmd": ["cat", "/added.txt"], "Hostname": "x"}, ref="committed:1",
                                     comment="my change", author="tester", changes=["LABEL k=v", "USER app"])
        assert new.repo_tags == ["committed:1"] and new.parent == base.id
        assert new.config["config"]["Cmd"] == ["cat", "/added.txt"]
        assert "Hostname" not in new.config["config"]
        assert new.config["config"]["Labels"] == {"k": "v"} and new.config["config"]["User"] == "app"
        assert new.config["author"] == "tester"
        assert new.config["rootfs"]["diff_ids"][:1] == base.diff_ids and len(new.diff_ids) == 2
        assert new.config["history"][-1]["comment"] == "my change"
        top = new.manifest["layers"][-1]
        assert top["mediaType"] == oi.OCI_LAYER_GZIP
        import gzip
        names = _tar_names(gzip.decompress(store.cs.read_bytes(top["digest"])))
        assert "added.txt" in names and "etc/passwd" in names and "bin/.wh.cat" in names
        assert "bin/busybox" not in names
        h = store.history("committed:1")
        assert [e["Id"] for e in h] == [new.id, base.id] and h[0]["Comment"] == "my change"
        # the committed image runs what was committed: a fresh container sees the changes
        store.create_container_fs("cc2", "committed:1")
        root2 = store.mount_container_fs("cc2")
        assert _read(os.path.join(root2, "added.txt")) == "new file\n"
        assert not os.path.lexists(os.path.join(root2, "bin", "cat"))
        assert "app:x:1000" in _read(os.path.join(root2, "etc", "passwd"))
        store.unmount_container_fs("cc2")
        store.remove_container_fs("cc2")
        # committing again: the same diff against the same image, so the same layer is reused
        layers_before = store.driver.list()
        same = store.commit_container("cc", None, changes=["ENV X=1"])
        assert same.diff_ids == new.diff_ids and same.id != new.id
        assert store.driver.list() == layers_before
    finally:
        store.remove_container_fs("cc")


def test_commit_without_changes_adds_empty_history(store, busybox_tar):
    base = imp(store, busybox_tar)
    store.create_container_fs("e1", base.id)
    new = store.commit_container("e1", None, changes=["ENV X=1"])
    assert new.diff_ids == base.diff_ids
    assert new.config["history"][-1]["empty_layer"] is True
    assert new.config["config"]["Env"] == ["X=1"]
    assert new.repo_tags == []
    store.remove_container_fs("e1")


def test_export_container_fs(any_store, busybox_tar):
    store = any_store
    imp(store, busybox_tar)
    store.create_container_fs("ex", "busybox")
    root = store.mount_container_fs("ex")
    with open(os.path.join(root, "hello"), "w") as f:
        f.write("hi")
    os.unlink(os.path.join(root, "bin", "ls"))
    store.unmount_container_fs("ex")
    buf = io.BytesIO()
    store.export_container_fs("ex", buf)
    names = _tar_names(buf.getvalue())
    assert names["bin/busybox"].isfile() and names["bin/sh"].issym()
    assert names["hello"].size == 2
    assert "bin/ls" not in names and not any(".wh." in n for n in names)
    # the export re-imports as a flat image
    again = store.import_rootfs_tar(io.BytesIO(buf.getvalue()), "flat:1")
    assert len(again.diff_ids) == 1
    store.remove_container_fs("ex")
    assert store.driver.list() and "ex" not in store.driver.list()


def test_shared_base_layer_stored_once(store, busybox_tar, tmp_path):
    base = imp(store, busybox_tar)
    store.create_container_fs("s1", base.id)
    root = store.mount_container_fs("s1")
    with open(os.path.join(root, "app"), "wb") as f:
        f.write(b"x" * 100_000)
    store.unmount_container_fs("s1")
    child = store.commit_container("s1", None, ref="app:1")
    store.remove_container_fs("s1")
    buf = io.BytesIO()
    store.save_archive(["busybox:latest", "app:1"], buf)
    from berth.images import Store
    fresh = Store(str(tmp_path / "fresh"), driver="vfs")
    try:
        fresh.load_archive(io.BytesIO(buf.getvalue()))
        assert {i.id for i in fresh.list_images()} == {base.id, child.id}
        assert len(fresh.driver.list()) == 2  # base + app layer, not 3
        assert fresh.db.query_one("SELECT COUNT(*) FROM layers")[0] == 2
        blobs = list(fresh.cs.list())
        # layer tars once each + 2 configs + 2 manifests
        assert len(blobs) == 6
        df = fresh.disk_usage()
        by = {i["Id"]: i for i in df["Images"]}
        assert by[base.id]["SharedSize"] == base.size == by[child.id]["SharedSize"]
        assert by[base.id]["UniqueSize"] == 0
        assert by[child.id]["UniqueSize"] == by[child.id]["Size"] - base.size >= 100_000
        assert df["LayersSize"] == by[child.id]["Size"]
    finally:
        fresh.close()


def test_prune_and_disk_usage(store, busybox_tar):
    old = imp(store, busybox_tar, changes=["ENV V=1"])
    other = store.import_rootfs_tar(io.BytesIO(tar_of_files({"only-here": b"y" * 5000})), "other:1")
    new = imp(store, busybox_tar, changes=["ENV V=2"])  # moves busybox:latest: old becomes dangling
    assert old.id != new.id and store.resolve_image(old.id).repo_tags == []
    store.create_container_fs("dfc", "other:1")
    root = store.mount_container_fs("dfc")
    with open(os.path.join(root, "rw"), "wb") as f:
        f.write(b"z" * 50_000)
    store.unmount_container_fs("dfc")
    vol = store.volumes.create("dfvol")
    with open(os.path.join(vol.mountpoint, "v"), "wb") as f:
        f.write(b"v" * 20_000)
    df = store.disk_usage()
    imgs = {i["Id"]: i for i in df["Images"]}
    assert set(imgs) == {old.id, other.id, new.id}
    assert imgs[other.id]["Containers"] == 1 and imgs[new.id]["Containers"] == 0
    assert imgs[old.id]["SharedSize"] == old.size  # old and new share the busybox layer
    assert imgs[other.id]["SharedSize"] == 0 and imgs[other.id]["Size"] == 5000
    assert df["LayersSize"] == old.size + 5000
    assert [c["Id"] for c in df["Containers"]] == ["dfc"] and df["Containers"][0]["SizeRw"] >= 50_000
    assert [v["Name"] for v in df["Volumes"]] == ["dfvol"] and df["Volumes"][0]["UsageData"]["Size"] >= 20_000
    res = store.prune_images()
    assert res["ImagesDeleted"] == [{"Deleted": old.id}]
    assert res["SpaceReclaimed"] > 0  # the old config and manifest blobs
    assert {i.id for i in store.list_images()} == {other.id, new.id}
    assert len(store.driver.list()) == 3  # busybox layer, other's layer, the container's rw layer
    # prune all: only what a container uses stays
    res = store.prune_images(dangling_only=False)
    assert {d["Deleted"] for d in res["ImagesDeleted"] if "Deleted" in d} >= {new.id}
    assert res["SpaceReclaimed"] >= new.size
    assert [i.id for i in store.list_images()] == [other.id]
    store.remove_container_fs("dfc")
    store.volumes.remove("dfvol")
    store.remove_image("other:1")
    assert store.gc() == 0
    assert store.driver.list() == [] and list(store.cs.list()) == []


@pytest.mark.parametrize("comp", ["zstd", "bzip2", "xz"])
def test_import_other_compressions(store, busybox_tar, other_store_factory, comp):
    import bz2
    import lzma

    import zstandard
    data = {"zstd": lambda b: zstandard.ZstdCompressor().compress(b), "bzip2": bz2.compress,
            "xz": lzma.compress}[comp](busybox_tar)
    img = store.import_rootfs_tar(io.BytesIO(data), "bb:c")
    want = oi.OCI_LAYER_ZSTD if comp == "zstd" else oi.OCI_LAYER
    assert img.manifest["layers"][0]["mediaType"] == want
    buf = io.BytesIO()
    store.save_archive(["bb:c"], buf)  # the archive holds the uncompressed layer
    other = other_store_factory()
    assert other.load_archive(io.BytesIO(buf.getvalue())) == ["bb:c"]
    assert other.resolve_image("bb:c").diff_ids == img.diff_ids


def test_list_filters_and_inspect(store, busybox_tar):
    a = imp(store, busybox_tar, "busybox:latest", changes=["LABEL tier=base"])
    b = store.import_rootfs_tar(io.BytesIO(tar_of_files({"x": b"1"})), "localhost:5000/team/app:v1",
                                changes=["LABEL tier=app owner=me"])
    c = store.import_rootfs_tar(io.BytesIO(tar_of_files({"y": b"2"})), None)
    ids = lambda f: {i.id for i in store.list_images(f)}  # noqa: E731
    assert ids(None) == {a.id, b.id, c.id}
    assert ids({"dangling": "true"}) == {c.id} and ids({"dangling": ["false"]}) == {a.id, b.id}
    assert ids({"label": "tier"}) == {a.id, b.id} and ids({"label": ["tier=app", "owner"]}) == {b.id}
    assert ids({"reference": "busybox"}) == {a.id} and ids({"reference": "*/team/*:v1"}) == {b.id}
    assert ids({"before": c.id}) == {a.id, b.id} and ids({"since": a.id}) == {b.id, c.id}
    with pytest.raises(InvalidArgument, match="invalid filter 'nope'"):
        store.list_images({"nope": "1"})
    info = store.inspect_image("localhost:5000/team/app:v1")
    assert info["Id"] == b.id and info["RepoTags"] == ["localhost:5000/team/app:v1"]
    assert info["Config"]["Labels"] == {"tier": "app", "owner": "me"}
    assert info["RootFS"]["Layers"] == b.diff_ids and info["GraphDriver"]["Name"] == "vfs"
    assert info["Os"] == "linux" and info["Size"] == 1


def test_register_manifest_like_a_pull(store, other_store_factory, busybox_tar):
    src = store
    img = imp(src, busybox_tar, changes=['CMD ["sh"]'])
    dst = other_store_factory()
    with dst.lease("pull") as le:
        for d in [img.manifest_digest, img.id, *(x["digest"] for x in img.manifest["layers"])]:
            le.add("blob", dst.cs.write(src.cs.read_bytes(d), expected=d).digest)
        got = dst.register_manifest(img.manifest_digest, ["registry.example:5000/bb:1"],
                                    [f"registry.example:5000/bb@{img.manifest_digest}"], lease=le)
    assert got.id == img.id and got.repo_tags == ["registry.example:5000/bb:1"]
    assert got.repo_digests == [f"registry.example:5000/bb@{img.manifest_digest}"]
    assert dst.resolve_image(f"registry.example:5000/bb@{img.manifest_digest}").id == img.id
    with pytest.raises(NotFound, match="not in the store"):
        dst.register_manifest(dst.cs.write(b'{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:' + b"1" * 64 + b'","size":1},"layers":[]}').digest)


def test_mount_is_refcounted(tmp_path, busybox_tar):
    store = open_store(str(tmp_path / "ov"), "overlay")
    try:
        imp(store, busybox_tar)
        store.create_container_fs("m", "busybox")
        p1 = store.mount_container_fs("m")
        assert store.mount_container_fs("m") == p1 and os.path.ismount(p1)
        store.unmount_container_fs("m")
        assert os.path.ismount(p1) and os.path.exists(os.path.join(p1, "bin", "busybox"))
        store.unmount_container_fs("m")
        assert not os.path.ismount(p1)
        store.mount_container_fs("m")
        store.remove_container_fs("m")  # unmounts what is still mounted
        assert not os.path.ismount(p1) and "m" not in store.driver.list()
        with pytest.raises(NotFound):
            store.mount_container_fs("m")
    finally:
        store.driver.cleanup()
        store.close()
