"""Fixtures for the image store tests: a fresh store per test, busybox rootfs tarballs."""

from __future__ import annotations

import io

import pytest

from berth.images import Store
from berth.testing.images import files_tar, rootfs_tar

DRIVERS = ["vfs", "overlay"]


def tar_of_files(files: dict[str, bytes]) -> bytes:
    return files_tar(files, mode=0o755)


def open_store(root: str, driver: str) -> Store:
    """A store on `driver`; skips the test where this host cannot run that driver."""
    from berth.errors import Unsupported

    try:
        return Store(root, driver=driver)
    except Unsupported as e:
        pytest.skip(f"storage driver {driver} unusable here: {e}")


@pytest.fixture(scope="session")
def busybox_tar(busybox_rootfs) -> bytes:
    buf = io.BytesIO()
    rootfs_tar(busybox_rootfs, buf)
    return buf.getvalue()


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
