#!/usr/bin/env bash
# A/B of two berth CLI launchers against one private berthd, interleaved: `run --rm IMG true` and
# `exec C true`. For checking a CLI change (e.g. a patched copy of src/) before it lands.
# Usage: sudo CLI_B=/path/to/other/berth bench/engine/ab-cli.sh   env: RUNS (20), OUT (/tmp/bench-engine-ab), NICE
set -euo pipefail
if [ -n "${NICE:-}" ] && [ -z "${_BENCH_NICED:-}" ]; then
  _BENCH_NICED=1 exec nice -n "$NICE" bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
need_root
: "${CLI_B:?set CLI_B to the other berth launcher}"
RUNS=${RUNS:-20}
OUT=${OUT:-/tmp/bench-engine-ab}
BASE=${BASE:-/tmp/bench-engine-ab-engine}
. "$REPO/bench/engine/peers.sh"
rm -rf "$OUT"; mkdir -p "$OUT"
trap engines_stop EXIT
trap 'exit 130' INT TERM
engines_start berth
"$PY" "$REPO/bench/engine/mkimages.py" rootfs "$BASE/rootfs.tar"
"${BERTH[@]}" import "$BASE/rootfs.tar" bench-busybox:latest >/dev/null
IMG=bench-busybox:latest
S="-H unix://$BASE/berth/berth.sock"
C=$("${BERTH[@]}" run -d --network none $IMG busybox sleep 3600)
"$PY" "$REPO/bench/runtime/interleave.py" "$OUT/run.json" "$RUNS" 3 \
  "A-run=$BERTH_CLI $S run --rm --network none $IMG true" "B-run=$CLI_B $S run --rm --network none $IMG true"
"$PY" "$REPO/bench/runtime/interleave.py" "$OUT/exec.json" "$RUNS" 3 \
  "A-exec=$BERTH_CLI $S exec $C true" "B-exec=$CLI_B $S exec $C true"
"$PY" - "$OUT" <<'PY'
import json, statistics, sys
for t in ("run", "exec"):
    r = json.load(open(f"{sys.argv[1]}/{t}.json"))
    a, b = r[f"A-{t}"], r[f"B-{t}"]
    print(f"{t}: A/B median per-round wall ratio {statistics.median(x / y for x, y in zip(a['wall_ms'], b['wall_ms'], strict=True)):.2f}")
PY
