"""Fixtures for berth-runtime tests (helpers in rt_helpers.py)."""

from __future__ import annotations

import pytest

from .rt_helpers import Bundle, Runtime


@pytest.fixture
def rt(tmp_path):
    r = Runtime(str(tmp_path / "state"))
    yield r
    r.cleanup()


@pytest.fixture
def bundle(rootfs_copy, tmp_path) -> Bundle:
    d = tmp_path / "bundle"
    d.mkdir()
    return Bundle(d, rootfs_copy)


@pytest.fixture
def cid(unique_name) -> str:
    return unique_name
