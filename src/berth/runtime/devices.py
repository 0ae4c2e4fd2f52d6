"""/dev inside the container: the default device nodes, linux.devices and the usual symlinks."""

import os
import stat

from berth.linux import libc as L
from berth.linux.paths import mkdir_in_root, secure_join

DEFAULT_DEVICES = [
    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
    {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666},
    {"path": "/dev/full", "type": "c", "major": 1, "minor": 7, "fileMode": 0o666},
    {"path": "/dev/random", "type": "c", "major": 1, "minor": 8, "fileMode": 0o666},
    {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9, "fileMode": 0o666},
    {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0, "fileMode": 0o666},
]
_KIND = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_all(root: str, devices: list[dict], userns: bool) -> None:
    seen = set()
    old = os.umask(0)
    try:
        for d in list(devices) + DEFAULT_DEVICES:
            # A cleaned path, as runc takes it: "/dev/foo/" is the node /dev/foo.
            d = dict(d, path="/" + os.path.normpath(d["path"]).lstrip("/"))
            if d["path"] in seen:
                continue
            seen.add(d["path"])
            _create(root, d, userns)
    finally:
        os.umask(old)


def _create(root: str, d: dict, userns: bool) -> None:
    mkdir_in_root(root, os.path.dirname(d["path"]), True)
    path = secure_join(root, d["path"])
    if os.path.lexists(path):
        os.unlink(path)
    mode = d.get("fileMode", 0o666) & 0o7777
    if userns:
        # mknod is not allowed in a user namespace: bind the host's node over an empty file.
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        L.mount(d["path"], path, None, L.MS_BIND)
        return
    dev = 0 if d["type"] == "p" else os.makedev(d["major"], d["minor"])
    os.mknod(path, mode | _KIND[d["type"]], dev)
    os.chmod(path, mode)
    if d.get("uid") is not None or d.get("gid") is not None:
        os.lchown(path, d.get("uid", 0) or 0, d.get("gid", 0) or 0)


def symlinks(root: str) -> None:
    links = [("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
             ("/proc/self/fd/2", "stderr")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "core"))
    dev = secure_join(root, "/dev")
    for target, name in links:
        p = dev + "/" + name
        if not os.path.lexists(p):
            os.symlink(target, p)
    ptmx = dev + "/ptmx"
    if os.path.isdir(dev + "/pts") and os.path.exists(dev + "/pts/ptmx"):
        if os.path.lexists(ptmx):
            os.unlink(ptmx)
        os.symlink("pts/ptmx", ptmx)
