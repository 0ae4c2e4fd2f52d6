#!/usr/bin/env bash
# How much of `berth run --rm` is durability: two berthds side by side, one as is and one under
# libeatmydata (every fsync/fdatasync of berthd, the monitor host and berth-runtime becomes a
# no-op), measured interleaved. Also counts the syncs one `run --rm` makes, by file (strace -y).
# Not run by run-all (a diagnosis, not a figure to publish). Needs Debian's eatmydata.
# Usage: sudo bench/engine/fsync.sh     env: RUNS (interleaved rounds, 20), OUT (/tmp/bench-engine-fsync-results), NICE
set -euo pipefail
if [ -n "${NICE:-}" ] && [ -z "${_BENCH_NICED:-}" ]; then
  _BENCH_NICED=1 exec nice -n "$NICE" bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
need_root
need_tools strace findmnt
EMD=$(ls /usr/lib/*/libeatmydata.so 2>/dev/null | head -1)
[ -n "$EMD" ] || { echo "$0: needs libeatmydata (apt-get install eatmydata)" >&2; exit 2; }
RUNS=${RUNS:-20}
OUT=${OUT:-/tmp/bench-engine-fsync-results}
rm -rf "$OUT"; mkdir -p "$OUT"
BASES=(/tmp/bench-engine-sync /tmp/bench-engine-nosync)
stop_all() { local b; for b in "${BASES[@]}"; do BASE=$b; . "$REPO/bench/engine/peers.sh"; engines_stop; done; }
trap stop_all EXIT
trap 'exit 130' INT TERM
declare -A CLI
for b in "${BASES[@]}"; do
  BASE=$b
  . "$REPO/bench/engine/peers.sh"
  if [ "$b" = /tmp/bench-engine-nosync ]; then LD_PRELOAD=$EMD engines_start berth; else engines_start berth; fi
  "$PY" "$REPO/bench/engine/mkimages.py" rootfs "$BASE/rootfs.tar"
  "${BERTH[@]}" import "$BASE/rootfs.tar" bench-busybox:latest >/dev/null
  CLI[$(basename "$b")]="${BERTH[*]}"
done
IMG=bench-busybox:latest

echo "## syncs per run --rm (berthd, monitor host, runtime; 5 runs)"
BASE=/tmp/bench-engine-sync
${CLI[bench-engine-sync]} run --rm --network none $IMG true   # also starts the monitor host
DPID=$(cat "$BASE/berthd.pid"); ZPID=$(pgrep -f -- "$BASE/berth/exec/monitor-host.sock" | head -1 || true)
strace -f -qq -y -e trace=fsync,fdatasync -o "$OUT/syncs.txt" -p "$DPID" ${ZPID:+-p "$ZPID"} &
S=$!; sleep 1
for i in 1 2 3 4 5; do ${CLI[bench-engine-sync]} run --rm --network none $IMG true; done
sleep 0.5; kill -INT "$S" 2>/dev/null || true; wait "$S" 2>/dev/null || true
grep -E '^[0-9]+ +f(data)?sync\(' "$OUT/syncs.txt" | sed -E 's/^[0-9]+ +//; s/[0-9a-f]{64}/ID/g; s/\.tmp\.[0-9]+/.tmp/; s/^(f[a-z]*sync)\([0-9]+</\1 </; s/>.*//' \
  | sort | uniq -c | sort -rn | awk '{n=$1; $1=""; printf "  %4.1f %s\n", n/5, $0}' | tee "$OUT/syncs-per-run.txt"
echo "  total per run: $(grep -cE '^[0-9]+ +f(data)?sync\(' "$OUT/syncs.txt" | awk '{print $1/5}')"

echo; echo "## run --rm, interleaved ($RUNS rounds): as is vs syncs disabled"
"$PY" "$REPO/bench/runtime/interleave.py" "$OUT/interleave.json" "$RUNS" 3 \
  "sync=${CLI[bench-engine-sync]} run --rm --network none $IMG true" \
  "nosync=${CLI[bench-engine-nosync]} run --rm --network none $IMG true" | tee "$OUT/interleave.txt"
"$PY" - "$OUT/interleave.json" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
print("median per-round ratio sync/nosync: %.2f" % statistics.median(
    a / b for a, b in zip(r["sync"]["wall_ms"], r["nosync"]["wall_ms"], strict=True)))
PY
