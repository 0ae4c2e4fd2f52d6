"""Run this whole area again inside throwaway VMs with a pure cgroup v2 and a pure v1 layout.

The host is hybrid, so test_manager.py exercises the v1 managers plus the unified half here; the VM
runs show the same tests passing on the layouts the host cannot give (one boot per layout).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from berth.testing.vm import VM_RUN, vm_command, vm_run_available


@pytest.mark.vm
@pytest.mark.xdist_group("vm")  # one VM at a time: each emulates 2 vCPUs on a 2-core host
@pytest.mark.slow
@pytest.mark.timeout(540)
@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_area_passes_in_vm(layout):
    if not vm_run_available():
        pytest.skip(f"vm-run not found at {VM_RUN} (set BERTH_VM_RUN)")
    cmd = vm_command(layout, 420, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                     "tests/cgroups", "-m", "not vm", env={"BERTH_EXPECT_CGROUP": layout})
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=480)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, f"cgroup {layout} VM run failed (exit {r.returncode}):\n{out[-6000:]}"
    assert " passed" in out and " failed" not in out, out[-3000:]
