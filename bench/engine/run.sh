#!/usr/bin/env bash
# Engine end-to-end, berth vs docker vs podman on one busybox rootfs (berth.bootstrap.make_rootfs, tarred,
# `import`ed into each engine as bench-busybox:latest):
#   1. `run --rm bench-busybox true`        (every engine with --network none: berth's isolated mode)
#   2. `exec C true` into a running `busybox sleep 3600` container
#   3. memory each idle container adds: N detached `busybox sleep 3600`; RSS and PSS (smaps_rollup) of
#      berth's per-container monitor vs containerd-shim vs conmon, and of the daemons before/after
# Method as in /work/shared/anchors/02-engine-run.sh and 03-per-container-overhead.sh. Each engine is private
# (bench/engine/peers.sh): own socket, data root and state dirs under $BASE; all of it is stopped and removed
# at the end, even on failure.
#
# Usage: sudo bench/engine/run.sh     env: RUNS (per hyperfine round, 10), ROUNDS (3), WARMUP (3),
#        IL_RUNS (interleaved rounds, 20), N (idle containers, 20), OUT (/tmp/bench-engine-results),
#        BASE (/tmp/bench-engine), EXEC_TMPFS=1 (exec roots on tmpfs, like /run), NICE (e.g. -15: everything, daemons included, at that niceness), SKIP_MEM=1, SKIP_TIME=1
# Output: $OUT/summary.md (markdown tables), raw hyperfine / interleave JSON and memory samples in $OUT.
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

# 3. memory per idle container
rss() { awk '/^Rss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }   # KiB
pss() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
sum() { local f=$1 t=0 p; shift; for p in "$@"; do t=$((t + $($f "$p"))); done; echo $t; }
daemon_pids() {  # the engine's long-lived processes other than per-container ones
  case $1 in
    berth) cat "$BASE/berthd.pid"; pgrep -f -- "$BASE/berth/exec/monitor-zygote.sock" || true ;;  # + the monitor zygote
    docker) cat "$BASE/dockerd.pid"; cat "$BASE/docker/exec/containerd/containerd.pid" 2>/dev/null ;;
    podman) ;;
  esac
}
per_ctr_pid() {  # per_ctr_pid ENGINE ID: the per-container process (monitor / shim / conmon)
  case $1 in
    berth) ps -o ppid= -p "$("${BERTH[@]}" inspect -f '{{.State.Pid}}' "$2")" | tr -d ' ' ;;  # init's subreaper
    docker) pgrep -f -- "containerd-shim-runc-v2 .*-id $2" | head -1 ;;
    podman) "${PODMAN[@]}" inspect -f '{{.State.ConmonPid}}' "$2" ;;
  esac
}
if [ "${SKIP_MEM:-0}" != 1 ]; then
  : >"$OUT/mem.txt"
  for e in "${ENGINES[@]}"; do
    sync; sleep 2
    D=$(daemon_pids "$e" | xargs)
    B_RSS=$(sum rss $D); B_PSS=$(sum pss $D)
    IDS=(); T0=$(date +%s.%N)
    for i in $(seq "$N"); do IDS+=("$(${DETACH[$e]})"); done
    T1=$(date +%s.%N); sleep 5
    P=$(for id in "${IDS[@]}"; do per_ctr_pid "$e" "$id"; done | xargs)
    np=$(echo $P | wc -w)
    [ "$np" = "$N" ] || log "$e: found $np per-container processes for $N containers"
    A_RSS=$(sum rss $D); A_PSS=$(sum pss $D)
    for p in $P; do echo "$e percontainer $(rss "$p") $(pss "$p")" >>"$OUT/mem.txt"; done
    echo "$e daemons $B_RSS $A_RSS $B_PSS $A_PSS" >>"$OUT/mem.txt"
    echo "$e start_s $(echo "$T1 - $T0" | bc)" >>"$OUT/mem.txt"
    if [ "$e" = berth ]; then  # what one monitor maps (for the profile notes)
      p=${P%% *}; grep -E '^(Rss|Pss|Shared_Clean|Private_Dirty|Anonymous)' "/proc/$p/smaps_rollup" >"$OUT/berth-monitor-smaps.txt" || true
      tr '\0' ' ' <"/proc/$p/cmdline" >"$OUT/berth-monitor-cmdline.txt" || true
    fi
    T0=$(date +%s.%N); ${RMF[$e]} "${IDS[@]}" >/dev/null; T1=$(date +%s.%N)
    echo "$e rm_s $(echo "$T1 - $T0" | bc)" >>"$OUT/mem.txt"
    log "$e: memory done"
  done
fi

"$PY" "$REPO/bench/engine/summarize.py" "$OUT" "$(machine_line)" "$N" | tee "$OUT/summary.md"
