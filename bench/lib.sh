# Shared helpers for bench/*/*.sh. Source it: . "$(dirname "$0")/../lib.sh"
# Sets REPO (the checkout) and PY (the venv's python); gives need_root, need_tools, log.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY="$REPO/.venv/bin/python"
export REPO PY

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

need_root() {
  [ "$(id -u)" = 0 ] || { echo "$0: needs root" >&2; exit 2; }
}

need_tools() {  # need_tools hyperfine jq ...
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ ${#missing[@]} = 0 ] || { echo "$0: missing tools: ${missing[*]} (make bench installs them)" >&2; exit 2; }
}

machine_line() {  # one line describing the host, for result files
  local cpu
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  echo "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(nproc) vCPU ($cpu), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
}
