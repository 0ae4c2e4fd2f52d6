"""Build a minimal busybox root filesystem from Debian's busybox-static.

Used by the tests, the demo and `berth image bootstrap`: no network needed.
"""

import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"

_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def busybox_path() -> str:
    for cand in (BUSYBOX, "/usr/bin/busybox"):
        if os.path.exists(cand):
            return cand
    raise FileNotFoundError("busybox not found: install Debian's busybox-static (make install)")


def busybox_applets(busybox: str | None = None) -> list[str]:
    out = subprocess.run([busybox or busybox_path(), "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and "/" not in a]


def make_rootfs(dest: str) -> str:
    """Populate `dest` with busybox, one symlink per applet in /bin, and the usual empty dirs."""
    bb = busybox_path()
    for d in ("bin", "etc", "dev", "proc", "sys", "tmp", "root", "var", "run", "home"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(bb, os.path.join(dest, "bin", "busybox"))
    for applet in busybox_applets(bb):
        link = os.path.join(dest, "bin", applet)
        if applet != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    os.makedirs(os.path.join(dest, "usr"), exist_ok=True)
    if not os.path.lexists(os.path.join(dest, "usr", "bin")):
        os.symlink("../bin", os.path.join(dest, "usr", "bin"))
    if not os.path.lexists(os.path.join(dest, "sbin")):
        os.symlink("bin", os.path.join(dest, "sbin"))
    for name, text in (("passwd", _PASSWD), ("group", _GROUP)):
        with open(os.path.join(dest, "etc", name), "w") as f:
            f.write(text)
    return dest
