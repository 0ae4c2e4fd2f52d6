"""Hostile layers: every way out of dest is refused, naming the entry; nothing lands outside."""

import io
import os

import pytest

from berth.errors import InvalidArgument
from berth.layers import apply_layer, remove_tree

from .layer_helpers import build_tar, entry


def check_refused(tar: bytes, dest, outside, match: str, mode: str = "delete", created: bool = True):
    before = sorted(os.listdir(outside))
    with pytest.raises(InvalidArgument, match=match):
        apply_layer(io.BytesIO(tar), str(dest), whiteouts=mode)
    assert sorted(os.listdir(outside)) == before
    assert (outside / "victim").read_text() == "original"
    if created:
        assert not os.path.lexists(dest), "half-applied dest must be removed when apply created it"


@pytest.mark.parametrize("mode", ["delete", "overlay"])
def test_dotdot(tmp_path, outside, mode):
    tar = build_tar(entry("ok", data=b"1"), entry("../outside/evil", data=b"x"))
    check_refused(tar, tmp_path / "layer", outside, r"'\.\./outside/evil'.*'\.\.' escapes", mode)
    tar = build_tar(entry("a/../../outside/evil", data=b"x"))
    check_refused(tar, tmp_path / "layer", outside, "escapes", mode)


def test_absolute_path(tmp_path, outside, unique_name):
    target = f"/tmp/{unique_name}"
    tar = build_tar(entry(target, data=b"x"))
    check_refused(tar, tmp_path / "layer", outside, f"'{target}': absolute path")
    assert not os.path.exists(target)
    check_refused(build_tar(entry(str(outside / "evil"), data=b"x")), tmp_path / "layer", outside, "absolute")


@pytest.mark.parametrize("mode", ["delete", "overlay"])
def test_file_under_symlink_to_root(tmp_path, outside, unique_name, mode):
    # a -> /, then a/tmp/<name>: would create /tmp/<name> if the symlink were followed
    tar = build_tar(entry("a", "sym", link="/"), entry(f"a/tmp/{unique_name}", data=b"pwned"))
    check_refused(tar, tmp_path / "layer", outside, rf"'a/tmp/{unique_name}'.*'a' is a symlink", mode)
    assert not os.path.exists(f"/tmp/{unique_name}")


@pytest.mark.parametrize("link", ["../outside", "ABS"])
def test_file_under_symlink_to_outside(tmp_path, outside, link):
    link = str(outside) if link == "ABS" else link
    tar = build_tar(entry("d", "dir"), entry("d/esc", "sym", link="../" + link if not link.startswith("/") else link),
                    entry("d/esc/victim", data=b"pwned"))
    check_refused(tar, tmp_path / "layer", outside, "'d/esc' is a symlink")


def test_directory_entry_through_symlink(tmp_path, outside):
    tar = build_tar(entry("s", "sym", link=str(outside)), entry("s/newdir", "dir"))
    check_refused(tar, tmp_path / "layer", outside, "'s/newdir'.*symlink")


def test_file_replacing_symlink_does_not_write_through_it(tmp_path, outside):
    # a symlink to a file outside, then a regular file of the same name: the link is replaced
    tar = build_tar(entry("evil", "sym", link=str(outside / "victim")), entry("evil", data=b"pwned", mode=0o600),
                    entry("e2", "sym", link=str(outside / "victim")), entry("e2", "fifo"),
                    entry("e3", "sym", link=str(outside)), entry("e3", "dir"))
    dest = tmp_path / "layer"
    apply_layer(io.BytesIO(tar), str(dest))
    assert (outside / "victim").read_text() == "original"
    assert (dest / "evil").read_bytes() == b"pwned" and not os.path.islink(dest / "evil")
    assert not os.path.islink(dest / "e2") and not os.path.islink(dest / "e3")
    assert os.stat(outside).st_mode & 0o777 != 0 and sorted(os.listdir(outside)) == ["victim"]


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "../outside/victim", "ABS"])
def test_hardlink_outside(tmp_path, outside, target):
    target = str(outside / "victim") if target == "ABS" else target
    tar = build_tar(entry("h", "hard", link=target))
    check_refused(tar, tmp_path / "layer", outside, r"'h': hardlink target .* is outside the layer")
    assert os.stat(outside / "victim").st_nlink == 1


def test_hardlink_through_symlink(tmp_path, outside):
    tar = build_tar(entry("s", "sym", link=str(outside)), entry("h", "hard", link="s/victim"))
    check_refused(tar, tmp_path / "layer", outside, "'h'.*'s' is a symlink")
    assert os.stat(outside / "victim").st_nlink == 1


def test_hardlink_to_symlink_links_the_symlink_itself(tmp_path, outside):
    tar = build_tar(entry("s", "sym", link=str(outside / "victim")), entry("h", "hard", link="s"))
    dest = tmp_path / "layer"
    apply_layer(io.BytesIO(tar), str(dest))
    assert os.path.islink(dest / "h") and os.stat(outside / "victim").st_nlink == 1


def test_hardlink_to_missing_or_directory(tmp_path, outside):
    check_refused(build_tar(entry("h", "hard", link="nope")), tmp_path / "l", outside, "'h'.*does not exist")
    check_refused(build_tar(entry("d", "dir"), entry("h", "hard", link="d")), tmp_path / "l", outside,
                  "'h'.*is a directory")


def test_symlink_already_in_dest_is_not_followed(tmp_path, outside):
    # delete mode: dest holds the parent's files, including a symlink to outside
    dest = tmp_path / "layer"
    dest.mkdir()
    os.symlink(str(outside), dest / "lib")
    tar = build_tar(entry("lib/victim", data=b"pwned"))
    check_refused(tar, dest, outside, "'lib/victim'.*'lib' is a symlink", created=False)
    assert dest.exists()  # not ours to remove: the caller does
    remove_tree(str(dest))
    assert not dest.exists() and (outside / "victim").exists()
    remove_tree(str(dest))  # idempotent


def test_whiteouts_do_not_delete_through_symlinks(tmp_path, outside):
    dest = tmp_path / "layer"
    dest.mkdir()
    os.symlink(str(outside), dest / "s")
    check_refused(build_tar(entry("s/.wh.victim", data=b"")), dest, outside, "'s/.wh.victim'.*symlink",
                  created=False)
    check_refused(build_tar(entry("s/.wh..wh..opq", data=b"")), dest, outside, "symlink", created=False)
    # whiteout of the symlink itself removes the link only
    apply_layer(io.BytesIO(build_tar(entry(".wh.s", data=b""))), str(dest))
    assert not os.path.lexists(dest / "s") and (outside / "victim").exists()


def test_invalid_whiteout_names(tmp_path, outside):
    check_refused(build_tar(entry(".wh..", data=b"")), tmp_path / "l", outside, "invalid whiteout")
    check_refused(build_tar(entry("a/.wh.", data=b"")), tmp_path / "l", outside, "invalid whiteout")


def test_root_entry_must_be_a_directory(tmp_path, outside):
    check_refused(build_tar(entry("./", "sym", link="/")), tmp_path / "l", outside, "root")


def test_random_hostile_layers_never_escape(tmp_path, outside):
    """Random sequences of traversal names, links and whiteouts: each apply either works inside dest
    or fails with a berth error, and never touches the outside directory."""
    import random
    import shutil

    from berth.errors import BerthError

    rng = random.Random(20261129)
    names = ["a", "a/b", "a/b/c", "s", "s/x", "t", "t/victim", ".wh.a", "a/.wh.b", "a/.wh..wh..opq", ".wh.s",
             "s/.wh.victim", "t/.wh.victim", "./a", "..", "../outside/z", "a/../../outside/z", "h", "./",
             "s/.wh..wh..opq"]
    links = ["/", str(outside), str(outside / "victim"), "../outside", "a", "s", "s/victim", "t/victim",
             "../outside/victim", "h", ".."]
    kinds = ["file", "dir", "sym", "hard", "fifo"]
    dest = tmp_path / "l"
    for _ in range(300):
        ents = [entry(rng.choice(names), k, data=b"p" if k == "file" else b"",
                      link=rng.choice(links) if k in ("sym", "hard") else "")
                for k in (rng.choice(kinds) for _ in range(rng.randint(1, 6)))]
        mode = rng.choice(["delete", "overlay"])
        if mode == "delete" and rng.random() < 0.5:
            (dest / "a/b").mkdir(parents=True)
            os.symlink(outside, dest / "t")
        try:
            apply_layer(io.BytesIO(build_tar(*ents)), str(dest), whiteouts=mode)
        except BerthError:
            pass
        shutil.rmtree(dest, ignore_errors=True)
        assert sorted(os.listdir(outside)) == ["victim"]
        assert os.stat(outside / "victim").st_nlink == 1 and (outside / "victim").read_text() == "original"


def test_mutated_headers_fail_cleanly(tmp_path):
    """Random bytes in headers (with the checksum fixed up so the parser sees them): every failure is
    a berth error, never a crash of another kind."""
    import random
    import shutil
    import tarfile

    from berth.errors import BerthError

    base = build_tar(entry("d", "dir"), entry("d/f", data=b"x" * 700), entry("d/s", "sym", link="../x"),
                     entry("h", "hard", link="d/f"), entry("d/.wh.q", data=b""), entry("p", "fifo"),
                     entry("long/" + "n" * 120, data=b"y", xattrs={"user.a": b"b"}))
    offsets = []
    with tarfile.open(fileobj=io.BytesIO(base)) as tf:
        for m in tf:
            offsets += [m.offset] + ([m.offset_data - 512] if m.offset_data - m.offset > 512 else [])
    rng = random.Random(7)
    special = [0, 0x80, 0xFF, 0x40] + [ord(c) for c in "07xLgK5123/. "]
    dest = tmp_path / "l"
    for _ in range(400):
        data = bytearray(base)
        o = rng.choice(offsets)
        for _ in range(rng.randint(1, 4)):
            i = o + rng.choice([rng.randrange(512), rng.randrange(100, 160), 156, 124 + rng.randrange(12)])
            data[i] = rng.choice(special) if rng.random() < 0.5 else rng.randrange(256)
        block = data[o : o + 512]
        block[148:156] = b"        "
        data[o + 148 : o + 156] = b"%06o\0 " % sum(block)
        try:
            apply_layer(io.BytesIO(bytes(data)), str(dest), whiteouts=rng.choice(["delete", "overlay"]))
        except BerthError:
            pass
        shutil.rmtree(dest, ignore_errors=True)


def test_destination_must_be_a_real_directory(tmp_path, outside):
    os.symlink(outside, tmp_path / "link")
    check_refused(build_tar(entry("x", data=b"1")), tmp_path / "link", outside, "not a directory", created=False)
    (tmp_path / "file").write_text("f")
    check_refused(build_tar(entry("x", data=b"1")), tmp_path / "file", outside, "not a directory", created=False)
