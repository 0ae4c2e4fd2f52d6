"""Markdown tables from bench/storage-peers/run.sh's raw results.

Usage: python summarize.py OUT MACHINE_LINE BIG_BYTES
"""

from __future__ import annotations

import glob
import json
import os
import statistics
import sys

ENGINES = ["berth", "docker", "podman"]


def _load(out: str, tag: str) -> tuple[dict[str, list[float]], int]:
    wall: dict[str, list[float]] = {}
    paths = sorted(glob.glob(f"{out}/{tag}-round-*.json"))
    for path in paths:
        with open(path) as f:
            for r in json.load(f)["results"]:
                wall.setdefault(r["command"], []).extend(t * 1000 for t in r["times"])
    return wall, len(paths)


def _fmt(v: list[float]) -> str:
    return f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})"


def create(out: str) -> list[str]:
    wall, nr = _load(out, "create")
    if not wall:
        return []
    med = {k: statistics.median(v) for k, v in wall.items()}
    lines = ["### `create` from a 21-layer image (busybox + 20 one-file layers) vs the 1-layer busybox", "",
             f"hyperfine -N, {nr} rounds (order rotated), {len(next(iter(wall.values()))) // nr} runs per round; "
             "wall ms, median (min–max).", "",
             "| engine | 21-layer | 1-layer | 21/1 |", "|---|---|---|---|"]
    for e in ENGINES:
        a, b = f"{e} create l20", f"{e} create busybox"
        if a in wall and b in wall:
            lines.append(f"| {e} | {_fmt(wall[a])} | {_fmt(wall[b])} | {med[a] / med[b]:.2f} |")
    lines += ["", "| ratio (21-layer create, medians) | value |", "|---|---|"]
    for a, b in [("docker", "berth"), ("podman", "berth")]:
        lines.append(f"| {a} / {b} | {med[f'{a} create l20'] / med[f'{b} create l20']:.2f} |")
    return lines + [""]


def cow(out: str, big: int) -> list[str]:
    lines: list[str] = []
    inside = f"{out}/cow-inside.txt"
    if os.path.exists(inside):
        first: dict[tuple[str, str], list[float]] = {}
        second: dict[tuple[str, str], list[float]] = {}
        with open(inside) as f:
            for line in f:
                p = line.split()
                try:
                    first.setdefault((p[0], p[1]), []).append(float(p[2]))
                    second.setdefault((p[0], p[1]), []).append(float(p[3]))
                except (IndexError, ValueError):
                    first.setdefault((p[0], p[1]), [])
        lines += [f"### 1-byte append to a {big / 2**20:.0f} MiB file: image layer (copy-up) vs bind-mounted volume",
                  "", "Inside the container (`busybox time -f %e`, 10 ms resolution; a fresh container per sample), "
                  "seconds, median (min–max):", "",
                  "| engine | file | first append | second append | samples |", "|---|---|---|---|---|"]
        keys = sorted(first, key=lambda k: (ENGINES.index(k[0]) if k[0] in ENGINES else 9, k[1]))
        for e, path in keys:
            v = first[(e, path)]
            s = second.get((e, path), [])
            fs = f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" if v else "failed"
            ss = f"{statistics.median(s):.2f}" if s else "–"
            lines.append(f"| {e} | {path} | {fs} | {ss} | {len(v)} |")
        lines.append("")
    wall, nr = _load(out, "cow")
    if wall:
        med = {k: statistics.median(v) for k, v in wall.items()}
        lines += [f"Whole `run --rm IMG sh -c 'echo -n x >> FILE'` (hyperfine -N, {nr} rounds, order rotated), "
                  "wall ms, median (min–max):", "",
                  "| engine | image-layer file | volume file | layer − volume | layer / volume |",
                  "|---|---|---|---|---|"]
        for e in ENGINES:
            a, b = f"{e} layer", f"{e} volume"
            if a in wall and b in wall:
                lines.append(f"| {e} | {_fmt(wall[a])} | {_fmt(wall[b])} | {med[a] - med[b]:.0f} | "
                             f"{med[a] / med[b]:.2f} |")
        lines += ["", "| ratio (image-layer run, medians) | value |", "|---|---|"]
        for a, b in [("docker", "berth"), ("podman", "berth")]:
            lines.append(f"| {a} / {b} | {med[f'{a} layer'] / med[f'{b} layer']:.2f} |")
        lines.append("")
    return lines


def main() -> int:
    out, machine, big = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lines = ["## Storage side by side: berth vs docker vs podman", "", f"Machine: {machine}", ""]
    lines += create(out) + cow(out, big)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
