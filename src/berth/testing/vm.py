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


# A guest's whole run, and one test inside it. Guests get one vCPU: with two, the emulated guest (QEMU
# TCG, one host thread per vCPU) now and then stalled (1 in 11 `make test` runs, 2 in ~60 guest runs by
# hand): both guest CPUs in a soft lockup, each trapping again and again on an int3 at a jump-label
# site in the slab allocator (__kmem_cache_alloc_node+0x5e) that the kernel had already patched back
# to its nop. The first memory cgroup made in the guest flips a static key (memcg kmem accounting);
# the kernel patches the code with int3 + text_poke, and the emulator kept running stale translated
# code with the int3 in it on the other vCPU: cross-modified code, an emulator problem, not berth's.
# With one vCPU there is no other CPU to run stale code: 156 guest runs, two guests at a time, none
# stalled (at the old rate ~5 would have), and a guest's tests took no longer (one pytest process).
# In case: a run that the VM timeout or a test's timeout ended is tried once more, with a warning that
# keeps the first run's tail and the guest's console; any other failure fails at once.
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
    # "quiet") lets a soft lockup's stack trace through, and every CPU's (stalls hit both at once).
    cmd[1:1] = ["--keep", "--append", "loglevel=5", "--append", "softlockup_all_cpu_backtrace=1"]
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
