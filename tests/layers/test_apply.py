import io
import os
import stat
import subprocess
import tarfile

import pytest

from berth.errors import InvalidArgument
from berth.layers import apply_layer, compress

from .layer_helpers import T0, build_tar, entry, snapshot


def apply_bytes(data: bytes, dest, mode: str = "delete"):
    return apply_layer(io.BytesIO(data), str(dest), whiteouts=mode)


def test_files_dirs_modes_owners_times(tmp_path):
    tar = build_tar(
        entry("bin", "dir", mtime=T0 + 1),
        entry("bin/su", data=b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0, mtime=T0 + 2),
        entry("tmp", "dir", mode=0o1777, mtime=T0 + 3),
        entry("srv", "dir", mode=0o2750, uid=1000, gid=2000, mtime=T0 + 4),
        entry("srv/data", data=b"x" * 5000, mode=0o600, uid=1000, gid=2000, mtime=T0 + 5),
        entry("srv/link", "sym", link="/etc/hostname", uid=1000, gid=2000, mtime=T0 + 6),
        entry("srv/sub", "dir", mtime=T0 + 7),
        entry("srv/sub/f", data=b"!", mtime=T0 + 8),
    )
    dest = tmp_path / "layer"
    r = apply_bytes(tar, dest)
    assert r.size == 10 + 5000 + 1 and r.tar_size == len(tar)
    s = snapshot(str(dest))
    assert s["bin/su"][:6] == (stat.S_IFREG, 0o4755, 0, 0, 10, T0 + 2)
    assert s["tmp"][:6] == (stat.S_IFDIR, 0o1777, 0, 0, 0, T0 + 3)
    assert s["srv"][:6] == (stat.S_IFDIR, 0o2750, 1000, 2000, 0, T0 + 4)  # set after its children
    assert s["srv/data"][:6] == (stat.S_IFREG, 0o600, 1000, 2000, 5000, T0 + 5)
    assert s["srv/link"][0] == stat.S_IFLNK and s["srv/link"][2:4] == (1000, 2000)
    assert s["srv/link"][5] == T0 + 6 and s["srv/link"][7] == "/etc/hostname"
    assert s["srv/sub"][5] == T0 + 7 and s["bin"][5] == T0 + 1
    assert (dest / "srv/sub/f").read_bytes() == b"!"


def test_diff_id_is_sha256_of_uncompressed_tar_for_every_compression(tmp_path):
    import hashlib

    tar = build_tar(entry("a", data=os.urandom(300_000)), entry("d", "dir"), entry("d/b", data=b"b"))
    want = "sha256:" + hashlib.sha256(tar).hexdigest()
    for algo in ("none", "gzip", "zstd"):
        blob = compress(io.BytesIO(tar), algo).read()
        r = apply_bytes(blob, tmp_path / algo)
        assert (r.diff_id, r.compression) == (want, algo)
        assert snapshot(str(tmp_path / algo)) == snapshot(str(tmp_path / "none"))


def test_gnu_tar_gzip_layer_with_xattrs(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d/f").write_bytes(b"data")
    os.setxattr(src / "d/f", "user.note", b"hello")
    os.link(src / "d/f", src / "d/hl")
    os.mkfifo(src / "d/fifo")
    os.mknod(src / "d/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chown(src / "d", 123, 456)
    layer = tmp_path / "l.tgz"
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-czf", str(layer),
                    "-C", str(src), "."], check=True)
    dest = tmp_path / "dest"
    with open(layer, "rb") as f:
        assert apply_layer(f, str(dest)).compression == "gzip"
    assert os.getxattr(dest / "d/f", "user.note") == b"hello"
    assert os.stat(dest / "d/f").st_ino == os.stat(dest / "d/hl").st_ino
    assert stat.S_ISFIFO(os.lstat(dest / "d/fifo").st_mode)
    assert os.lstat(dest / "d/null").st_rdev == os.makedev(1, 3)
    s1, s2 = snapshot(str(src)), snapshot(str(dest))
    for k in ("d", "d/f", "d/hl", "d/fifo", "d/null"):
        assert s1[k] == s2[k], k


def test_devices_fifos_hardlinks(tmp_path):
    tar = build_tar(
        entry("dev", "dir"),
        entry("dev/null", "chr", major=1, minor=3, mode=0o666),
        entry("dev/loop9", "blk", major=7, minor=9, mode=0o660, gid=6),
        entry("dev/pipe", "fifo", mode=0o620),
        entry("f", data=b"shared", mode=0o640, uid=7),
        entry("dev/hard", "hard", link="f"),
        entry("g", "hard", link="./f"),
    )
    dest = tmp_path / "l"
    apply_bytes(tar, dest)
    n = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(n.st_mode) and n.st_rdev == os.makedev(1, 3) and stat.S_IMODE(n.st_mode) == 0o666
    b = os.lstat(dest / "dev/loop9")
    assert stat.S_ISBLK(b.st_mode) and b.st_rdev == os.makedev(7, 9) and b.st_gid == 6
    p = os.lstat(dest / "dev/pipe")
    assert stat.S_ISFIFO(p.st_mode) and stat.S_IMODE(p.st_mode) == 0o620
    f = os.lstat(dest / "f")
    assert f.st_nlink == 3 and os.lstat(dest / "dev/hard").st_ino == f.st_ino == os.lstat(dest / "g").st_ino
    assert (f.st_uid, stat.S_IMODE(f.st_mode)) == (7, 0o640)


def test_xattrs_including_binary_values(tmp_path):
    binary = bytes([0, 255, 128, 10, 200])
    tar = build_tar(
        entry("d", "dir", xattrs={"user.dir": b"on-a-dir"}),
        entry("d/f", data=b"x", xattrs={"user.a": b"1", "user.bin": binary}),
        entry("d/fifo", "fifo", xattrs={"trusted.mark": b"t"}),
        entry("d/sneaky", data=b"", xattrs={"trusted.overlay.redirect": b"/etc"}),
    )
    dest = tmp_path / "l"
    apply_bytes(tar, dest)
    assert os.getxattr(dest / "d", "user.dir") == b"on-a-dir"
    assert os.getxattr(dest / "d/f", "user.a") == b"1"
    assert os.getxattr(dest / "d/f", "user.bin") == binary
    assert os.getxattr(dest / "d/fifo", "trusted.mark", follow_symlinks=False) == b"t"
    assert os.listxattr(dest / "d/sneaky") == []  # overlay metadata never comes from a layer


def test_later_entries_replace_earlier_ones(tmp_path):
    tar = build_tar(
        entry("x", data=b"first"),
        entry("x", data=b"second"),
        entry("d", "dir"),
        entry("d/child", data=b"c"),
        entry("d", data=b"now a file"),  # a file replaces a whole directory
        entry("e", data=b"file"),
        entry("e", "dir", mode=0o700),  # and a directory replaces a file
        entry("e/inner", data=b"i"),
        entry("y", "dir", mode=0o700),
        entry("y", "dir", mode=0o750, uid=5),  # an existing directory is kept, its metadata updated
    )
    dest = tmp_path / "l"
    apply_bytes(tar, dest)
    assert (dest / "x").read_bytes() == b"second"
    assert (dest / "d").read_bytes() == b"now a file"
    assert (dest / "e/inner").read_bytes() == b"i"
    st = os.stat(dest / "y")
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o750, 5)


def test_missing_parents_are_created(tmp_path):
    dest = tmp_path / "l"
    apply_bytes(build_tar(entry("a/b/c/file", data=b"deep")), dest)
    assert (dest / "a/b/c/file").read_bytes() == b"deep"
    assert stat.S_IMODE(os.stat(dest / "a/b").st_mode) == 0o755


def test_empty_layer(tmp_path):
    r = apply_bytes(b"\0" * 1024, tmp_path / "l")
    assert r.size == 0 and os.listdir(tmp_path / "l") == []


@pytest.mark.parametrize("cut", [700, 1500, 512 + 100])
def test_truncated_tar_is_rejected_and_dest_removed(tmp_path, cut):
    tar = build_tar(entry("a", data=b"x" * 1000), entry("b", data=b"y" * 1000))
    dest = tmp_path / "l"
    with pytest.raises(InvalidArgument, match="truncated|invalid layer tar"):
        apply_bytes(tar[:cut], dest)
    assert not dest.exists()


def test_garbage_is_rejected(tmp_path):
    with pytest.raises(InvalidArgument):
        apply_bytes(b"\x1f\x8b" + os.urandom(2000), tmp_path / "a")
    with pytest.raises(InvalidArgument):
        apply_bytes(os.urandom(2048), tmp_path / "b")
    tar = build_tar(entry("ok", data=b"1"), entry("next", data=b"2"))
    bad = tar[:1024] + os.urandom(512) + tar[1536:]  # second header garbled
    with pytest.raises(InvalidArgument, match="after entry 'ok'"):
        apply_bytes(bad, tmp_path / "c")
    assert not any((tmp_path / n).exists() for n in "abc")


def test_bad_whiteout_mode(tmp_path):
    with pytest.raises(InvalidArgument, match="whiteouts"):
        apply_layer(io.BytesIO(b""), str(tmp_path / "x"), whiteouts="aufs")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_header_formats_long_names_big_ids(tmp_path, fmt):
    long_dir = "/".join([f"segment-{i:02d}" for i in range(12)])  # > 255 bytes in total
    ents = [entry("long", "dir"), entry(f"long/{long_dir}/file", data=b"deep")]
    if fmt != tarfile.USTAR_FORMAT:
        ents.append(entry("bigid", data=b"b", uid=100_000_000, gid=200_000_000))  # pax / base-256
        ents.append(entry("h" * 150, "sym", link="t" * 150))
    else:
        ents = [entry("u/" + "n" * 99 + "/" + "m" * 90, data=b"prefix field")]  # ustar prefix split
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in ents:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    dest = tmp_path / "l"
    apply_bytes(buf.getvalue(), dest)
    if fmt != tarfile.USTAR_FORMAT:
        assert (dest / "long" / long_dir / "file").read_bytes() == b"deep"
        st = os.stat(dest / "bigid")
        assert (st.st_uid, st.st_gid) == (100_000_000, 200_000_000)
        assert os.readlink(dest / ("h" * 150)) == "t" * 150
    else:
        assert (dest / "u" / ("n" * 99) / ("m" * 90)).read_bytes() == b"prefix field"


def test_non_utf8_names_and_subsecond_times(tmp_path):
    ti, data = entry("caf\udce9", data=b"latin-1 name")
    ti.pax_headers["mtime"] = "1600000000.123456789"
    ti.pax_headers["atime"] = "1500000000.5"
    dest = tmp_path / "l"
    apply_bytes(build_tar((ti, data)), dest)
    p = os.path.join(os.fsencode(dest), b"caf\xe9")
    st = os.stat(p)  # before reading: reading may update the atime
    assert st.st_mtime_ns == 1_600_000_000_123_456_789 and st.st_atime_ns == 1_500_000_000_500_000_000
    with open(p, "rb") as f:
        assert f.read() == b"latin-1 name"


def test_v7_directory_with_trailing_slash_and_dot_prefix(tmp_path):
    ti, _ = entry("./olddir/", data=b"")  # old tars: a "regular file" whose name ends in '/'
    dest = tmp_path / "l"
    apply_bytes(build_tar(entry("./", "dir", mode=0o711), (ti, b""), entry("./olddir/f", data=b"1")), dest)
    assert os.path.isdir(dest / "olddir") and (dest / "olddir/f").read_bytes() == b"1"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o711  # "./" sets the root's metadata


def test_sparse_files_are_refused_clearly(tmp_path):
    from berth.errors import Unsupported

    ti, data = entry("sparse", data=b"x")
    ti.pax_headers["GNU.sparse.major"] = "1"
    with pytest.raises(Unsupported, match="'sparse'"):
        apply_bytes(build_tar((ti, data)), tmp_path / "l")
    assert not (tmp_path / "l").exists()


def test_corrupt_blob_from_content_store_fails_the_apply(tmp_path):
    from berth.content import ContentStore
    from berth.errors import DataCorruption

    cs = ContentStore(str(tmp_path / "cs"))
    blob = build_tar(entry("a", data=os.urandom(50_000)))
    d = cs.write(blob).digest
    with cs.open(d) as f:
        assert apply_layer(f, str(tmp_path / "ok")).size == 50_000
    p = cs.path(d)
    os.chmod(p, 0o644)
    with open(p, "r+b") as f:  # the last byte is end-of-archive padding: the tar still parses
        f.seek(-1, os.SEEK_END)
        f.write(b"\1")
    with cs.open(d) as f, pytest.raises(DataCorruption, match=d):
        apply_layer(f, str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("algo", ["gzip", "zstd", "bzip2", "xz"])
def test_truncated_or_corrupt_compressed_layers(tmp_path, algo):
    import bz2
    import lzma

    tar = build_tar(entry("a", data=os.urandom(200_000)), entry("b", data=b"b" * 5000))
    blob = {"bzip2": bz2.compress, "xz": lzma.compress}.get(algo, lambda t: compress(io.BytesIO(t), algo).read())(tar)
    assert apply_bytes(blob, tmp_path / "ok").compression == algo
    for cut in (20, len(blob) // 2, len(blob) - 3):
        with pytest.raises(InvalidArgument, match="invalid layer stream|truncated"):
            apply_bytes(blob[:cut], tmp_path / "cut")
        assert not (tmp_path / "cut").exists()
    bad = bytearray(blob)
    for i in range(len(bad) // 2, len(bad) // 2 + 8):
        bad[i] ^= 0x5A
    with pytest.raises(InvalidArgument):
        apply_bytes(bytes(bad), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_zstd_bomb_is_decompressed_in_bounded_pieces():
    import resource

    import zstandard

    from berth.layers import decompress

    c = zstandard.ZstdCompressor().compressobj()
    zeros = bytes(1 << 20)
    bomb = b"".join([c.compress(zeros) for _ in range(400)]) + c.flush()  # 400 MiB of zeros
    assert len(bomb) < 100_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    plain, kind = decompress(io.BytesIO(bomb))
    total = 0
    while chunk := plain.read(1 << 20):
        total += len(chunk)
    assert (kind, total) == ("zstd", 400 << 20)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100, f"peak RSS grew by {grown_mib:.0f} MiB"


def test_hostile_headers(tmp_path):
    ti, data = entry("big-pax", data=b"x")
    raw = bytearray(build_tar((ti, data)))
    pax = build_tar(entry("p", data=b"", xattrs={"user.x": b"y"}))
    assert pax[156:157] == b"x"
    hdr = bytearray(pax[:512])  # a pax header claiming 4 GiB of records
    hdr[124:136] = b"%011o\0" % (4 << 30)
    hdr[148:156] = b"        "
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    with pytest.raises(InvalidArgument, match="too large"):
        apply_bytes(bytes(hdr) + bytes(raw), tmp_path / "a")
    neg = bytearray(raw[:512])  # base-256 negative size
    neg[124:136] = b"\xff" * 12
    neg[148:156] = b"        "
    neg[148:156] = b"%06o\0 " % sum(neg)
    with pytest.raises(InvalidArgument, match="out of range"):
        apply_bytes(bytes(neg) + bytes(raw[512:]), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_absurd_values_name_the_entry(tmp_path):
    ti, _ = entry("dev", "chr", major=1 << 40, minor=1)  # GNU base-256: os.makedev overflows
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        tf.addfile(ti)
    with pytest.raises(InvalidArgument, match="'dev'"):
        apply_bytes(buf.getvalue(), tmp_path / "a")
    ti, _ = entry("when", data=b"")
    ti.pax_headers["mtime"] = "12.x"
    with pytest.raises(InvalidArgument, match="'when': malformed pax time"):
        apply_bytes(build_tar((ti, b"")), tmp_path / "a")
    ti, _ = entry("link", "sym", link="x")
    ti.pax_headers["linkpath"] = "a\0b"
    with pytest.raises(InvalidArgument, match="'link'"):
        apply_bytes(build_tar((ti, b"")), tmp_path / "b")
    ti, _ = entry("t", data=b"")
    ti.pax_headers["mtime"] = "99999999999999999999"
    with pytest.raises(InvalidArgument, match="'t': timestamp out of range"):
        apply_bytes(build_tar((ti, b"")), tmp_path / "c")
