"""Helpers for tests that run part of the suite inside a throwaway VM (the project's ../shared/vm/vm-run).

Only the test suite uses this module."""

from __future__ import annotations

import os

# the checkout: src/berth/testing/vm.py -> three levels up
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VM_RUN = os.environ.get("BERTH_VM_RUN") or os.path.join(os.path.dirname(REPO), "shared", "vm", "vm-run")
# vm-run mounts fresh tmpfs here in the guest, hiding the host's files below them
_GUEST_TMPFS = ("/tmp", "/var/tmp", "/var/lib/berth", "/run")


def vm_run_available() -> bool:
    return os.access(VM_RUN, os.X_OK)


def vm_command(layout: str, timeout: int, *argv: str, env: dict[str, str] | None = None) -> list[str]:
    """A vm-run command line running argv in REPO inside a VM with the given cgroup layout."""
    cmd = [VM_RUN, "--cgroup", layout, "--timeout", str(timeout), "--cwd", REPO,
           "-e", "PYTHONDONTWRITEBYTECODE=1"]
    for k, v in (env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    if any(d == REPO or REPO.startswith(d + "/") for d in _GUEST_TMPFS):
        cmd += ["--rw", REPO]  # a checkout under /tmp (e.g. a CI clone) would be hidden otherwise
    return [*cmd, "--", *argv]
