"""Storage fixtures: a driver home per test for every driver; btrfs on a loopback filesystem."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from berth.linux import libc, mountinfo
from berth.testing.loopfs import loopback_btrfs


@pytest.fixture(scope="session")
def btrfs_mount() -> Iterator[str]:
    with loopback_btrfs() as mnt:
        yield mnt


def _leftover_mounts(home: str) -> list[str]:
    return [mp for mp, _ in mountinfo.mounts_under(home)] if os.path.exists(home) else []


@pytest.fixture(params=["overlay", "vfs", "btrfs"])
def driver_name(request) -> str:
    return request.param


@pytest.fixture
def store_home(driver_name, tmp_path, request, unique_name) -> Iterator[str]:
    """A store home on a filesystem the driver can use; asserts nothing is left mounted after."""
    if driver_name == "btrfs":
        home = os.path.join(request.getfixturevalue("btrfs_mount"), unique_name)
    else:
        home = str(tmp_path / "store")
    yield home
    left = _leftover_mounts(home)
    for mp in left:
        libc.umount(mp)
    if driver_name == "btrfs" and os.path.exists(home):
        from berth.storage.copying import BtrfsDriver

        drv = BtrfsDriver(os.path.join(home, "btrfs"))
        for id in reversed(_topo(drv)):
            with contextlib.suppress(Exception):
                drv.remove(id)
        shutil.rmtree(home, ignore_errors=True)
    assert not left, f"test left mounts behind: {left}"


def _topo(drv) -> list[str]:
    """Layer ids, parents before children."""
    ids = drv.list()
    order, seen = [], set()

    def visit(i):
        if i in seen:
            return
        seen.add(i)
        p = drv.parent(i)
        if p and p in ids:
            visit(p)
        order.append(i)

    for i in ids:
        visit(i)
    return order


@pytest.fixture
def driver(driver_name, store_home):
    from berth.storage import get_driver

    drv = get_driver(driver_name, store_home)
    yield drv
    drv.cleanup()


def pytest_collect_file(file_path, parent):
    """The driver conformance suite lives in conformance.py (not test_*.py): collect it too."""
    if file_path.name == "conformance.py":
        return pytest.Module.from_parent(parent, path=file_path)
    return None
