#!/usr/bin/env bash
# Apply a ~200 MB, 10k-file layer: berth's apply_layer vs GNU tar -xf, plain and gzip.
# Usage: bench/layers/apply.sh [files] [total_mb]
#   WORK=/dev/shm  extract on tmpfs (CPU cost only; the default /tmp measures the disk too)
#   RUNS=7         hyperfine runs per command
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
py="$here/.venv/bin/python"
n=${1:-10000}
mb=${2:-200}
work=$(mktemp -d "${WORK:-/tmp}/berth-bench-layers.XXXXXX")
trap 'rm -rf "$work"' EXIT
layer="$work/layer.tar"
"$py" "$here/bench/layers/gen.py" "$layer" "$n" "$mb"
gzip -1 -c "$layer" > "$layer.gz"
echo "layer: $(du -h "$layer" | cut -f1) ($n files), gzip: $(du -h "$layer.gz" | cut -f1), extracting under $work"
cd "$here"
tar_opts="--numeric-owner --xattrs --xattrs-include=*"
hyperfine --warmup 1 --runs "${RUNS:-7}" --export-json "$work/result.json" \
  --prepare "rm -rf $work/out && mkdir $work/out && sync" \
  -n "tar -xf" "tar -xf $layer -C $work/out $tar_opts" \
  -n "berth apply" "$py -m berth.layers apply $layer $work/out" \
  -n "tar -xzf .gz" "tar -xzf $layer.gz -C $work/out $tar_opts" \
  -n "berth apply .gz" "$py -m berth.layers apply $layer.gz $work/out"
jq -r '.results as $r | ($r[] | select(.command=="tar -xf") | .median) as $t
  | ($r[] | select(.command=="tar -xzf .gz") | .median) as $tz
  | $r[] | "\(.command): median \(.median*1000|floor) ms, ratio to tar \(if (.command|test("gz")) then .median/$tz else .median/$t end * 100 | floor / 100)"' \
  "$work/result.json"
