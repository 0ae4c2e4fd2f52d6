"""berth's default profile is valid OCI for a peer: runc runs busybox under it with the same effect."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from berth.oci.defaults import DEFAULT_CAPABILITIES
from berth.seccomp import default_profile

pytestmark = pytest.mark.interop

SCRIPT = (
    "unshare -m true 2>/dev/null; echo unshare=$?; grep '^Seccomp:' /proc/self/status; true && echo exec=ok"
)


def run_in_runc(rootfs: str, tmp_path, name: str, seccomp: dict | None) -> list[str]:
    """Run SCRIPT in runc with CAP_SYS_ADMIN granted, so only seccomp can refuse unshare."""
    bundle = tmp_path / "bundle"
    bundle.mkdir(parents=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    caps = [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]
    cfg["root"] = {"path": rootfs, "readonly": False}
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/sh", "-c", SCRIPT]
    cfg["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    if seccomp is not None:
        cfg["linux"]["seccomp"] = seccomp
    cfg["linux"].pop("cgroupsPath", None)
    (bundle / "config.json").write_text(json.dumps(cfg))
    state = tmp_path / "runc-state"
    try:
        out = subprocess.run(
            ["runc", "--root", str(state), "run", "--bundle", str(bundle), name],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    finally:
        subprocess.run(["runc", "--root", str(state), "delete", "--force", name], capture_output=True)
    assert out.returncode == 0, out.stderr
    assert not os.path.exists(state / name)
    return out.stdout.splitlines()


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_runc_enforces_berths_default_profile(rootfs_copy, tmp_path, unique_name):
    control = run_in_runc(rootfs_copy, tmp_path / "a", unique_name + "a", None)
    assert control == ["unshare=0", "Seccomp:\t0", "exec=ok"]
    # the profile for a container without CAP_SYS_ADMIN refuses unshare even though the cap is there
    lines = run_in_runc(
        rootfs_copy, tmp_path / "b", unique_name + "b", default_profile(list(DEFAULT_CAPABILITIES))
    )
    assert lines[0] != "unshare=0" and lines[0].startswith("unshare=")
    assert lines[1:] == ["Seccomp:\t2", "exec=ok"]
