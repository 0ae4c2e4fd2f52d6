"""The state directory: <root>/<id>/{state.json, exec.fifo}. It outlives every runtime process.

state.json is written to a temp file and renamed, so no reader ever sees half a file. It is not fsynced:
what it describes (live processes) does not survive a reboot, and an fsync on the start path cost
0.4-5 ms here (/run is not a tmpfs on these machines). A state.json left torn by a crash reads as a
stopped container that `delete` removes. The container's init is identified by pid
*and* start time (/proc/<pid>/stat field 22), so a recycled pid is never taken for the container.
"""

import os
import time

from berth.errors import AlreadyExists, InvalidArgument, NotFound
from berth.linux import procfs
from berth.runtime import jsonio

DEFAULT_ROOT = "/run/berth/runtime"
OCI_VERSION = "1.0.2"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid: str) -> str:
    if not cid or cid in (".", "..") or len(cid) > 1024 or not set(cid) <= _ID_CHARS:
        raise InvalidArgument(f"invalid container id {cid!r}: use letters, digits and _ + - . only")
    return cid


def container_dir(root: str, cid: str) -> str:
    return os.path.join(root, check_id(cid))


def make_dir(root: str, cid: str) -> str:
    os.makedirs(root, mode=0o711, exist_ok=True)
    d = container_dir(root, cid)
    try:
        os.mkdir(d, 0o711)
    except FileExistsError:
        raise AlreadyExists(f"container with id {cid!r} exists already")
    return d


def save(root: str, cid: str, st: dict) -> None:
    d = container_dir(root, cid)
    tmp = os.path.join(d, ".state.json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, jsonio.dumps(st).encode())
    finally:
        os.close(fd)
    os.rename(tmp, os.path.join(d, "state.json"))


def load(root: str, cid: str) -> dict:
    d = container_dir(root, cid)
    try:
        return jsonio.load_file(os.path.join(d, "state.json"))
    except FileNotFoundError:
        if os.path.isdir(d):
            return {"id": cid, "creating": True}
        raise NotFound(f"container {cid!r} does not exist")
    except ValueError:
        return {"id": cid, "pid": 0, "corrupt": True}


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isdir(os.path.join(root, n)))


def status(root: str, st: dict) -> str:
    if st.get("creating"):
        return "creating"
    pid = st.get("pid", 0)
    if not procfs.alive(pid, st.get("start_time")):
        return "stopped"
    if os.path.exists(os.path.join(root, st["id"], "exec.fifo")):
        return "created"
    if st.get("cgroups_path") is not None:
        from berth.runtime import cgroup

        if cgroup.frozen(st):
            return "paused"
    return "running"


def oci_state(st: dict, stat: str) -> dict:
    """runc's `state` JSON shape."""
    running = stat in ("created", "running", "paused")
    return {
        "ociVersion": st.get("ociVersion", OCI_VERSION),
        "id": st.get("id"),
        "pid": st.get("pid", 0) if running else 0,
        "status": stat,
        "bundle": st.get("bundle", ""),
        "rootfs": st.get("rootfs", ""),
        "created": st.get("created", ""),
        "owner": "",
        "annotations": st.get("annotations") or {},
    }


def hook_state(st: dict, stat: str) -> dict:
    """The OCI state handed to hooks on stdin (spec shape: no rootfs/created/owner)."""
    s = {"ociVersion": st.get("ociVersion", OCI_VERSION), "id": st["id"], "status": stat,
         "bundle": st.get("bundle", "")}
    if st.get("pid"):
        s["pid"] = st["pid"]
    s["annotations"] = st.get("annotations") or {}
    return s


def rfc3339_now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"
