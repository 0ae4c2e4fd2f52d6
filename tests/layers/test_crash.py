"""A process SIGKILLed in the middle of applying a layer: the caller removes the half-applied
directory and applies again, and gets exactly what an uninterrupted apply gives."""

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from berth.layers import apply_layer, remove_tree

from .layer_helpers import build_tar, entry, tree_digest

CHILD = "import sys; from berth.layers import apply_layer; apply_layer(sys.stdin.buffer, sys.argv[1])"


@pytest.fixture(scope="module")
def big_layer() -> bytes:
    ents = [entry(f"d{i}", "dir") for i in range(10)]
    ents += [entry(f"d{i % 10}/f{i}", data=os.urandom(16_384), uid=i % 3) for i in range(200)]
    return build_tar(*ents)


def test_kill_mid_apply_then_redo(tmp_path, big_layer):
    ref = tmp_path / "ref"
    apply_layer(io.BytesIO(big_layer), str(ref))
    dest = tmp_path / "dest"
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(dest)], stdin=subprocess.PIPE)
    try:
        p.stdin.write(big_layer[: len(big_layer) // 2])
        p.stdin.flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the child is visibly half-way
            if os.path.isdir(dest / "d9") and len(os.listdir(dest / "d9")) > 3:
                break
            time.sleep(0.02)
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
        p.stdin.close()
    assert p.returncode == -signal.SIGKILL
    half = tree_digest(str(dest))
    assert half != tree_digest(str(ref))
    # reapplying over the leftovers converges too (every entry replaces what is there)...
    apply_layer(io.BytesIO(big_layer), str(dest))
    assert tree_digest(str(dest)) == tree_digest(str(ref))
    # ...and the documented recovery: remove the half-applied dest, apply again
    remove_tree(str(dest))
    assert not dest.exists()
    r = apply_layer(io.BytesIO(big_layer), str(dest))
    assert tree_digest(str(dest)) == tree_digest(str(ref))
    assert r.size == 200 * 16_384
