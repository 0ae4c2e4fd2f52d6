#!/usr/bin/env bash
# Engine end-to-end, berth vs docker vs podman on one busybox rootfs (berth.bootstrap.make_rootfs, tarred,
# `import`ed into each engine as bench-busybox:latest):
#   1. `run --rm bench-busybox true`        (every engine with --network none: berth's isolated mode)
#   2. `exec C true` into a running `busybox sleep 3600` container
#   3. memory each idle container adds: bench/engine/monitor-memory.sh (berth's monitor host vs conmon vs
#      containerd-shim), run after steps 1-2 with its own private engines
# Method as in /work/shared/anchors/02-engine-run.sh and 03-per-container-overhead.sh. Each engine is private
# (bench/engine/peers.sh): own socket, data root and state dirs under $BASE; all of it is stopped and removed
# at the end, even on failure.
#
# Usage: sudo bench/engine/run.sh     env: RUNS (per hyperfine round, 10), ROUNDS (3), WARMUP (3),
#        IL_RUNS (interleaved rounds, 20), N (idle containers, 20), OUT (/tmp/bench-engine-results),
#        BASE (/tmp/bench-engine), EXEC_TMPFS=1 (exec roots on tmpfs, like /run), NICE (e.g. -15: everything, daemons included, at that niceness), SKIP_MEM=1, SKIP_TIME=1
# Output: $OUT/summary.md (markdown tables), raw hyperfine / interleave JSON in $OUT; memory in $OUT/memory.
set -euo pipefail
# NICE=-15: re-run the whole script (daemons included) at that niceness; the machine is shared
if [ -n "${NICE:-}" ] && [ -z "${_BENCH_NICED:-}" ]; then
  _BENCH_NICED=1 exec nice -n "$NICE" bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
need_root
need_tools hyperfine dockerd podman conmon runc jq findmnt
RUNS=${RUNS:-10}; ROUNDS=${ROUNDS:-3}; WARMUP=${WARMUP:-3}; IL_RUNS=${IL_RUNS:-20}; N=${N:-20}
OUT=${OUT:-/tmp/bench-engine-results}
. "$REPO/bench/engine/peers.sh"
rm -rf "$OUT"; mkdir -p "$OUT"
trap engines_stop EXIT
trap 'exit 130' INT TERM

log "machine: $(machine_line)"
engines_start
"$PY" "$REPO/bench/engine/mkimages.py" rootfs "$BASE/busybox-rootfs.tar"
import_rootfs "$BASE/busybox-rootfs.tar" bench-busybox:latest
IMG=bench-busybox:latest
declare -A RUN=(
  [berth]="${BERTH[*]} run --rm --network none $IMG true"
  [docker]="${DOCKER[*]} run --rm --network none $IMG true"
  [podman]="${PODMAN[*]} run --rm --network none $PODMAN_ULIMITS $IMG true"
)
declare -A DETACH=(
  [berth]="${BERTH[*]} run -d --network none $IMG busybox sleep 3600"
  [docker]="${DOCKER[*]} run -d --network none $IMG busybox sleep 3600"
  [podman]="${PODMAN[*]} run -d --network none $PODMAN_ULIMITS $IMG busybox sleep 3600"
)
declare -A RMF=([berth]="${BERTH[*]} rm -f" [docker]="${DOCKER[*]} rm -f" [podman]="${PODMAN[*]} rm -f -t 0")
ENGINES=(berth docker podman)
for e in "${ENGINES[@]}"; do ${RUN[$e]} || { echo "$e: run --rm failed: ${RUN[$e]}" >&2; exit 1; }; done

rounds() {  # rounds TAG CMD-ARRAY-NAME: hyperfine rounds, the engines' order rotated each round
  local tag=$1 r i e args
  local -n cmds=$2
  for r in $(seq 1 "$ROUNDS"); do
    args=()
    for i in 0 1 2; do e=${ENGINES[((i + r) % 3)]}; args+=(-n "$e" "${cmds[$e]}"); done
    hyperfine -N -w "$WARMUP" -r "$RUNS" --style basic --export-json "$OUT/$tag-round-$r.json" "${args[@]}" >/dev/null
    log "$tag round $r done"
  done
  args=()
  for e in "${ENGINES[@]}"; do args+=("$e=${cmds[$e]}"); done
  "$PY" "$REPO/bench/runtime/interleave.py" "$OUT/$tag-interleave.json" "$IL_RUNS" "$WARMUP" "${args[@]}"
}

if [ "${SKIP_TIME:-0}" != 1 ]; then
  # 1. run --rm
  rounds run RUN
  # 2. exec into a running container
  declare -A CID EXEC
  for e in "${ENGINES[@]}"; do CID[$e]=$(${DETACH[$e]}); done
  EXEC=([berth]="${BERTH[*]} exec ${CID[berth]} true" [docker]="${DOCKER[*]} exec ${CID[docker]} true"
        [podman]="${PODMAN[*]} exec ${CID[podman]} true")
  for e in "${ENGINES[@]}"; do ${EXEC[$e]}; done
  rounds exec EXEC
  for e in "${ENGINES[@]}"; do ${RMF[$e]} "${CID[$e]}" >/dev/null; done
fi

# 3. memory per idle container: bench/engine/monitor-memory.sh, run after this script's engines stop (below).
#    berth's monitor host serves every container, so the peers' one-process-per-container method
#    does not apply to it: that script measures what each container adds to the host.

"$PY" "$REPO/bench/engine/summarize.py" "$OUT" "$(machine_line)" | tee "$OUT/summary.md"
if [ "${SKIP_MEM:-0}" != 1 ]; then
  engines_stop
  N="$N" OUT="$OUT/memory" BASE="$BASE-mem" bash "$REPO/bench/engine/monitor-memory.sh"
fi
