#!/usr/bin/env bash
# The OCI runtimes behind a real caller: `podman run --rm <busybox> true` with --runtime crun, runc and
# berth-runtime, interleaved rounds (bench/runtime/interleave.py), back to back and spaced (GAP=0.1 s of
# quiet before each start). podman calls its runtime several times per container (create, start, delete),
# so this shows what each runtime's own start-up costs a user of podman; run.sh times one `run`.
# Like run.sh, everything runs in a private mount namespace with /sys/fs/cgroup/unified unmounted (crun 1.8
# refuses hybrid cgroups). podman is private: its own root, runroot, tmpdir and config under $WORK; vfs
# storage; cgroupfs manager with a private --cgroup-parent; all of it is removed at the end.
#
# Usage: sudo bench/runtime/podman.sh    env: ROUNDS (25), WORK (/tmp/bpr), NICE (e.g. -15)
# Output: a markdown table on stdout and in $WORK.md; raw interleave JSON in $WORK-*.json.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_root
need_tools podman conmon runc crun unshare
ROUNDS=${ROUNDS:-25}
WORK=${WORK:-/tmp/bpr}        # podman refuses a runroot path longer than 50 characters: keep it short
BERTH_RUNTIME=${BERTH_RUNTIME:-$REPO/.venv/bin/berth-runtime}
PARENT=/bench-podman-$$
export WORK ROUNDS BERTH_RUNTIME PARENT

cleanup() {
  unshare -m --propagation private bash -c '
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    export CONTAINERS_STORAGE_CONF=$WORK/conf/storage.conf CONTAINERS_CONF=$WORK/conf/containers.conf
    podman --root $WORK/root --runroot $WORK/run --tmpdir $WORK/tmp --storage-driver vfs rmi -a -f' \
    >/dev/null 2>&1 || true
  for d in /sys/fs/cgroup/*"$PARENT"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$WORK"; mkdir -p "$WORK/root" "$WORK/run" "$WORK/tmp" "$WORK/conf"
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n' "$WORK" "$WORK" \
  > "$WORK/conf/storage.conf"
printf '[containers]\nnetns = "none"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "%s/tmp/events.log"\n' \
  "$WORK" > "$WORK/conf/containers.conf"
"$PY" -c "import sys; sys.path.insert(0, '$REPO/src'); from berth.bootstrap import make_rootfs; make_rootfs('$WORK/rootfs')"
tar -C "$WORK/rootfs" -cf "$WORK/busybox.tar" .

cat > "$WORK/inner.sh" <<'INNER'
set -euo pipefail
umount /sys/fs/cgroup/unified 2>/dev/null || true
export CONTAINERS_STORAGE_CONF=$WORK/conf/storage.conf CONTAINERS_CONF=$WORK/conf/containers.conf
P="podman --root $WORK/root --runroot $WORK/run --tmpdir $WORK/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend file"
$P import "$WORK/busybox.tar" localhost/bench-busybox:1 >/dev/null
# no CAP_SYS_RESOURCE here: podman's default rlimits (1048576) cannot be set (anchors, "Host quirks")
opts="--rm --network none --cgroup-parent $PARENT --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
args=()
for rt in crun runc berth; do
  exe=$rt; [ $rt = berth ] && exe=$BERTH_RUNTIME
  $P --runtime "$exe" run $opts localhost/bench-busybox:1 true   # sanity: runs, exits 0
  args+=("$rt=$P --runtime $exe run $opts localhost/bench-busybox:1 true")
done
"$PY" "$REPO/bench/runtime/interleave.py" "$WORK-b2b.json" "$ROUNDS" 2 "${args[@]}"
GAP=0.1 "$PY" "$REPO/bench/runtime/interleave.py" "$WORK-spaced.json" "$ROUNDS" 2 "${args[@]}"
INNER
nice -n "${NICE:-0}" unshare -m --propagation private bash "$WORK/inner.sh"

"$PY" - "$WORK" "$(machine_line)" <<'PY' | tee "$WORK.md"
import json, os, statistics, sys
sys.path.insert(0, os.path.join(os.environ["REPO"], "bench", "runtime"))
from interleave import pair_ratio
work, machine = sys.argv[1], sys.argv[2]
print(f"Machine: {machine}; `podman run --rm` of busybox `true`, {os.environ['ROUNDS']} interleaved rounds\n")
print("| podman --runtime | back to back: wall median, ms | cpu, ms | spaced: wall median, ms | cpu, ms |")
print("|---|---|---|---|---|")
res = {mode: json.load(open(f"{work}-{mode}.json")) for mode in ("b2b", "spaced")}
for rt in ("berth", "runc", "crun"):
    cells = [f"{statistics.median(res[m][rt][k]):.1f}" for m in ("b2b", "spaced") for k in ("wall_ms", "cpu_ms")]
    print(f"| {rt} | " + " | ".join(cells) + " |")
print("\n| per-round ratio | back to back | spaced |\n|---|---|---|")
for a, b in (("berth", "runc"), ("berth", "crun"), ("runc", "crun")):
    print(f"| {a} / {b} | {pair_ratio(res['b2b'], a, b):.3f} | {pair_ratio(res['spaced'], a, b):.3f} |")
PY
