# Private engines for side-by-side runs: berthd, dockerd (with its own containerd) and podman, each with
# its own socket / data root / state dirs under $BASE (default /tmp/bench-engine). Sourced by
# bench/engine/run.sh and bench/storage-peers/run.sh; nothing here touches another process's socket.
#
#   engines_start        start berthd and dockerd (podman needs no daemon); the BERTH, DOCKER, PODMAN
#                        command arrays are set when this file is sourced (use "${DOCKER[@]}" ...).
#                        EXEC_TMPFS=1: each engine's exec root / runroot on its own tmpfs
#   engines_stop         stop every process started here (by pid), unmount, remove $BASE; idempotent
#   import_rootfs TAR REF   `import` one rootfs tar into the three engines
#   load_archive TAR     `load` a docker-archive tar into the three engines
#
# Host quirks (see /work/shared/anchors/results-2026-11-29.md): podman runs with --runtime runc (crun 1.8
# refuses hybrid cgroups) and explicit --ulimit values (no CAP_SYS_RESOURCE); docker with --bridge none and
# no iptables changes, so every engine runs containers with --network none (berth's only isolated mode).

BASE=${BASE:-/tmp/bench-engine}
BERTHD=${BERTHD:-$REPO/.venv/bin/berthd}
BERTH_CLI=${BERTH_CLI:-$REPO/.venv/bin/berth}
BERTH_RUNTIME=${BERTH_RUNTIME:-$REPO/.venv/bin/berth-runtime}
# BERTHD_ARGS: extra berthd flags (e.g. "--monitor per-container")
DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}
NOFILE=$(ulimit -Hn)
PODMAN_ULIMITS="--ulimit nofile=$NOFILE:$NOFILE --ulimit nproc=32768:32768"
export BERTH_HOST="unix://$BASE/berth/berth.sock"

BERTH=("$BERTH_CLI" -H "unix://$BASE/berth/berth.sock")
DOCKER=("$DOCKER_CLI" -H "unix://$BASE/docker/docker.sock")
PODMAN=(podman --root "$BASE/podman/root" --runroot "$BASE/podman/run" --tmpdir "$BASE/podman/tmp"
        --cgroup-manager cgroupfs --events-backend file --runtime runc --storage-driver overlay)

_wait_sock() {  # _wait_sock PATH PID NAME: wait up to 30 s for a unix socket to appear
  local i
  for i in $(seq 300); do
    [ -S "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { echo "$3 exited during start-up; log:" >&2; tail -20 "$BASE/$3.log" >&2; return 1; }
    sleep 0.1
  done
  echo "$3 did not open $1 within 30 s" >&2; return 1
}

engines_start() {  # engines_start [berth]: with "berth", only berthd
  [ ! -e "$BASE" ] || engines_stop
  mkdir -p "$BASE/berth" "$BASE/docker" "$BASE/podman/tmp"
  if [ "${EXEC_TMPFS:-0}" = 1 ]; then
    # runtime state on tmpfs, as /run is on a real host (else it shares the ext4 disk with the data roots)
    local d
    for d in "$BASE/berth/exec" "$BASE/docker/exec" "$BASE/podman/run"; do
      mkdir -p "$d"; mount -t tmpfs -o mode=0700,size=512m bench-exec "$d"
    done
  fi
  # berthd: its own root, exec-root and socket
  setsid "$BERTHD" --root "$BASE/berth/root" --exec-root "$BASE/berth/exec" -H "unix://$BASE/berth/berth.sock" \
    --runtime "$BERTH_RUNTIME" --log-level "${BERTH_LOG_LEVEL:-info}" ${BERTHD_ARGS:-} >"$BASE/berthd.log" 2>&1 </dev/null &
  echo $! >"$BASE/berthd.pid"
  if [ "${1:-}" = berth ]; then
    _wait_sock "$BASE/berth/berth.sock" "$(cat "$BASE/berthd.pid")" berthd
    return
  fi
  # dockerd: starts its own containerd (socket under its exec-root)
  setsid dockerd -H "unix://$BASE/docker/docker.sock" --data-root "$BASE/docker/data" \
    --exec-root "$BASE/docker/exec" --pidfile "$BASE/docker/docker.pid" --bridge none --iptables=false \
    --ip-masq=false --ip-forward=false --userland-proxy=false --log-level warn >"$BASE/dockerd.log" 2>&1 </dev/null &
  echo $! >"$BASE/dockerd.pid"
  _wait_sock "$BASE/berth/berth.sock" "$(cat "$BASE/berthd.pid")" berthd
  _wait_sock "$BASE/docker/docker.sock" "$(cat "$BASE/dockerd.pid")" dockerd
  "${DOCKER[@]}" version --format 'docker: server {{.Server.Version}}' >&2
  "${PODMAN[@]}" info --format 'podman: {{.Version.Version}} graph {{.Store.GraphDriverName}}' >&2
}

_pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

_stop_pid() {  # _stop_pid PID: TERM, wait up to 20 s, then KILL
  local pid=$1 i
  _pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 200); do _pid_alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

engines_stop() {
  [ -d "$BASE" ] || return 0
  set +e
  # containers first, each engine through its own CLI (by the ids it lists: only ours)
  if [ -S "$BASE/berth/berth.sock" ]; then
    ids=$("${BERTH[@]}" ps -aq 2>/dev/null); [ -z "$ids" ] || timeout 120 "${BERTH[@]}" rm -f $ids >/dev/null 2>&1
  fi
  if [ -S "$BASE/docker/docker.sock" ]; then
    ids=$("${DOCKER[@]}" ps -aq 2>/dev/null); [ -z "$ids" ] || timeout 120 "${DOCKER[@]}" rm -f $ids >/dev/null 2>&1
  fi
  if [ -d "$BASE/podman/root" ]; then
    timeout 120 "${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1   # (not `system reset`: it also drops host-wide networks)
  fi
  local f pid
  for f in berthd dockerd; do
    [ -f "$BASE/$f.pid" ] && _stop_pid "$(cat "$BASE/$f.pid")"
  done
  # dockerd stops its containerd; make sure (its pid file lives in the exec-root)
  for f in "$BASE"/docker/exec/containerd/containerd.pid; do
    [ -f "$f" ] && _stop_pid "$(cat "$f")"
  done
  # leftover monitors / shims / conmons of ours: processes whose command line names $BASE
  for pid in $(pgrep -f -- "$BASE/" 2>/dev/null); do
    [ "$pid" = $$ ] || _stop_pid "$pid"
  done
  # mounts below $BASE, deepest first
  findmnt -rn -o TARGET | grep -E "^$BASE(/|$)" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$BASE"
  set -e
}

import_rootfs() {  # import_rootfs TAR REF
  local tar=$1 ref=$2
  "${BERTH[@]}" import "$tar" "$ref" >/dev/null
  "${DOCKER[@]}" import "$tar" "$ref" >/dev/null
  "${PODMAN[@]}" import "$tar" "$ref" >/dev/null
}

load_archive() {  # load_archive TAR
  "${BERTH[@]}" load -i "$1" >/dev/null
  "${DOCKER[@]}" load -i "$1" >/dev/null
  "${PODMAN[@]}" load -i "$1" >/dev/null
}
