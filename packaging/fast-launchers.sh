#!/usr/bin/env bash
# Replace pip's console-script wrappers with launchers that start Python with -I -S: no site
# processing, no .pth files (the editable install's hook costs tens of ms on every start). The source
# tree and the venv's site-packages are put on sys.path by hand, in that order.
set -euo pipefail
venv=$(cd "${1:-.venv}" && pwd)
src=$(cd "$(dirname "$0")/../src" && pwd)
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
py=$(readlink -f "$venv/bin/python")
mk() {  # name module function
  cat > "$venv/bin/$1" <<PYEOF
#!$py -IS
import sys
sys.path[:0] = ["$src"]
sys.path.append("$site")
from $2 import $3
sys.exit($3())
PYEOF
  chmod 755 "$venv/bin/$1"
}
mk berth-runtime berth.runtime.cli main
mk berth berth.cli.main main
mk berthd berth.daemon.main main
