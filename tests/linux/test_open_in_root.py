"""berth.linux.paths.open_in_root / mkdirs_in_root: every symlink, ".." and magic link stays inside the
root, through openat2(RESOLVE_IN_ROOT) and through the per-component fallback alike."""

from __future__ import annotations

import os
import subprocess

import pytest

from berth.linux import paths


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    monkeypatch.setattr(paths, "_openat2_ok", request.param == "openat2")
    return request.param


def _where(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "a" / "b").mkdir(parents=True)
    (r / "a" / "b" / "f").write_text("inside")
    os.symlink("/", r / "to-root")
    os.symlink("/etc", r / "abs-etc")
    os.symlink("../../../../..", r / "a" / "b" / "up")
    os.symlink("/proc/self/root", r / "magic")
    return str(r)


@pytest.mark.parametrize("rel", ["to-root/a/b/f", "a/b/up/a/b/f", "../../../a/b/f", "/a/b/../b/f",
                                 "to-root/../../a/b/f"])
def test_symlinks_and_dotdot_stay_in_root(root, resolver, rel):
    assert _where(paths.open_in_root(root, rel, os.O_RDONLY)) == root + "/a/b/f"


def test_absolute_symlink_is_rooted(root, resolver):
    assert os.path.exists("/etc/passwd")
    with pytest.raises(FileNotFoundError):
        paths.open_in_root(root, "abs-etc/passwd", os.O_RDONLY)
    with pytest.raises(FileNotFoundError):
        paths.open_in_root(root, "to-root/etc/passwd", os.O_RDONLY)
    assert _where(paths.open_in_root(root, "abs-etc", follow=False)) == root + "/abs-etc"


def test_magic_links_refused_or_contained(root, resolver, tmp_path):
    os.mkdir(os.path.join(root, "proc"))
    subprocess.run(["mount", "--bind", "/proc", os.path.join(root, "proc")], check=True)
    try:
        for rel in ("magic/etc/passwd", "proc/self/root/etc/passwd", "proc/1/cwd"):
            try:
                fd = paths.open_in_root(root, rel, os.O_RDONLY)
            except OSError:
                continue  # openat2 refuses magic links (ELOOP); the walk re-roots their text
            assert _where(fd).startswith(root), rel
    finally:
        subprocess.run(["umount", "-l", os.path.join(root, "proc")], check=True)


def test_mkdirs_in_root_creates_inside(root, resolver):
    fd = paths.mkdirs_in_root(root, "to-root/new/x/../y")
    assert _where(fd) == root + "/new/y"
    assert not os.path.exists("/new")
