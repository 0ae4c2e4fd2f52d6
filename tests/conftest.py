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


def pytest_sessionfinish(session, exitstatus):
    """Remove the empty parent cgroups the tests' containers lived under (/berth, /berth-test), once,
    in the controlling process after every worker is done. rmdir only succeeds on an empty cgroup,
    so a live berthd's containers are never touched."""
    if hasattr(session.config, "workerinput") or os.geteuid() != 0:
        return
    base = "/sys/fs/cgroup"
    try:
        hierarchies = [os.path.join(base, h) for h in os.listdir(base)]
    except OSError:
        return
    for h in hierarchies + [base]:
        for parent in ("berth-test", "berth"):
            try:
                os.rmdir(os.path.join(h, parent))
            except OSError:
                pass
