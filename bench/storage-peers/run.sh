#!/usr/bin/env bash
# Storage side by side, berth vs docker vs podman (each engine private: bench/engine/peers.sh), as in
# /work/shared/anchors/06-storage-cow.sh:
#   1. `create` of a container from a 21-layer image (busybox rootfs + 20 one-file layers) vs from the
#      1-layer busybox image: the container filesystem (writable layer over 21 lowers) is made at create.
#   2. a 1-byte append to a 500 MiB file that lives in an image layer (overlay copy-up) vs to a 500 MiB file
#      on a bind-mounted host directory ("volume"): timed inside the container with `busybox time`
#      (10 ms resolution, a fresh container per sample) and as whole `run --rm` (includes removing the
#      copied-up file).
# The images are docker-archives made by bench/engine/mkimages.py and `load`ed into each engine, so every
# engine has the same layers. Everything is stopped and removed at the end, even on failure.
#
# Usage: sudo bench/storage-peers/run.sh   env: RUNS (10), ROUNDS (2), WARMUP (2), SAMPLES (5, in-container
#        timings per engine and file), BIG (bytes, 524288000), OUT (/tmp/bench-storage-peers-results),
#        BASE (/tmp/bench-engine), NICE (e.g. -15, daemons included), SKIP_CREATE=1, SKIP_COW=1
set -euo pipefail
# NICE=-15: re-run the whole script (daemons included) at that niceness; the machine is shared
if [ -n "${NICE:-}" ] && [ -z "${_BENCH_NICED:-}" ]; then
  _BENCH_NICED=1 exec nice -n "$NICE" bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
need_root
need_tools hyperfine dockerd podman conmon runc jq findmnt
RUNS=${RUNS:-10}; ROUNDS=${ROUNDS:-2}; WARMUP=${WARMUP:-2}; SAMPLES=${SAMPLES:-5}; BIG=${BIG:-524288000}
OUT=${OUT:-/tmp/bench-storage-peers-results}
. "$REPO/bench/engine/peers.sh"
rm -rf "$OUT"; mkdir -p "$OUT"
trap engines_stop EXIT
trap 'exit 130' INT TERM
ENGINES=(berth docker podman)
declare -A CLI=([berth]="${BERTH[*]}" [docker]="${DOCKER[*]}" [podman]="${PODMAN[*]}")
declare -A XOPT=([berth]="" [docker]="" [podman]="$PODMAN_ULIMITS")

log "machine: $(machine_line)"
engines_start
MK="$REPO/bench/engine/mkimages.py"
"$PY" "$MK" rootfs "$BASE/busybox-rootfs.tar"
"$PY" "$MK" archive "$BASE/bb.tar" bench-busybox:latest "$BASE/busybox-rootfs.tar"
"$PY" "$MK" archive "$BASE/l20.tar" bench-l20:latest "$BASE/busybox-rootfs.tar" --layers 20
load_archive "$BASE/bb.tar"
load_archive "$BASE/l20.tar"
rm -f "$BASE/bb.tar" "$BASE/l20.tar"

rounds() {  # rounds TAG NAME=CMD...: hyperfine rounds, order rotated each round
  local tag=$1 r i n=$(($# - 1)) args
  shift
  local cmds=("$@")
  for r in $(seq 1 "$ROUNDS"); do
    args=()
    for i in $(seq 0 $((n - 1))); do
      local c=${cmds[((i + r) % n)]}
      args+=(-n "${c%%=*}" "${c#*=}")
    done
    hyperfine -N -w "$WARMUP" -r "$RUNS" --style basic --export-json "$OUT/$tag-round-$r.json" "${args[@]}" >/dev/null
    log "$tag round $r done"
  done
}

if [ "${SKIP_CREATE:-0}" != 1 ]; then
  c=()
  for e in "${ENGINES[@]}"; do
    for img in l20 busybox; do
      c+=("$e create $img=${CLI[$e]} create --network none ${XOPT[$e]} bench-$img:latest true")
    done
  done
  for x in "${c[@]}"; do ${x#*=} >/dev/null; done   # sanity: each works
  rounds create "${c[@]}"
  for e in "${ENGINES[@]}"; do
    ids=$(${CLI[$e]} ps -aq); [ -z "$ids" ] || ${CLI[$e]} rm -f $ids >/dev/null
  done
fi

if [ "${SKIP_COW:-0}" != 1 ]; then
  "$PY" "$MK" archive "$BASE/cow.tar" bench-cow:latest "$BASE/busybox-rootfs.tar" --big "$BIG"
  load_archive "$BASE/cow.tar"
  rm -f "$BASE/cow.tar"
  mkdir -p "$BASE/vol"
  head -c "$BIG" /dev/urandom >"$BASE/vol/big.bin"
  V="-v $BASE/vol:/vol"
  # write back the loads' dirty pages first, so no engine's samples compete with the others' writeback
  sync; sleep 2
  : >"$OUT/cow-inside.txt"
  for i in $(seq "$SAMPLES"); do   # engines alternate, order rotated per sample
    for k in 0 1 2; do
      e=${ENGINES[((i + k) % 3)]}
      for f in /big.bin /vol/big.bin; do
        t=$(${CLI[$e]} run --rm --network none ${XOPT[$e]} $V bench-cow:latest \
              sh -c "busybox time -f %e sh -c 'echo -n x >> $f' 2>&1; busybox time -f %e sh -c 'echo -n x >> $f' 2>&1" | xargs)
        echo "$e $f $t" >>"$OUT/cow-inside.txt"
      done
    done
  done
  log "in-container appends done"
  c=()
  for e in "${ENGINES[@]}"; do
    c+=("$e layer=${CLI[$e]} run --rm --network none ${XOPT[$e]} $V bench-cow:latest sh -c 'echo -n x >> /big.bin'")
    c+=("$e volume=${CLI[$e]} run --rm --network none ${XOPT[$e]} $V bench-cow:latest sh -c 'echo -n x >> /vol/big.bin'")
  done
  RUNS=$(( (RUNS + 1) / 2 )) WARMUP=1 rounds cow "${c[@]}"
fi

"$PY" "$REPO/bench/storage-peers/summarize.py" "$OUT" "$(machine_line)" "$BIG" | tee "$OUT/summary.md"
