#!/usr/bin/env bash
# Run every benchmark present: bench/<area>/run.sh if the area has one, else each bench/<area>/*.sh,
# else each bench/<area>/bench_*.py (with the venv's python). One area failing does not stop the rest.
# Usage: sudo bench/run-all.sh [AREA...]      (default: every area; logs in $BENCH_LOGS, /tmp/berth-bench-logs)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need_root
LOGS=${BENCH_LOGS:-/tmp/berth-bench-logs}
mkdir -p "$LOGS"
areas=("$@")
if [ ${#areas[@]} = 0 ]; then
  for d in "$REPO"/bench/*/; do areas+=("$(basename "$d")"); done
fi
log "machine: $(machine_line)"
failed=()
for area in "${areas[@]}"; do
  dir="$REPO/bench/$area"
  [ -d "$dir" ] || { log "no such bench area: $area"; failed+=("$area"); continue; }
  scripts=()
  if [ -f "$dir/run.sh" ]; then
    scripts=("$dir/run.sh")
  else
    for s in "$dir"/*.sh "$dir"/bench_*.py; do [ -f "$s" ] && scripts+=("$s"); done
  fi
  for s in "${scripts[@]}"; do
    name="$area-$(basename "${s%.*}")"
    log "== $name ($s), log: $LOGS/$name.log"
    case $s in
      *.py) cmd=("$PY" "$s") ;;
      *) cmd=(bash "$s") ;;
    esac
    if (cd "$REPO" && "${cmd[@]}") 2>&1 | tee "$LOGS/$name.log"; then
      log "== $name: ok"
    else
      log "== $name: FAILED (see $LOGS/$name.log)"
      failed+=("$name")
    fi
  done
done
[ ${#failed[@]} = 0 ] || { log "failed: ${failed[*]}"; exit 1; }
log "all benchmarks done"
