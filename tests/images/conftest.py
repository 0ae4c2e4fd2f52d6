"""Fixtures for the image store tests: a fresh store per test, busybox rootfs tarballs."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from berth.images import Store

DRIVERS = ["vfs", "overlay"]


def tar_of(root: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A rootfs tar of a directory (numeric owners, sorted), plus extra files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                p = os.path.join(dirpath, name)
                ti = tf.gettarinfo(p, os.path.relpath(p, root))
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mtime = 0
                if ti.isreg():
                    with open(p, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)
        for name, data in (extra or {}).items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def small_tar(files: dict[str, bytes]) -> bytes:
    return tar_of_files(files)


def tar_of_files(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o755
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def open_store(root: str, driver: str) -> Store:
    """A store on `driver`; skips the test where this host cannot run that driver."""
    from berth.errors import Unsupported

    try:
        return Store(root, driver=driver)
    except Unsupported as e:
        pytest.skip(f"storage driver {driver} unusable here: {e}")


@pytest.fixture(scope="session")
def busybox_tar(busybox_rootfs) -> bytes:
    return tar_of(busybox_rootfs)


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "store"), driver="vfs")
    yield s
    s.driver.cleanup()
    s.close()


@pytest.fixture(params=DRIVERS)
def any_store(request, tmp_path):
    s = open_store(str(tmp_path / "store"), request.param)
    yield s
    s.driver.cleanup()
    s.close()


@pytest.fixture
def other_store_factory(tmp_path):
    made = []

    def make() -> Store:
        s = Store(str(tmp_path / f"other-{len(made)}"), driver="vfs")
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
