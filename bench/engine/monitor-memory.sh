#!/usr/bin/env bash
# Memory each idle container adds to the process that watches it: berth's shared monitor host vs
# podman's conmon vs docker's containerd-shim-runc-v2 (berth issue 4; target: no more than conmon).
#
# Private engines (bench/engine/peers.sh: own sockets and roots under $BASE, all stopped and removed at the
# end, even on failure), one busybox rootfs imported into each. Per engine: 1 detached `busybox sleep 3600`,
# settle, sample; then N-1 more, settle, sample. RSS and PSS from /proc/PID/smaps_rollup (KiB).
#   berth:  one process (the monitor host) for all containers, so what a container adds is
#           (host at N - host at 1) / (N-1); the whole host's figures are given too.
#   podman: one conmon per container: the median conmon's RSS / PSS (and the same difference of the sum).
#   docker: one containerd-shim-runc-v2 per container: likewise.
# Daemons (berthd; dockerd + containerd) are sampled at 1 and at N as well.
#
# Usage: sudo bench/engine/monitor-memory.sh   env: N (idle containers, 20), SETTLE (seconds, 5),
#        BASE (/tmp/bench-monitor-mem), OUT (/tmp/bench-monitor-mem-results), SKIP_DOCKER=1, SKIP_PEERS=1
#        (berth only), BERTH_MONITOR=per-container (berthd's isolation mode: a host per container)
# Output: $OUT/summary.md and $OUT/samples.txt (engine label pid rss pss per line).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_root
need_tools podman conmon runc jq findmnt
N=${N:-20}; SETTLE=${SETTLE:-5}
BASE=${BASE:-/tmp/bench-monitor-mem}
OUT=${OUT:-/tmp/bench-monitor-mem-results}
[ "$N" -ge 2 ] || { echo "N must be at least 2" >&2; exit 2; }
. "$REPO/bench/engine/peers.sh"
rm -rf "$OUT"; mkdir -p "$OUT"
trap engines_stop EXIT
trap 'exit 130' INT TERM

ENGINES=(berth)
[ "${SKIP_PEERS:-0}" = 1 ] || ENGINES+=(podman)
[ "${SKIP_DOCKER:-0}" = 1 ] || [ "${SKIP_PEERS:-0}" = 1 ] || ENGINES+=(docker)
log "machine: $(machine_line); berthd --monitor ${BERTH_MONITOR:-shared}"
export BERTH_MONITOR=${BERTH_MONITOR:-shared}
case " ${ENGINES[*]} " in *" docker "*) engines_start ;; *) engines_start berth ;; esac
"$PY" "$REPO/bench/engine/mkimages.py" rootfs "$BASE/busybox-rootfs.tar"
IMG=bench-busybox:latest
"${BERTH[@]}" import "$BASE/busybox-rootfs.tar" $IMG >/dev/null
case " ${ENGINES[*]} " in *" podman "*) "${PODMAN[@]}" import "$BASE/busybox-rootfs.tar" $IMG >/dev/null ;; esac
case " ${ENGINES[*]} " in *" docker "*) "${DOCKER[@]}" import "$BASE/busybox-rootfs.tar" $IMG >/dev/null ;; esac

rss() { awk '/^Rss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }   # KiB
pss() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
anon() { awk '/^Pss_Anon:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
detach() {
  case $1 in
    berth) "${BERTH[@]}" run -d --network none $IMG busybox sleep 3600 ;;
    podman) "${PODMAN[@]}" run -d --network none $PODMAN_ULIMITS $IMG busybox sleep 3600 ;;
    docker) "${DOCKER[@]}" run -d --network none $IMG busybox sleep 3600 ;;
  esac
}
watchers() {  # watchers ENGINE ID...: the per-container processes (berth: the host, once)
  local e=$1 id; shift
  case $e in
    berth) for id in "$@"; do cat "$BASE/berth/exec/containers/$id/monitor.pid"; echo; done | sort -u ;;
    podman) for id in "$@"; do "${PODMAN[@]}" inspect -f '{{.State.ConmonPid}}' "$id"; done ;;
    docker) for id in "$@"; do pgrep -f -- "containerd-shim-runc-v2 .*-id $id" | head -1; done ;;
  esac
}
daemons() {
  case $1 in
    berth) cat "$BASE/berthd.pid" ;;
    docker) cat "$BASE/dockerd.pid"; cat "$BASE/docker/exec/containerd/containerd.pid" 2>/dev/null || true ;;
    podman) ;;
  esac
}
sample() {  # sample ENGINE LABEL PID...: one line per pid into samples.txt
  local e=$1 l=$2 p; shift 2
  for p in "$@"; do echo "$e $l $p $(rss "$p") $(pss "$p") $(anon "$p")" >>"$OUT/samples.txt"; done
}

: >"$OUT/samples.txt"
for e in "${ENGINES[@]}"; do
  sync; sleep 2
  IDS=("$(detach "$e")")
  sleep "$SETTLE"
  sample "$e" w1 $(watchers "$e" "${IDS[@]}")
  sample "$e" d1 $(daemons "$e")
  for i in $(seq 2 "$N"); do IDS+=("$(detach "$e")"); done
  sleep "$SETTLE"
  W=$(watchers "$e" "${IDS[@]}" | xargs)
  [ "$e" != berth ] || [ "$BERTH_MONITOR" != shared ] || [ "$(echo $W | wc -w)" = 1 ] \
    || log "berth: $(echo $W | wc -w) monitor processes for $N containers"
  sample "$e" wN $W
  sample "$e" dN $(daemons "$e")
  if [ "$e" = berth ]; then
    grep -E '^(Rss|Pss|Shared_Clean|Private_Clean|Private_Dirty|Anonymous)' "/proc/${W%% *}/smaps_rollup" >"$OUT/berth-host-smaps.txt"
  fi
  case $e in
    berth) "${BERTH[@]}" rm -f "${IDS[@]}" >/dev/null ;;
    podman) "${PODMAN[@]}" rm -f -t 0 "${IDS[@]}" >/dev/null ;;
    docker) "${DOCKER[@]}" rm -f "${IDS[@]}" >/dev/null ;;
  esac
  log "$e: done"
done

"$PY" - "$OUT/samples.txt" "$N" "$(machine_line)" <<'EOF' | tee "$OUT/summary.md"
import statistics, sys
path, n, machine = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for line in open(path):
    e, label, _pid, rss, pss, anon = line.split()
    rows.setdefault((e, label), []).append((int(rss), int(pss), int(anon)))
tot = lambda e, l, i: sum(r[i] for r in rows.get((e, l), []))
print(f"machine: {machine}; N = {n} idle `busybox sleep 3600` containers; KiB from smaps_rollup\n")
print("| engine | watcher processes at N | added per container: RSS | PSS | PSS anon | one watcher (median): RSS | PSS |"
      " whole watcher(s) at N: RSS | PSS | daemons at 1 → N: RSS | PSS |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for e in ("berth", "podman", "docker"):
    if (e, "wN") not in rows:
        continue
    w = rows[(e, "wN")]
    add_rss = (tot(e, "wN", 0) - tot(e, "w1", 0)) / (n - 1)
    add_pss = (tot(e, "wN", 1) - tot(e, "w1", 1)) / (n - 1)
    add_anon = (tot(e, "wN", 2) - tot(e, "w1", 2)) / (n - 1)
    med_rss = statistics.median(r[0] for r in w)
    med_pss = statistics.median(r[1] for r in w)
    d = f"{tot(e, 'd1', 0)} → {tot(e, 'dN', 0)} | {tot(e, 'd1', 1)} → {tot(e, 'dN', 1)}" if (e, "d1") in rows else "– | –"
    print(f"| {e} | {len(w)} | {add_rss:.0f} | {add_pss:.0f} | {add_anon:.0f} | {med_rss:.0f} | {med_pss:.0f} | "
          f"{tot(e, 'wN', 0)} | {tot(e, 'wN', 1)} | {d} |")
print("\nberth (shared): the watcher is the one monitor host; 'added per container' = (host at N − host at 1)/(N−1)."
      "\nOne watcher per container (podman, docker, berth per-container): 'added per container' = (Σ at N − Σ at 1)/(N−1)."
      "\nPSS anon: of anonymous memory only (the PSS of file-backed pages also moves with other processes mapping them).")
EOF
