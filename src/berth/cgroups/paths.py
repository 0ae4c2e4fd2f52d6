"""OCI cgroupsPath -> an absolute cgroup path inside a hierarchy."""

import posixpath

from berth import errors


def check(cgroups_path: str | None, container_id: str) -> str | None:
    """Validate; returns the absolute path, or None when it is relative (resolved per hierarchy)."""
    if cgroups_path is None or cgroups_path == "":
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise errors.InvalidArgument(f"container id {container_id!r} cannot name a cgroup")
        return f"/berth/{container_id}"
    if not cgroups_path.startswith("/") and cgroups_path.count(":") == 2:
        raise errors.Unsupported(
            f"cgroupsPath {cgroups_path!r} is in systemd form (slice:prefix:name); berth only drives "
            "cgroupfs directly, use a path such as /berth/<id>"
        )
    parts = cgroups_path.split("/")
    if ".." in parts or "\0" in cgroups_path:
        raise errors.InvalidArgument(f"cgroupsPath {cgroups_path!r} must not contain '..' or NUL")
    if cgroups_path.startswith("/"):
        p = posixpath.normpath(cgroups_path)
        if p == "/":
            raise errors.InvalidArgument("cgroupsPath '/' would be the root cgroup itself")
        return p
    return None


def resolve(cgroups_path: str | None, container_id: str, own: str) -> str:
    """Absolute path; a relative cgroupsPath goes below `own`, the caller's cgroup in that hierarchy."""
    absolute = check(cgroups_path, container_id)
    if absolute is not None:
        return absolute
    assert cgroups_path is not None
    return posixpath.normpath(posixpath.join(own or "/", cgroups_path))
