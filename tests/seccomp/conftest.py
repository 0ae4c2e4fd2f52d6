"""Fixtures for the seccomp tests."""

from __future__ import annotations

import platform

import pytest


@pytest.fixture(autouse=True)
def _x86_64_only():
    if platform.machine() != "x86_64":
        pytest.skip("syscall numbers in these tests are x86_64's")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> str:
    """A private, empty cache directory for this test."""
    d = str(tmp_path / "seccomp-cache")
    monkeypatch.setenv("BERTH_SECCOMP_CACHE", d)
    return d
