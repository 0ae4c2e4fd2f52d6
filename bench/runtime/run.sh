#!/usr/bin/env bash
# OCI runtime start latency and peak memory: berth-runtime vs runc vs crun, `<rt> run` of one busybox
# bundle (args ["true"], terminal false), plain and with Docker's default seccomp profile
# (berth.seccomp.default_profile for the spec's bounding capabilities, the same profile for all three).
# Method as in /work/shared/anchors/01-oci-runtime.sh: everything runs in a private mount namespace with
# /sys/fs/cgroup/unified unmounted, because crun 1.8 refuses hybrid cgroups (the host is not changed).
#
# Usage: sudo bench/runtime/run.sh            env: RUNS (per round, 10), ROUNDS (3), RSS_RUNS (7), IL_RUNS (40),
#        SP_RUNS (spaced rounds, 30),
#        WORK (/tmp/berth-bench-runtime), BERTH_RUNTIME (.venv/bin/berth-runtime), KEEP=1 keeps bundles,
#        NICE (e.g. -19: run everything at that niceness, so other work on a shared machine disturbs less)
# Output: a markdown table on stdout and in $WORK/summary.md; raw hyperfine JSON in $WORK/round-*.json.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_root
need_tools runc crun hyperfine unshare /usr/bin/time
export NICE=${NICE:-0}
RUNS=${RUNS:-10}; ROUNDS=${ROUNDS:-3}; RSS_RUNS=${RSS_RUNS:-7}; IL_RUNS=${IL_RUNS:-40}; SP_RUNS=${SP_RUNS:-30}
WORK=${WORK:-/tmp/berth-bench-runtime}
BERTH_RUNTIME=${BERTH_RUNTIME:-$REPO/.venv/bin/berth-runtime}
export BERTH_RUNTIME
export BERTH_SECCOMP_CACHE="$WORK/seccomp-cache"   # private BPF cache: the first run fills it

cleanup() {
  local rt
  for rt in berth runc crun; do
    case $rt in berth) exe=$BERTH_RUNTIME ;; *) exe=$rt ;; esac
    for id in $("$exe" --root "$WORK/state-$rt" list -q 2>/dev/null || true); do
      "$exe" --root "$WORK/state-$rt" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  # keep the small result files; drop bundles and state unless KEEP=1
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"/rootfs "$WORK"/state-* "$WORK"/seccomp-cache "$WORK"/plain \
    "$WORK"/seccomp "$WORK"/probe-*
}
rm -rf "$WORK"; mkdir -p "$WORK"
trap cleanup EXIT

# Bundles: one rootfs, config from `runc spec` (so every runtime reads the same file), root.path absolute.
(cd "$WORK" && runc spec && mv config.json runc-spec.json)
"$PY" - "$WORK" <<'PY'
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["REPO"], "src"))
from berth.bootstrap import make_rootfs
from berth.seccomp import default_profile

work = sys.argv[1]
rootfs = make_rootfs(os.path.join(work, "rootfs"))
spec = json.load(open(os.path.join(work, "runc-spec.json")))
spec["root"] = {"path": rootfs, "readonly": True}
spec["process"]["terminal"] = False
profile = default_profile(spec["process"]["capabilities"]["bounding"])

def bundle(name, args, seccomp):
    cfg = json.loads(json.dumps(spec))
    cfg["process"]["args"] = args
    if seccomp:
        cfg["linux"]["seccomp"] = profile
    os.makedirs(os.path.join(work, name))
    with open(os.path.join(work, name, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)

bundle("plain", ["true"], False)
bundle("seccomp", ["true"], True)
probe = ["sh", "-c", "grep -E '^Seccomp(_filters)?:' /proc/self/status | tr -d '\\t' | tr '\\n' ' '"]
bundle("probe-plain", probe, False)
bundle("probe-seccomp", probe, True)
print(f"seccomp profile: {len(profile['syscalls'])} rules, "
      f"{sum(len(r['names']) for r in profile['syscalls'])} syscall names, default {profile['defaultAction']}")
PY

cat > "$WORK/inner.sh" <<INNER
set -euo pipefail
umount /sys/fs/cgroup/unified 2>/dev/null || true
declare -A EXE=([berth]="$BERTH_RUNTIME" [runc]=runc [crun]=crun)
# Sanity: each runtime runs each bundle, exit 0, and the filter is really installed with the profile.
for rt in berth runc crun; do
  for b in plain seccomp; do
    "\${EXE[\$rt]}" --root "$WORK/state-\$rt" run -b "$WORK/\$b" "sanity-\$rt-\$b"
    echo "sanity \$rt \$b: \$("\${EXE[\$rt]}" --root "$WORK/state-\$rt" run -b "$WORK/probe-\$b" "probe-\$rt-\$b")"
  done
done
names=(berth runc crun berth+seccomp runc+seccomp crun+seccomp)
cmd() {  # cmd NAME -> the command line hyperfine runs (no shell: -N)
  local rt=\${1%+seccomp} b=plain; [ "\$1" = "\$rt" ] || b=seccomp
  echo "\${EXE[\$rt]} --root $WORK/state-\$rt run -b $WORK/\$b bench-\$rt-\$b"
}
for round in \$(seq 1 $ROUNDS); do
  # rotate the order each round so slow drifts of the (shared, noisy) machine hit every runtime alike
  args=()
  for i in \$(seq 0 5); do n=\${names[((i + round) % 6)]}; args+=(-n "\$n" "\$(cmd "\$n")"); done
  hyperfine -N -w 3 -r $RUNS --style basic --export-json "$WORK/round-\$round.json" "\${args[@]}" >/dev/null
  echo "round \$round done"
done
# Interleaved rounds (each round runs all six, order rotated): per-round ratios resist the machine's noise.
il=()
for n in "\${names[@]}"; do il+=("\$n=\$(cmd "\$n")"); done
"$PY" "$REPO/bench/runtime/interleave.py" "$WORK/interleave.json" $IL_RUNS 3 "\${il[@]}"
# Spaced rounds: the same, with 100 ms of quiet before every start, so each finds the kernel idle as an
# occasional container start does (back to back, each cgroup.procs write finds the previous start's RCU
# grace period still in effect and skips its own: docs/benchmarks.md, "Back-to-back and spaced starts").
GAP=0.1 "$PY" "$REPO/bench/runtime/interleave.py" "$WORK/spaced.json" $SP_RUNS 3 "\${il[@]}"
# Spaced, with hyperfine: every timed start after 100 ms of quiet (the prepare command)
sp=()
for n in "\${names[@]}"; do sp+=(-n "\$n, spaced" "\$(cmd "\$n")"); done
hyperfine -N -w 3 -r $RUNS --style basic --prepare "sleep 0.1" --export-json "$WORK/spaced-hf.json" "\${sp[@]}" >/dev/null
# Cold BPF cache: berth compiles the profile on every start (what runc and crun always do).
hyperfine -N -w 1 -r $RUNS --style basic --prepare "rm -rf $BERTH_SECCOMP_CACHE" \
  --export-json "$WORK/cold.json" -n "berth+seccomp (cold BPF cache)" "\$(cmd berth+seccomp)" >/dev/null
# Peak RSS: getrusage max RSS of the runtime and the children it waited for.
: > "$WORK/rss.txt"
for n in "\${names[@]}"; do
  for i in \$(seq 1 $RSS_RUNS); do
    echo "\$n \$(/usr/bin/time -f %M \$(cmd "\$n") 2>&1 >/dev/null | tail -1)" >> "$WORK/rss.txt"
  done
done
INNER
nice -n "${NICE:-0}" unshare -m --propagation private bash "$WORK/inner.sh"

"$PY" - "$WORK" "$(machine_line)" <<'PY'
import glob, json, os, statistics, subprocess, sys
work, machine = sys.argv[1], sys.argv[2]
wall, cpu = {}, {}
for path in sorted(glob.glob(f"{work}/round-*.json")) + [f"{work}/spaced-hf.json", f"{work}/cold.json"]:
    for r in json.load(open(path))["results"]:
        wall.setdefault(r["command"], []).extend(t * 1000 for t in r["times"])
        cpu.setdefault(r["command"], []).append((r["user"] + r["system"]) * 1000)  # per-round means
rss = {}
for line in open(f"{work}/rss.txt"):
    name, kib = line.rsplit(None, 1)
    rss.setdefault(name, []).append(int(kib))
med = {k: statistics.median(v) for k, v in wall.items()}

def ver(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"

out = [f"Machine: {machine}; niceness {os.environ.get('NICE', '0')}", f"Versions: {ver(['runc', '--version'])}; {ver(['crun', '--version'])}; "
       f"{ver([os.environ['BERTH_RUNTIME'], '--version'])}", "",
       "| runtime | wall median (min–max), ms | cpu user+sys, ms | peak RSS median (min–max), KiB |",
       "|---|---|---|---|"]
order = ["berth", "runc", "crun", "berth+seccomp", "runc+seccomp", "crun+seccomp"]
rows = order + [f"{k}, spaced" for k in order]
for k, v in sorted(wall.items(), key=lambda kv: rows.index(kv[0]) if kv[0] in rows else 99):
    r = rss.get(k, [])
    rs = f"{statistics.median(r):.0f} ({min(r)}–{max(r)})" if r else "–"
    out.append(f"| {k} | {med[k]:.1f} ({min(v):.1f}–{max(v):.1f}) | {statistics.median(cpu[k]):.1f} | {rs} |")
out += ["", "| ratio (wall medians) | value |", "|---|---|"]
for a, b in [("berth", "runc"), ("berth", "crun"), ("berth+seccomp", "runc+seccomp"),
             ("berth+seccomp", "crun+seccomp"), ("berth+seccomp", "berth"), ("runc", "crun")]:
    out.append(f"| {a} / {b} | {med[a] / med[b]:.2f} |")
    if f"{a}, spaced" in med:
        out.append(f"| {a} / {b}, spaced | {med[f'{a}, spaced'] / med[f'{b}, spaced']:.2f} |")
sys.path.insert(0, os.path.join(os.environ["REPO"], "bench", "runtime"))
from interleave import pair_ratio

for il_name, il_what in [("interleave", "back to back"), ("spaced", "100 ms of quiet before every start")]:
    il_path = f"{work}/{il_name}.json"
    if not os.path.exists(il_path):
        continue
    il = json.load(open(il_path))
    n = len(next(iter(il.values()))["wall_ms"])
    out += ["", f"Interleaved, {il_what}: {n} rounds, each runs all six once (rotated order); cpu from wait4.", "",
            "| runtime | wall median (min–max), ms | cpu median, ms |", "|---|---|---|"]
    for k in order:
        r = il[k]
        out.append(f"| {k} | {statistics.median(r['wall_ms']):.1f} ({min(r['wall_ms']):.1f}–{max(r['wall_ms']):.1f}) "
                   f"| {statistics.median(r['cpu_ms']):.1f} |")
    out += ["", "| per-round ratio (median of wall A/B) | value |", "|---|---|"]
    for a, b in [("berth", "runc"), ("berth", "crun"), ("berth+seccomp", "runc+seccomp"),
                 ("berth+seccomp", "crun+seccomp"), ("berth+seccomp", "berth"), ("runc", "crun")]:
        out.append(f"| {a} / {b} | {pair_ratio(il, a, b):.2f} |")
text = "\n".join(out) + "\n"
open(f"{work}/summary.md", "w").write(text)
json.dump({"wall_ms": wall, "cpu_ms": cpu, "rss_kib": rss}, open(f"{work}/summary.json", "w"))
print(text)
PY
