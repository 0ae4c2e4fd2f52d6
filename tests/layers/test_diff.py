import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile

import pytest

from berth.layers import (
    apply_layer,
    changes_overlay,
    changes_trees,
    compress,
    diff_overlay,
    diff_trees,
    tar_directory,
)

from .layer_helpers import build_tar, entry, snapshot, tree_digest

BASE = build_tar(
    entry("etc", "dir"),
    entry("etc/hosts", data=b"127.0.0.1 localhost\n"),
    entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
    entry("etc/ssl", "dir"),
    entry("etc/ssl/cert", data=b"cert"),
    entry("usr", "dir"),
    entry("usr/bin", "dir"),
    entry("usr/bin/tool", data=b"#!", mode=0o755),
    entry("usr/bin/alias", "hard", link="usr/bin/tool"),
    entry("var", "dir"),
    entry("var/cache", "dir"),
    entry("var/cache/old", data=b"o"),
    entry("var/run", "sym", link="/run"),
)


@pytest.fixture
def base(tmp_path):
    d = tmp_path / "base"
    apply_layer(io.BytesIO(BASE), str(d))
    return d


def cp_a(src, dest) -> None:
    """A copy keeping hardlinks, owners, xattrs and times, like a vfs layer copy."""
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)


def members(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [(m.name, m.type) for m in tf]


def modify(root) -> None:
    (root / "etc/hosts").write_text("changed\n")                 # C
    os.remove(root / "etc/passwd")                               # D
    shutil.rmtree(root / "var/cache")                            # D (one entry for the tree)
    (root / "var/cache").mkdir()                                 # ... and back, empty: A
    (root / "new").mkdir()                                       # A
    (root / "new/file").write_bytes(b"n")                        # A
    os.chmod(root / "usr/bin/tool", 0o700)                       # C (metadata only)
    os.setxattr(root / "etc/ssl/cert", "user.k", b"v")           # C (xattr only)


def test_changes_trees(base, tmp_path):
    new = tmp_path / "new"
    cp_a(base, new)
    assert changes_trees(str(base), str(new)) == []
    modify(new)
    got = changes_trees(str(base), str(new))
    assert ("C", "/etc/hosts") in got and ("D", "/etc/passwd") in got
    assert ("A", "/new") in got and ("A", "/new/file") in got
    assert ("C", "/usr/bin/tool") in got and ("C", "/etc/ssl/cert") in got
    assert ("C", "/etc") in got and ("C", "/usr/bin") in got and ("C", "/usr") in got  # parents
    assert ("C", "/var/cache") in got and ("D", "/var/cache/old") in got  # same name, new directory
    assert ("C", "/usr/bin/alias") in got  # same inode as tool: its mode changed too
    assert not any(p == "/var/run" for _, p in got)
    assert changes_trees(None, str(base))[:2] == [("A", "/etc"), ("A", "/etc/hosts")]
    assert all(k == "A" for k, _ in changes_trees(None, str(base)))


def test_diff_trees_round_trip(base, tmp_path):
    new = tmp_path / "new"
    cp_a(base, new)
    modify(new)
    out = io.BytesIO()
    diff_trees(str(base), str(new), out)
    names = dict(members(out.getvalue()))
    assert "etc/.wh.passwd" in names and "etc/hosts" in names and "new/file" in names
    assert "etc/ssl/cert" in names and "etc/ssl" in names  # unchanged parent comes along
    assert "var/run" not in names and "usr/bin/tool" in names
    # applying the diff onto a copy of the old tree gives the new tree
    replay = tmp_path / "replay"
    cp_a(base, replay)
    apply_layer(io.BytesIO(out.getvalue()), str(replay), whiteouts="delete")
    assert tree_digest(str(replay)) == tree_digest(str(new))
    # old=None: everything is added, and applying it to nothing rebuilds the tree
    full = io.BytesIO()
    diff_trees(None, str(new), full)
    scratch = tmp_path / "scratch"
    apply_layer(io.BytesIO(full.getvalue()), str(scratch))
    assert tree_digest(str(scratch)) == tree_digest(str(new))
    assert snapshot(str(scratch)) == {k: v for k, v in snapshot(str(new)).items()}


def test_diff_overlay_from_a_real_overlay_mount(base, tmp_path):
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={base},upperdir={upper},workdir={work}", str(merged)], check=True)
    try:
        modify(merged)
        want = tree_digest(str(merged))
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    assert stat.S_ISCHR(os.lstat(upper / "etc/passwd").st_mode)  # the kernel made whiteouts
    assert os.getxattr(upper / "var/cache", "trusted.overlay.opaque") == b"y"
    out = io.BytesIO()
    diff_overlay(str(upper), out)
    names = [n for n, _ in members(out.getvalue())]
    assert "etc/.wh.passwd" in names and "var/cache/.wh..wh..opq" in names
    assert names.index("var/cache") < names.index("var/cache/.wh..wh..opq")
    # delete mode over a copy of the lower == the merged view
    replay = tmp_path / "replay"
    cp_a(base, replay)
    apply_layer(io.BytesIO(out.getvalue()), str(replay), whiteouts="delete")
    assert tree_digest(str(replay)) == want
    # overlay mode gives back an upper dir that mounts to the same view
    diffdir = tmp_path / "diffdir"
    apply_layer(io.BytesIO(out.getvalue()), str(diffdir), whiteouts="overlay")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={diffdir}:{base}", str(merged)],
                   check=True)
    try:
        assert tree_digest(str(merged)) == want
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    got = changes_overlay(str(upper), [str(base)])
    assert ("D", "/etc/passwd") in got and ("C", "/etc/hosts") in got and ("C", "/etc") in got
    assert ("A", "/new") in got and ("A", "/new/file") in got and ("C", "/var/cache") in got
    assert ("D", "/var/cache/old") in got  # hidden by the opaque directory


def test_deterministic_exports(base, tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)

    def digest(root, **kw) -> str:
        buf = io.BytesIO()
        tar_directory(str(root), buf, **kw)
        return hashlib.sha256(buf.getvalue()).hexdigest()

    copy = tmp_path / "copy"
    cp_a(base, copy)  # new inodes, same content and times
    assert digest(base) == digest(base) == digest(copy)
    data = io.BytesIO()
    tar_directory(str(base), data)
    with tarfile.open(fileobj=io.BytesIO(data.getvalue())) as tf:
        ms = tf.getmembers()
    assert [m.name for m in ms] == sorted((m.name for m in ms), key=lambda n: n.split("/"))
    assert all(m.uname == "" and m.gname == "" for m in ms)
    # hardlinks: the first name in sorted order carries the data
    assert next(m for m in ms if m.name == "usr/bin/alias").type == tarfile.REGTYPE
    assert next(m for m in ms if m.name == "usr/bin/tool").linkname == "usr/bin/alias"
    # gzip output is byte-identical too: fixed header (mtime 0, no name, OS 255)
    gz1 = compress(io.BytesIO(data.getvalue()), "gzip").read()
    gz2 = compress(io.BytesIO(data.getvalue()), "gzip").read()
    assert gz1 == gz2 and gz1[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    # SOURCE_DATE_EPOCH clamps newer mtimes, so touching files does not change the digest
    os.utime(copy / "etc/hosts", (2_000_000_000, 2_000_000_000))
    assert digest(copy) != digest(base)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000")
    assert digest(copy) == digest(base)
    with tarfile.open(fileobj=io.BytesIO(_tar(copy))) as tf:
        assert {m.mtime for m in tf} == {1000}
    assert digest(copy, source_date_epoch=5) != digest(copy)


def _tar(root) -> bytes:
    buf = io.BytesIO()
    tar_directory(str(root), buf)
    return buf.getvalue()


def test_xattrs_round_trip_through_export(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    os.setxattr(src / "f", "user.a", b"plain")
    os.setxattr(src / "f", "user.b", bytes([0, 200, 255]))
    os.setxattr(src, "user.root-ignored", b"1")  # root itself is not an entry
    (src / "d").mkdir()
    os.setxattr(src / "d", "user.dir", b"d")
    dest = tmp_path / "dest"
    apply_layer(io.BytesIO(_tar(src)), str(dest))
    assert os.getxattr(dest / "f", "user.a") == b"plain"
    assert os.getxattr(dest / "f", "user.b") == bytes([0, 200, 255])
    assert os.getxattr(dest / "d", "user.dir") == b"d"
    # GNU tar reads them back too
    listing = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-tvvf", "-"], input=_tar(src),
                             capture_output=True, check=True).stdout
    assert b"user.a" in listing


def test_sockets_are_skipped(tmp_path):
    import socket

    src = tmp_path / "s"
    src.mkdir()
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(src / "sock"))
        (src / "f").write_text("x")
        assert [n for n, _ in members(_tar(src))] == ["f"]
    finally:
        s.close()


def test_export_of_awkward_names_and_ids(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    deep = src / "/".join(f"dir-{i:02d}-xxxxxxxx" for i in range(10))  # ~170 bytes: ustar prefix
    deep.mkdir(parents=True)
    (deep / "f").write_bytes(b"deep")
    deeper = deep / "/".join(["y" * 60] * 4)  # > 255 bytes: pax path
    deeper.mkdir(parents=True)
    (deeper / ("z" * 120)).write_bytes(b"long")
    os.symlink("t" * 200, src / "longlink")
    raw = os.path.join(os.fsencode(src), b"caf\xe9")  # not UTF-8
    with open(raw, "wb") as f:
        f.write(b"latin")
    os.chown(raw, 3_000_000, 4_000_000)  # beyond ustar's 7 octal digits
    os.utime(src / "longlink", (-100, -100), follow_symlinks=False)  # before the epoch
    data = _tar(src)
    out = tmp_path / "out"
    apply_layer(io.BytesIO(data), str(out))
    assert snapshot(str(out)) == snapshot(str(src))
    gnu = tmp_path / "gnu"
    gnu.mkdir()
    subprocess.run(["tar", "-xf", "-", "-C", str(gnu), "--numeric-owner"], input=data, check=True)
    assert snapshot(str(gnu)) == snapshot(str(src))
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert len(tf.getmembers()) == len(snapshot(str(src)))
    assert len(data) % 10240 == 0


def test_opaque_dir_listing_never_follows_a_swapped_in_symlink(tmp_path):
    # the container may swap an opaque dir of its upper for a symlink to / between the walk and the listing
    from berth.layers.diff import _names_in

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("")
    (tmp_path / "l").symlink_to("/")
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert _names_in(dfd, "d") == {"x"}
        assert _names_in(dfd, "l") == set()
    finally:
        os.close(dfd)
