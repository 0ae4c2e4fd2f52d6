"""VolumeStore against a real sqlite file and real directories (and real tmpfs/bind mounts)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from berth import errors
from berth.linux import libc, mountinfo
from berth.metadata import Database
from berth.volumes import VolumeStore


@pytest.fixture
def vs(tmp_path):
    db = Database(str(tmp_path / "meta.db"))
    store = VolumeStore(str(tmp_path / "root"), db)
    yield store
    for mp, _ in mountinfo.mounts_under(str(tmp_path)):
        libc.umount(mp)
    db.close()


def test_create_inspect_named(vs, unique_name):
    v = vs.create(unique_name, labels={"a": "1"})
    info = v.inspect()
    assert info["Name"] == unique_name
    assert info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Mountpoint"] == os.path.join(vs.root, "volumes", unique_name, "_data")
    assert os.path.isdir(info["Mountpoint"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["CreatedAt"])
    assert info["Labels"] == {"a": "1"} and info["Options"] == {}
    assert vs.get(unique_name).inspect() == info
    # create is idempotent, like docker's
    assert vs.create(unique_name).inspect() == info


def test_anonymous_name_is_random_hex(vs):
    a, b = vs.create(), vs.create()
    assert re.fullmatch(r"[0-9a-f]{64}", a.name) and a.name != b.name
    assert a.anonymous


@pytest.mark.parametrize("bad", ["a", "-x", "x/y", "..", "a b"])
def test_invalid_names_rejected(vs, bad):
    with pytest.raises(errors.InvalidArgument, match="invalid volume name"):
        vs.create(bad)
    assert os.listdir(os.path.join(vs.root, "volumes")) == []


def test_bad_driver_and_options(vs):
    with pytest.raises(errors.Unsupported):
        vs.create("vol1", driver="nfs-plugin")
    with pytest.raises(errors.InvalidArgument, match="unknown option"):
        vs.create("vol1", options={"size": "1"})
    assert vs.list() == []


def test_get_missing(vs):
    with pytest.raises(errors.NotFound, match="nope"):
        vs.get("nope")


def test_list_filters(vs):
    vs.create("alpha", labels={"env": "prod", "team": "x"})
    vs.create("beta", labels={"env": "dev"})
    vs.create("gamma")
    vs.acquire("beta", "c1")
    names = lambda f: [v.name for v in vs.list(f)]  # noqa: E731
    assert names({}) == ["alpha", "beta", "gamma"]
    assert names({"name": ["al"]}) == ["alpha"]
    assert names({"label": ["env"]}) == ["alpha", "beta"]
    assert names({"label": ["env=prod"]}) == ["alpha"]
    assert names({"label": {"env=dev": True}}) == ["beta"]
    assert names({"label!": ["env"]}) == ["gamma"]
    assert names({"dangling": ["true"]}) == ["alpha", "gamma"]
    assert names({"dangling": ["false"]}) == ["beta"]
    with pytest.raises(errors.InvalidArgument, match="bogus"):
        vs.list({"bogus": ["1"]})


def test_remove_refused_while_in_use(vs):
    vs.create("inuse")
    vs.acquire("inuse", "c" * 64)
    for force in (False, True):
        with pytest.raises(errors.Conflict, match="in use by container"):
            vs.remove("inuse", force=force)
    assert vs.users("inuse") == ["c" * 64]
    vs.release("inuse", "c" * 64)
    vs.remove("inuse")
    assert not os.path.exists(os.path.join(vs.root, "volumes", "inuse"))
    with pytest.raises(errors.NotFound):
        vs.remove("inuse")
    vs.remove("inuse", force=True)  # force: missing is fine


def test_acquire_is_per_container(vs):
    vs.create("shared")
    vs.acquire("shared", "c1")
    vs.acquire("shared", "c1")
    vs.acquire("shared", "c2")
    assert vs.get("shared").ref_count == 2
    vs.release("shared", "c1")
    assert vs.users("shared") == ["c2"]


def test_prune_returns_names_and_bytes(vs):
    vs.create("keep")
    vs.acquire("keep", "c1")
    vs.create("big")
    with open(os.path.join(vs.get("big").mountpoint, "f"), "wb") as f:
        f.write(b"x" * 100_000)
    anon = vs.create()
    vs.create("labelled", labels={"keep": "yes"})
    assert vs.usage("big") == 100_000
    names, reclaimed = vs.prune({"label!": ["keep"]})
    assert sorted(names) == sorted(["big", anon.name])
    assert reclaimed == 100_000
    assert [v.name for v in vs.list()] == ["keep", "labelled"]


def test_prune_anonymous_only(vs):
    vs.create("named")
    anon = vs.create()
    assert vs.prune(all=False)[0] == [anon.name]
    assert vs.prune({"all": ["true"]})[0] == ["named"]


def test_populate_from_only_when_new_and_empty(vs, tmp_path):
    src = tmp_path / "image-dir"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("hello")
    os.link(src / "sub" / "f", src / "hard")
    os.chmod(src, 0o750)
    os.chown(src, 1234, 5678)
    v = vs.create("pop")
    assert vs.populate_from("pop", str(src)) is True
    data = v.mountpoint
    assert Path(data, "sub", "f").read_text() == "hello"
    assert os.stat(os.path.join(data, "hard")).st_ino == os.stat(os.path.join(data, "sub", "f")).st_ino
    st = os.stat(data)
    assert stat.S_IMODE(st.st_mode) == 0o750 and (st.st_uid, st.st_gid) == (1234, 5678)
    # second use: not copied again, even after emptying it
    os.unlink(os.path.join(data, "hard"))
    (src / "new").write_text("n")
    assert vs.populate_from("pop", str(src)) is False
    assert not os.path.exists(os.path.join(data, "new"))


def test_populate_skips_non_empty_volume(vs, tmp_path):
    src = tmp_path / "image-dir"
    src.mkdir()
    (src / "f").write_text("from image")
    v = vs.create("prefilled")
    with open(os.path.join(v.mountpoint, "mine"), "w") as f:
        f.write("user data")
    assert vs.populate_from("prefilled", str(src)) is False
    assert os.listdir(v.mountpoint) == ["mine"]


def test_metadata_survives_reopen(tmp_path):
    db = Database(str(tmp_path / "meta.db"))
    VolumeStore(str(tmp_path / "root"), db).create("persist", labels={"k": "v"})
    VolumeStore(str(tmp_path / "root"), db).acquire("persist", "c9")
    db.close()
    db2 = Database(str(tmp_path / "meta.db"))
    vs2 = VolumeStore(str(tmp_path / "root"), db2)
    assert vs2.get("persist").labels == {"k": "v"}
    assert vs2.users("persist") == ["c9"]
    db2.close()


def test_recovery_adopts_orphan_dir_and_drops_temp(tmp_path):
    db = Database(str(tmp_path / "meta.db"))
    vdir = tmp_path / "root" / "volumes"
    (vdir / "orphan" / "_data").mkdir(parents=True)
    (vdir / "orphan" / "_data" / "keep").write_text("data")
    (vdir / ".tmp-999999999-abcd-half" / "_data").mkdir(parents=True)
    vs = VolumeStore(str(tmp_path / "root"), db)
    assert [v.name for v in vs.list()] == ["orphan"]
    assert not (vdir / ".tmp-999999999-abcd-half").exists()
    db.close()


def test_tmpfs_volume_mounted_while_in_use(vs):
    v = vs.create("tmpvol", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m,nosuid"})
    assert v.inspect()["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,nosuid"}
    assert not mountinfo.is_mountpoint(v.mountpoint)
    vs.acquire("tmpvol", "c1")
    vs.acquire("tmpvol", "c2")
    assert mountinfo.mounts_under(v.mountpoint) == [(v.mountpoint, "tmpfs")]
    vs.release("tmpvol", "c1")
    assert mountinfo.is_mountpoint(v.mountpoint)
    vs.release("tmpvol", "c2")
    assert not mountinfo.is_mountpoint(v.mountpoint)


def test_bind_volume(vs, tmp_path):
    src = tmp_path / "hostdir"
    src.mkdir()
    (src / "f").write_text("host")
    v = vs.create("bindvol", options={"type": "none", "device": str(src), "o": "bind,ro"})
    path = vs.acquire("bindvol", "c1")
    try:
        assert Path(path, "f").read_text() == "host"
        with pytest.raises(OSError):
            Path(path, "g").write_text("x")
    finally:
        vs.release("bindvol", "c1")
    assert not mountinfo.is_mountpoint(v.mountpoint)
    vs.remove("bindvol")
    assert (src / "f").exists()  # removing the volume never touches the bound source


def test_bad_mount_options_clear_error(vs):
    vs.create("badmnt", options={"type": "nosuchfs", "device": "x"})
    with pytest.raises(errors.InvalidArgument, match="badmnt"):
        vs.acquire("badmnt", "c1")
    assert vs.users("badmnt") == []


def test_populate_from_resolves_inside_the_root_and_copies_no_host_file(vs, tmp_path):
    """The mount path is resolved inside the container's root (an absolute symlink stays in it), and
    symlinks in the content are copied as symlinks, never followed to the host."""
    root = tmp_path / "rootfs"
    (root / "srv" / "real").mkdir(parents=True)
    (root / "srv" / "real" / "f").write_text("image")
    os.symlink("/srv/real", root / "data")       # the image's mount path is a symlink
    os.symlink("/etc/passwd", root / "srv" / "real" / "pw")
    os.symlink("/", root / "srv" / "real" / "top")
    v = vs.create("pop-root")
    assert vs.populate_from("pop-root", str(root), "/data") is True
    data = v.mountpoint
    assert sorted(os.listdir(data)) == ["f", "pw", "top"]
    assert os.readlink(os.path.join(data, "pw")) == "/etc/passwd"
    assert os.readlink(os.path.join(data, "top")) == "/"
    v2 = vs.create("pop-none")
    os.symlink("/etc", root / "etc-link")        # resolves to <root>/etc: absent, nothing to copy
    assert vs.populate_from("pop-none", str(root), "/etc-link") is False
    assert os.listdir(v2.mountpoint) == []
