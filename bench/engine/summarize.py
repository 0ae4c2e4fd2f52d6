"""Markdown tables from bench/engine/run.sh's raw results.

Usage: python summarize.py OUT MACHINE_LINE
Reads OUT/<tag>-round-*.json (hyperfine) and OUT/<tag>-interleave.json (bench/runtime/interleave.py);
prints markdown. (Memory: bench/engine/monitor-memory.sh writes its own summary.)
"""

from __future__ import annotations

import glob
import json
import os
import statistics
import subprocess
import sys

ENGINES = ["berth", "docker", "podman"]
TITLES = {"run": "`run --rm bench-busybox true`", "exec": "`exec C true`"}


def _ver(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def _json(path: str):
    with open(path) as f:
        return json.load(f)


def timing(out: str, tag: str) -> list[str]:
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    rounds = sorted(glob.glob(f"{out}/{tag}-round-*.json"))
    if not rounds:
        return []
    for path in rounds:
        for r in _json(path)["results"]:
            wall.setdefault(r["command"], []).extend(t * 1000 for t in r["times"])
            cpu.setdefault(r["command"], []).append((r["user"] + r["system"]) * 1000)
    med = {k: statistics.median(v) for k, v in wall.items()}
    lines = [f"### {TITLES.get(tag, tag)}", "",
             f"hyperfine -N, {len(rounds)} rounds (engine order rotated per round), "
             f"{len(next(iter(wall.values()))) // len(rounds)} runs each after warm-up; cpu = user+sys of the CLI and "
             "what it waited for (docker/berth: the client only, podman: all its work).", "",
             "| engine | wall median (min–max), ms | cpu, ms |", "|---|---|---|"]
    for e in ENGINES:
        if e in wall:
            v = wall[e]
            lines.append(f"| {e} | {med[e]:.1f} ({min(v):.1f}–{max(v):.1f}) | {statistics.median(cpu[e]):.1f} |")
    il_path = f"{out}/{tag}-interleave.json"
    il = _json(il_path) if os.path.exists(il_path) else None
    lines += ["", "| ratio | of hyperfine medians | median of per-round ratios (interleaved) |", "|---|---|---|"]
    for a, b in [("docker", "berth"), ("podman", "berth"), ("podman", "docker")]:
        pr = "–"
        if il:
            pr = f"{statistics.median(x / y for x, y in zip(il[a]['wall_ms'], il[b]['wall_ms'], strict=True)):.2f}"
        lines.append(f"| {a} / {b} | {med[a] / med[b]:.2f} | {pr} |")
    if il:
        n = len(il["berth"]["wall_ms"])
        lines += ["", f"Interleaved ({n} rounds, each runs the three once, order rotated): "
                  + ", ".join(f"{e} {statistics.median(il[e]['wall_ms']):.1f} ms" for e in ENGINES)]
    return lines + [""]


def main() -> int:
    out, machine = sys.argv[1], sys.argv[2]
    lines = ["## Engine end-to-end: berth vs docker vs podman", "",
             f"Machine: {machine}", f"Versions: docker CLI {_ver(['/usr/local/bin/docker', '--version'])}; "
             f"{_ver(['dockerd', '--version'])}; {_ver(['podman', '--version'])} (runtime runc: "
             f"{_ver(['runc', '--version'])}); {_ver(['conmon', '--version'])}", ""]
    for tag in ("run", "exec"):
        lines += timing(out, tag)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
