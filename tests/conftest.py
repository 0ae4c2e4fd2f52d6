"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

import os
import shutil
import uuid

import pytest

from berth.bootstrap import make_rootfs


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> str:
    """A pristine busybox root filesystem, built once per session. Copy it before writing to it."""
    return make_rootfs(str(tmp_path_factory.mktemp("busybox") / "rootfs"))


@pytest.fixture
def rootfs_copy(busybox_rootfs, tmp_path) -> str:
    """A private, writable copy of the busybox rootfs."""
    dest = str(tmp_path / "rootfs")
    shutil.copytree(busybox_rootfs, dest, symlinks=True)
    return dest


@pytest.fixture
def unique_name() -> str:
    """A name no other test (or earlier run) uses: for containers, cgroups, volumes..."""
    return f"bt-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (run through `make test`)")
        for item in items:
            if "unit" not in item.nodeid.split("/"):
                item.add_marker(skip)
