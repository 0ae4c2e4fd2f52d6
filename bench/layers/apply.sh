#!/usr/bin/env bash
# Apply a ~200 MB, 10k-file layer: berth's apply_layer vs GNU tar -xf (both as root, same disk).
# Usage: bench/layers/apply.sh [files] [total_mb]    (needs hyperfine)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
py="$here/.venv/bin/python"
n=${1:-10000}
mb=${2:-200}
work=$(mktemp -d /tmp/berth-bench-layers.XXXXXX)
trap 'rm -rf "$work"' EXIT
layer="$work/layer.tar"
"$py" "$here/bench/layers/gen.py" "$layer" "$n" "$mb"
gzip -1 -c "$layer" > "$layer.gz"
echo "layer: $(du -h "$layer" | cut -f1) ($n files), gzip: $(du -h "$layer.gz" | cut -f1)"
cd "$here"
hyperfine --warmup 1 --runs ${RUNS:-7} \
  --prepare "rm -rf $work/out && mkdir $work/out" \
  -n "tar -xf" "tar -xf $layer -C $work/out --numeric-owner --xattrs --xattrs-include='*'" \
  -n "berth apply" "$py -m berth.layers apply $layer $work/out" \
  -n "tar -xzf (gzip)" "tar -xzf $layer.gz -C $work/out --numeric-owner --xattrs --xattrs-include='*'" \
  -n "berth apply (gzip)" "$py -m berth.layers apply $layer.gz $work/out" \
  --export-markdown "$work/result.md"
cat "$work/result.md"
