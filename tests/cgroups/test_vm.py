"""Run this whole area again inside throwaway VMs with a pure cgroup v2 and a pure v1 layout.

The host is hybrid, so test_manager.py exercises the v1 managers plus the unified half here; the VM
runs show the same tests passing on the layouts the host cannot give (one boot per layout).
"""

from __future__ import annotations

import pytest

from berth.testing.vm import VM_RUN, VM_TIMEOUT, run_pytest, vm_run_available


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.timeout(2 * VM_TIMEOUT + 150)
@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_area_passes_in_vm(layout):
    if not vm_run_available():
        pytest.skip(f"vm-run not found at {VM_RUN} (set BERTH_VM_RUN)")
    run_pytest(layout, "tests/cgroups", "-m", "not vm", env={"BERTH_EXPECT_CGROUP": layout})
