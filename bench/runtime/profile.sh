#!/usr/bin/env bash
# Where berth-runtime's start time goes (not run by run-all.sh: an investigation aid).
#  1. fixed costs: interpreter start, the imports a `run` needs, `--version`, against runc/crun `--version`
#  2. phases of one `run` (bench/runtime/phases.py: in-process timing wrappers, parent and container init)
# Usage: sudo bench/runtime/profile.sh    env: RUNS (30), WORK (/tmp/berth-bench-profile)
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
need_root
need_tools runc crun hyperfine
RUNS=${RUNS:-30}
WORK=${WORK:-/tmp/berth-bench-profile}
PY311=/usr/bin/python3.11
rm -rf "$WORK"; mkdir -p "$WORK/bundle"
trap 'rm -rf "$WORK"' EXIT
"$PY" -c "import sys; sys.path.insert(0, '$REPO/src'); from berth.bootstrap import make_rootfs; make_rootfs('$WORK/rootfs')"
(cd "$WORK/bundle" && runc spec)
"$PY" - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
c = json.load(open(f"{w}/bundle/config.json"))
c["process"].update(args=["true"], terminal=False)
c["root"] = {"path": f"{w}/rootfs", "readonly": True}
json.dump(c, open(f"{w}/bundle/config.json", "w"))
PY
# the modules a `run` imports (as -X importtime lists them), imported in one go
mods=$("$PY311" -IS -X importtime "$REPO/.venv/bin/berth-runtime" --root "$WORK/state" run -b "$WORK/bundle" imp 2>&1 \
       | awk -F'|' '/import time:/ {gsub(/ /, "", $3); if ($3 ~ /^berth/) print $3}' | paste -sd, -)
printf 'import sys\nsys.path[:0] = [%s]\nimport %s\n' "'$REPO/src'" "$mods" > "$WORK/imports.py"
echo "modules imported by run: $mods"
hyperfine -N -w 3 -r "$RUNS" --style basic --export-json "$WORK/fixed.json" \
  -n "python -IS -c pass" "$PY311 -IS -c pass" \
  -n "python -IS + run's imports" "$PY311 -IS $WORK/imports.py" \
  -n "berth-runtime --version" "$REPO/.venv/bin/berth-runtime --version" \
  -n "runc --version" "runc --version" \
  -n "crun --version" "crun --version" >/dev/null
"$PY" - "$WORK/fixed.json" <<'PY'
import json, statistics, sys
print(f"{'command':30} {'wall median ms':>15} {'user ms':>8} {'sys ms':>7}")
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"{r['command']:30} {statistics.median(r['times']) * 1000:15.1f} {r['user'] * 1000:8.1f} {r['system'] * 1000:7.1f}")
PY
"$PY" -I "$REPO/bench/runtime/phases.py" "$WORK/bundle" "$RUNS"
