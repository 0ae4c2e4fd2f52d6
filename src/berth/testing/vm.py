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
    cmd = [VM_RUN, "--cgroup", layout, "--cpus", "1", "--timeout", str(timeout), "--cwd", REPO,
           "-e", "PYTHONDONTWRITEBYTECODE=1"]
    for k, v in (env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    if any(d == REPO or REPO.startswith(d + "/") for d in _GUEST_TMPFS):
        cmd += ["--rw", REPO]  # a checkout under /tmp (e.g. a CI clone) would be hidden otherwise
    return [*cmd, "--", *argv]


# A guest's whole run, and one test inside it. Guests get one vCPU: with two, QEMU's TCG now and then
# kept running stale translated code on the second vCPU (an int3 at a jump-label site in the slab
# allocator, already patched back to its nop when the first memory cgroup flipped a static key), and
# both vCPUs soft-locked: 1 in ~30 guest runs; none in 156 runs with one vCPU. An emulator problem, not
# berth's. As a safety net, a run that the VM timeout or a test's timeout ended is tried once more,
# with a warning that keeps its tail and the guest kernel's console; any other failure fails at once.
VM_TIMEOUT = 240
GUEST_TEST_TIMEOUT = 150


def run_pytest(layout: str, *pytest_args: str, env: dict[str, str] | None = None,
               prefix: tuple[str, ...] = ()) -> str:
    """`python -m pytest -q PYTEST_ARGS` in REPO inside a VM (argv prefixed by `prefix`, e.g. a shell
    check); -> its output. AssertionError with the output's tail if it fails."""
    import subprocess
    import sys
    import warnings

    argv = [*prefix, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--timeout", str(GUEST_TEST_TIMEOUT), "--timeout-method", "thread", *pytest_args]
    cmd = vm_command(layout, VM_TIMEOUT, *argv, env=env)
    # The job directory holds the guest kernel's console, read on a stall; loglevel=5 (after vm-run's
    # "quiet") lets a soft lockup's stack trace through.
    cmd[1:1] = ["--keep", "--append", "loglevel=5"]
    for attempt in (1, 2):
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=VM_TIMEOUT + 60)
        out = r.stdout.decode(errors="replace")
        console = _take_console(out)
        stalled = r.returncode == 124 or "Timeout (0:" in out or "+++ Timeout +++" in out
        if r.returncode == 0 or not stalled or attempt == 2:
            break
        warnings.warn(f"cgroup {layout} VM run stalled (exit {r.returncode}); trying once more. Its tail:\n"
                      f"{out[-3000:]}\nThe guest kernel's console (tail):\n{console[-4000:]}", stacklevel=2)
    assert r.returncode == 0, f"cgroup {layout} VM run failed (exit {r.returncode}):\n{out[-6000:]}"
    assert " passed" in out and " failed" not in out, out[-3000:]
    return out


def _take_console(out: str) -> str:
    """The console log of the job directory vm-run kept (named in its last line), which is removed."""
    import shutil

    marker = "job directory kept: "
    at = out.rfind(marker)
    if at < 0:
        return ""
    jobdir = out[at + len(marker):].splitlines()[0].strip()
    try:
        with open(os.path.join(jobdir, "console.log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""
    finally:
        if os.path.basename(jobdir).startswith("vm-run."):
            shutil.rmtree(jobdir, ignore_errors=True)
