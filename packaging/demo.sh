#!/usr/bin/env bash
# `make demo`: a real container through each layer of berth.
#  1. berth-runtime (the OCI runtime) runs a busybox bundle, like `runc run`.
#  2. berthd (the engine) starts, a busybox image is made from Debian's busybox-static, and the berth
#     CLI runs containers through it; the real docker CLI talks to the same daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  berth-runtime --root "$work/runtime" delete --force demo-rt >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== 1. berth-runtime: an OCI bundle run like runc"
mkdir -p "$work/bundle/rootfs"
python -c 'import sys; from berth.bootstrap import make_rootfs; make_rootfs(sys.argv[1])' "$work/bundle/rootfs"
(cd "$work/bundle" && berth-runtime spec)
python - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from berth-runtime: $(hostname), pid $$, caps $(grep CapEff /proc/self/status | cut -f2)"]
json.dump(c, open(p, "w"), indent=2)
PY
run berth-runtime --root "$work/runtime" run --bundle "$work/bundle" demo-rt

echo
echo "== 2. berthd + berth: the engine"
sock="$work/berth.sock"
export BERTH_HOST="unix://$sock"
berthd --root "$work/root" --exec-root "$work/run" -H "$BERTH_HOST" >"$work/berthd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "berthd did not start:"; cat "$work/berthd.log"; exit 1; }
run berth image bootstrap
run berth run --rm busybox echo hello
run berth images
run berth run -d --name demo-web --memory 64m busybox sh -c 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done'
sleep 2
run berth ps
run berth logs demo-web
run berth exec demo-web sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'
run berth stats --no-stream demo-web
run berth stop -t 1 demo-web
run berth rm demo-web
run docker -H "$BERTH_HOST" run --rm busybox echo "hello from the docker CLI, served by berthd"
run berth audit
run berth info
echo
echo "demo done."
