#!/usr/bin/env bash
# Where `berth run --rm IMG true` and `berth exec C true` spend their time (not run by run-all):
#   1. the CLI process: interpreter start, imports (python -X importtime), `berth version` (one round trip)
#   2. the API steps from a warm client (bench/engine/phases.py)
#   3. a process timeline of one `run --rm`: every execve / exit in berthd, the monitor host,
#      berth-runtime and the container (strace -f -ttt on those processes), relative to the CLI's start
#   4. berthd's own CPU by function while runs loop (py-spy record, raw stacks summarised)
# Usage: sudo bench/engine/profile.sh     env: RUNS (20), OUT (/tmp/bench-engine-profile-results),
#        BASE (/tmp/bench-engine-profile), NICE
set -euo pipefail
if [ -n "${NICE:-}" ] && [ -z "${_BENCH_NICED:-}" ]; then
  _BENCH_NICED=1 exec nice -n "$NICE" bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
need_root
need_tools hyperfine strace findmnt
RUNS=${RUNS:-20}
OUT=${OUT:-/tmp/bench-engine-profile-results}
BASE=${BASE:-/tmp/bench-engine-profile}
PYSPY=${PYSPY:-$REPO/.venv/bin/py-spy}
. "$REPO/bench/engine/peers.sh"
rm -rf "$OUT"; mkdir -p "$OUT"
trap engines_stop EXIT
trap 'exit 130' INT TERM
log "machine: $(machine_line)"
engines_start berth
"$PY" "$REPO/bench/engine/mkimages.py" rootfs "$BASE/busybox-rootfs.tar"
"${BERTH[@]}" import "$BASE/busybox-rootfs.tar" bench-busybox:latest >/dev/null
IMG=bench-busybox:latest
PYI=$(head -1 "$BERTH_CLI" | sed 's/^#!//; s/ .*//')   # the launcher's interpreter

echo "## 1. CLI process"
hyperfine -N -w 3 -r "$RUNS" --style basic --export-json "$OUT/cli.json" \
  -n 'python -I -S -c pass' "$PYI -I -S -c pass" \
  -n 'berth --help' "$BERTH_CLI --help" \
  -n 'berth version' "${BERTH[*]} version" \
  -n 'berth run --rm' "${BERTH[*]} run --rm --network none $IMG true" \
  -n 'berth-runtime --version' "$BERTH_RUNTIME --version" 2>&1 | grep -E '^(Benchmark|  Time)'
# imports of `berth run` (the launcher's sys.path set-up, then the CLI's own imports)
"$PYI" -I -S -X importtime "$BERTH_CLI" -H "$BERTH_HOST" run --rm --network none "$IMG" true 2>"$OUT/importtime.txt" || true
echo "top cumulative imports of 'berth run' (us):"
grep -E '^import time:' "$OUT/importtime.txt" | sed 1d | sort -t'|' -k2 -n -r | head -12

echo; echo "## 2. API steps (warm client)"
"$PY" "$REPO/bench/engine/phases.py" "$RUNS" "$IMG" | tee "$OUT/phases.txt"

echo; echo "## 3. process timeline of one run --rm (strace -f; strace slows every traced process)"
ZPID=$(pgrep -f -- "$BASE/berth/exec/monitor-host.sock" | head -1 || true)
DPID=$(cat "$BASE/berthd.pid")
strace -f -ttt -qq -e trace=execve,exit_group -e signal=none -o "$OUT/strace-daemon.txt" \
  -p "$DPID" ${ZPID:+-p "$ZPID"} &
SPID=$!
sleep 1
T0=$(date +%s.%N)
strace -f -ttt -qq -e trace=execve,exit_group,connect -e signal=none -o "$OUT/strace-cli.txt" \
  "${BERTH[@]}" run --rm --network none "$IMG" true
sleep 0.5
kill -INT "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
"$PY" - "$T0" "$OUT/strace-cli.txt" "$OUT/strace-daemon.txt" <<'PY' | tee "$OUT/timeline.txt"
import re, sys
t0 = float(sys.argv[1])
events = []
for path, who in ((sys.argv[2], "cli"), (sys.argv[3], "daemon side")):
    for line in open(path):
        m = re.match(r"(\d+)\s+(\d+\.\d+)\s+(.*)", line)
        if not m:
            continue
        pid, ts, rest = m.groups()
        if rest.startswith("execve("):
            args = re.findall(r'"([^"]*)"', rest)
            what = "execve " + " ".join(a.rsplit("/", 1)[-1] if i == 0 else a for i, a in enumerate(args[1:6]))
        elif rest.startswith("exit_group"):
            what = rest.split(")")[0] + ")"
        elif rest.startswith("connect("):
            what = "connect " + (re.findall(r'sun_path="([^"]*)"', rest) or ["?"])[0].rsplit("/", 1)[-1]
        else:
            continue
        events.append((float(ts), pid, who, what[:110]))
for ts, pid, who, what in sorted(events):
    print(f"{(ts - t0) * 1000:8.1f} ms  {who:11} {pid:>7}  {what}")
PY

echo; echo "## 4. berthd CPU by function (py-spy, raw stacks, all threads; $RUNS runs each)"
pyspy_summary() {  # pyspy_summary RAW: inclusive and self time by function
  "$PY" - "$1" <<'PY'
import collections, sys
incl, self_, total = collections.Counter(), collections.Counter(), 0
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    if not n.isdigit():
        continue
    n = int(n)
    frames = stack.split(";")
    if "select (selectors.py" in frames[-1] or "_worker (concurrent/futures/thread.py" in frames[-1]:
        continue  # the idle event loop / idle worker threads
    total += n
    for f in set(frames):
        incl[f] += n
    self_[frames[-1]] += n
print(f"busy samples: {total} (250 Hz -> {total * 4} ms of berthd time, all threads)")
print("top inclusive:")
for f, n in incl.most_common(30):
    print(f"  {n * 4:6d} ms  {f[:150]}")
print("top self:")
for f, n in self_.most_common(15):
    print(f"  {n * 4:6d} ms  {f[:150]}")
PY
}
if [ -x "$PYSPY" ]; then
  for what in run create; do
    "$PYSPY" record --nonblocking --threads --format raw -r 250 -o "$OUT/pyspy-$what.txt" -p "$DPID" >/dev/null 2>&1 &
    PS=$!
    sleep 1
    T0=$(date +%s.%N)
    for i in $(seq "$RUNS"); do
      case $what in
        run) "${BERTH[@]}" run --rm --network none "$IMG" true ;;
        create) "${BERTH[@]}" create --network none "$IMG" true >/dev/null ;;
      esac
    done
    T1=$(date +%s.%N)
    kill -INT "$PS" 2>/dev/null || true
    wait "$PS" 2>/dev/null || true
    echo "### $what x $RUNS: $(echo "($T1 - $T0) * 1000 / $RUNS" | bc) ms per $what (under py-spy)"
    pyspy_summary "$OUT/pyspy-$what.txt" | tee "$OUT/pyspy-$what-summary.txt"
  done
else
  echo "py-spy not found ($PYSPY): pip install py-spy into the venv"
fi
