"""Fixtures of the layers tests; tar-building helpers are in layer_helpers.py."""

import pytest


@pytest.fixture
def outside(tmp_path):
    """A directory outside every layer; tests assert nothing appears in it."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "victim").write_text("original")
    return d
