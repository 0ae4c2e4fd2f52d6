"""Where does `berth-runtime run` spend its wall time? Runs the runtime's own code in-process with timing
wrappers around its phases (parent and container init; CLOCK_MONOTONIC is shared by both), N times, and
prints median start offset and duration per phase. The wrappers are installed from outside: nothing in
src/ is changed. Interpreter start-up (before this script's first line) is measured separately by
run.sh-style hyperfine runs of `python -IS -c pass`.

Usage (root): .venv/bin/python -I bench/runtime/phases.py BUNDLE [RUNS]   (python -IS is used for the runs)
env BERTH_SRC: another source tree to time (e.g. a patched copy of src/), default this checkout's src/
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The child script: one `run`, timing events appended to EVENTS (O_APPEND writes are atomic per line).
CHILD = r'''
import time
T0 = time.monotonic_ns()
import os, sys
sys.path[:0] = [SRC]
EV = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

def ev(name, t0, t1=None):
    os.write(EV, f"{os.getpid()} {name} {t0} {t1 if t1 is not None else t0}\n".encode())

from berth.runtime import seccomp_program, warm, cli, commands, container, process, init, state, cgroup, trampoline, devices, rootfs
from berth.runtime.channel import Channel
ev("imports", T0, time.monotonic_ns())

def wrap(owner, attr, name=None, label=None):
    """Time owner.attr; the event is called name (default attr), or label(*args) when given."""
    fn = getattr(owner, attr)
    def w(*a, **k):
        t = time.monotonic_ns()
        try:
            return fn(*a, **k)
        finally:
            ev(label(*a) if label else name or attr, t, time.monotonic_ns())
    setattr(owner, attr, w)

for owner, attr in [(container, "load_bundle"), (seccomp_program, "compile_for"), (process, "spawn_init"),
                    (state, "save"), (container, "start"), (container, "wait_child"), (container, "_destroy"), (warm, "stop"),
                    (init, "_prepare_process"), (init, "_load_seccomp"), (devices, "create_all"), (rootfs, "readonly_root"),
                    (rootfs, "readonly_paths"), (rootfs, "mask_paths"), (rootfs.Rootfs, "prepare"),
                    (rootfs.Rootfs, "mount_all"), (rootfs.Rootfs, "pivot")]:
    wrap(owner, attr)
wrap(rootfs.Rootfs, "mount_one", label=lambda self, m: "mount " + m["destination"])
for attr in ("expect", "expect_fds"):
    wrap(Channel, attr, label=lambda self, typ, *a: "init waits for " + typ)

real_manager = cgroup.manager
def manager(*a, **k):
    t = time.monotonic_ns()
    m = real_manager(*a, **k)
    ev("cgroup.manager", t, time.monotonic_ns())
    if m is not None:
        for attr in ("create", "open_self_join", "apply", "set"):
            wrap(m, attr, "cgroup." + attr)
    return m
cgroup.manager = manager

real_fork = os.fork
def fork():
    t = time.monotonic_ns()
    pid = real_fork()
    ev("fork (child side)" if pid == 0 else "fork (parent side)", t, time.monotonic_ns())
    return pid
os.fork = fork

real_execve = trampoline.execve
def execve(*a, **k):
    ev("execve", time.monotonic_ns())
    return real_execve(*a, **k)
trampoline.execve = execve

rc = cli.main(sys.argv[1:])
ev("end", time.monotonic_ns())
sys.exit(rc)
'''


def main() -> int:
    bundle = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    work = tempfile.mkdtemp(prefix="berth-phases-")
    events = os.path.join(work, "events")
    script = os.path.join(work, "child.py")
    with open(script, "w") as f:
        f.write(f"SRC = {os.environ.get('BERTH_SRC') or os.path.join(REPO, 'src')!r}\nEVENTS = {events!r}\n" + CHILD)
    try:
        per_phase: dict[str, list[tuple[float, float]]] = {}
        totals = []
        for i in range(runs + 2):  # two warm-ups
            if os.path.exists(events):
                os.unlink(events)
            subprocess.run(["/usr/bin/python3.11", "-IS", script, "--root", os.path.join(work, "state"), "run",
                            "-b", bundle, f"phases-{i}"], check=True)
            if i < 2:
                continue
            with open(events) as f:
                rows = [line.split() for line in f]
            t0 = min(int(r[-2]) for r in rows)
            seen: dict[str, int] = {}
            for name, a, b in ((r[1:-2], int(r[-2]), int(r[-1])) for r in rows):
                label = " ".join(name)
                seen[label] = seen.get(label, 0) + 1
                if seen[label] > 1:
                    label += f" #{seen[label]}"
                per_phase.setdefault(label, []).append(((a - t0) / 1e6, (b - a) / 1e6))
            totals.append(max(int(r[-1]) for r in rows) / 1e6 - t0 / 1e6)
        print(f"{runs} runs of `run` (after python start-up); median end-to-end {statistics.median(totals):.1f} ms")
        print(f"{'phase':34} {'starts at (ms)':>15} {'takes (ms)':>11}")
        for label, vals in sorted(per_phase.items(), key=lambda kv: statistics.median(v[0] for v in kv[1])):
            print(f"{label:34} {statistics.median(v[0] for v in vals):15.1f} {statistics.median(v[1] for v in vals):11.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)  # also when a run failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
