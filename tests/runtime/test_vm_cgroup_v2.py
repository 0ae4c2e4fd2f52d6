"""berth-runtime on a pure cgroup v2 host: the cgroup and lifecycle tests again, inside a throwaway VM.

The dev and CI machines are hybrid (v1 controllers), so the v2 code paths of the runtime (limits
through memory.max/pids.max, the freezer through cgroup.freeze, the eBPF device filter, the cgroup
namespace) only run for real here. One boot; ~1-2 min under TCG emulation.
"""

from __future__ import annotations

import pytest

from berth.testing.vm import VM_RUN, VM_TIMEOUT, run_pytest, vm_run_available


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.timeout(2 * VM_TIMEOUT + 150)
def test_runtime_cgroup_tests_pass_on_pure_v2():
    if not vm_run_available():
        pytest.skip(f"vm-run not found at {VM_RUN} (set BERTH_VM_RUN)")
    # refuse to run unless the VM really is pure v2 (no v1 hierarchy mounted), so the v2 paths ran
    script = ("grep -q ' - cgroup2 ' /proc/self/mountinfo && ! grep -q ' - cgroup ' /proc/self/mountinfo"
              " || { echo 'not a pure cgroup v2 host'; exit 99; }; exec \"$@\"")
    run_pytest("v2", "-m", "not vm", "tests/runtime/test_cgroups.py", "tests/runtime/test_lifecycle.py",
               prefix=("sh", "-c", script, "sh"))
