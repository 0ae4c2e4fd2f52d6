"""Markdown tables from bench/engine/run.sh's raw results.

Usage: python summarize.py OUT MACHINE_LINE N
Reads OUT/<tag>-round-*.json (hyperfine), OUT/<tag>-interleave.json (bench/runtime/interleave.py) and
OUT/mem.txt; prints markdown.
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


def memory(out: str, n: int) -> list[str]:
    path = f"{out}/mem.txt"
    if not os.path.exists(path):
        return []
    per: dict[str, list[tuple[int, int]]] = {}
    daemons: dict[str, list[int]] = {}
    misc: dict[str, dict[str, float]] = {}
    with open(path) as fh:
        rows = [line.split() for line in fh if line.strip()]
    for f in rows:
        if f[1] == "percontainer":
            per.setdefault(f[0], []).append((int(f[2]), int(f[3])))
        elif f[1] == "daemons":
            daemons[f[0]] = [int(x) for x in f[2:]]
        else:
            misc.setdefault(f[0], {})[f[1]] = float(f[2])
    if not per:
        return []
    name = {"berth": "berth monitor", "docker": "containerd-shim-runc-v2", "podman": "conmon"}
    lines = [f"### Memory per idle container ({n} × detached `busybox sleep 3600`)", "",
             "RSS and PSS from /proc/PID/smaps_rollup, KiB, 5 s after the last start. Daemons: berthd + its monitor zygote; "
             "dockerd + containerd; podman has none.", "",
             "| engine | per-container process | RSS median (min–max) | PSS median (min–max) | daemons RSS before → after "
             "(per ctr) | daemons PSS before → after (per ctr) | total PSS added per ctr | start N (s) | rm -f N (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in ENGINES:
        if e not in per:
            continue
        rs = [r for r, _ in per[e]]
        ps = [p for _, p in per[e]]
        b_rss, a_rss, b_pss, a_pss = daemons.get(e, [0, 0, 0, 0])
        total_pss = (sum(ps) + a_pss - b_pss) / n
        m = misc.get(e, {})
        lines.append(
            f"| {e} | {name[e]} ({len(rs)}) | {statistics.median(rs):.0f} ({min(rs)}–{max(rs)}) "
            f"| {statistics.median(ps):.0f} ({min(ps)}–{max(ps)}) "
            f"| {b_rss} → {a_rss} ({(a_rss - b_rss) / n:+.0f}) | {b_pss} → {a_pss} ({(a_pss - b_pss) / n:+.0f}) "
            f"| {total_pss:.0f} | {m.get('start_s', 0):.2f} | {m.get('rm_s', 0):.2f} |")
    return lines + [""]


def main() -> int:
    out, machine, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lines = ["## Engine end-to-end: berth vs docker vs podman", "",
             f"Machine: {machine}", f"Versions: docker CLI {_ver(['/usr/local/bin/docker', '--version'])}; "
             f"{_ver(['dockerd', '--version'])}; {_ver(['podman', '--version'])} (runtime runc: "
             f"{_ver(['runc', '--version'])}); {_ver(['conmon', '--version'])}", ""]
    for tag in ("run", "exec"):
        lines += timing(out, tag)
    lines += memory(out, n)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
