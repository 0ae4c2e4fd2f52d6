"""Interleaved timing of several commands: round i runs every command once (order rotated each round), so
slow phases of a shared, noisy machine hit all of them alike. Per command: median wall, median cpu
(user+sys of the command and the children it waited for, from wait4); per pair: the median of per-round wall ratios (the anchors'
method). Spawns with posix_spawn and times spawn..wait4 with CLOCK_MONOTONIC.

Usage: python interleave.py OUT.json RUNS WARMUP NAME=COMMAND... (COMMAND split on spaces; no shell)
env GAP: seconds of quiet before every run (default 0: back to back). With GAP=0.1 each start finds
the kernel idle, as a container started now and then does (docs/benchmarks.md, "Back-to-back and
spaced starts").
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time


def run_once(argv: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter_ns() - t0) / 1e6
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed with status {os.waitstatus_to_exitcode(status)}")
    # (no ru_maxrss: Linux keeps the spawning process's high-water mark across execve, so it would
    # report this Python's RSS; /usr/bin/time, a small C parent, measures peak RSS instead)
    return wall, (ru.ru_utime + ru.ru_stime) * 1000


def main() -> int:
    out, runs, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cmds = [(a.split("=", 1)[0], a.split("=", 1)[1].split()) for a in sys.argv[4:]]
    gap = float(os.environ.get("GAP", "0"))
    res: dict[str, dict[str, list]] = {n: {"wall_ms": [], "cpu_ms": []} for n, _ in cmds}
    for i in range(warmup + runs):
        k = i % len(cmds)
        for name, argv in cmds[k:] + cmds[:k]:
            if gap:
                time.sleep(gap)
            wall, cpu = run_once(argv)
            if i >= warmup:
                res[name]["wall_ms"].append(wall)
                res[name]["cpu_ms"].append(cpu)
    with open(out, "w") as f:
        json.dump(res, f)
    for name, r in res.items():
        print(f"{name:16} wall {statistics.median(r['wall_ms']):7.1f} ms  cpu {statistics.median(r['cpu_ms']):6.1f} ms")
    return 0


def pair_ratio(res: dict, a: str, b: str) -> float:
    """Median over rounds of wall(a)/wall(b) (both ran in the same round)."""
    return statistics.median(x / y for x, y in zip(res[a]["wall_ms"], res[b]["wall_ms"], strict=True))


if __name__ == "__main__":
    sys.exit(main())
