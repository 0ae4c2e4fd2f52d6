"""cgroup managers for berth's runtime: v1, v2 and hybrid hosts behind one interface.

    detect() -> "v1" | "v2" | "hybrid"
    new_manager(cgroups_path, container_id) -> Manager
    from_state(manager.state()) -> Manager      # a later runtime process re-opening the same cgroup
"""

from berth import errors

from . import mounts, paths
from .base import Manager

TYPE_CHECKING = False     # not typing.TYPE_CHECKING: importing typing costs ~7 ms on the start path
if TYPE_CHECKING:
    from typing import Literal

    from .v1 import V1Manager
    from .v2 import V2Manager


def __getattr__(name: str):
    # V1Manager / V2Manager load on first use: a container start imports only its host's kind.
    if name == "V1Manager":
        from .v1 import V1Manager

        return V1Manager
    if name == "V2Manager":
        from .v2 import V2Manager

        return V2Manager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Manager", "V1Manager", "V2Manager", "detect", "from_state", "new_manager"]


def _layout() -> "tuple[list[mounts.Hierarchy], mounts.Hierarchy | None]":
    hs = mounts.hierarchies()
    v1 = [h for h in hs if h.version == 1]
    v2 = next((h for h in hs if h.version == 2), None)
    return v1, v2


def detect() -> 'Literal["v1", "v2", "hybrid"]':
    return _kind(*_layout())


def _kind(v1: "list[mounts.Hierarchy]", v2: "mounts.Hierarchy | None") -> 'Literal["v1", "v2", "hybrid"]':
    # name=systemd alone (no resource controller) does not make a v1 host
    has_v1 = any(c for h in v1 for c in h.controllers if not c.startswith("name="))
    if has_v1:
        return "hybrid" if v2 is not None else "v1"
    if v2 is not None:
        return "v2"
    raise errors.Unsupported("no cgroup filesystem is mounted (no cgroup or cgroup2 in /proc/self/mountinfo)")


def new_manager(cgroups_path: str | None, container_id: str) -> Manager:
    """Resolve an OCI cgroupsPath against the mounted hierarchies (nothing is created yet)."""
    paths.check(cgroups_path, container_id)        # systemd form / '..' errors before any I/O
    v1, v2 = _layout()
    kind = _kind(v1, v2)
    own = mounts.own_cgroups()
    if kind == "v2":
        from .v2 import V2Manager

        assert v2 is not None
        return V2Manager(paths.resolve(cgroups_path, container_id, own.get("", "/")), v2)
    from .v1 import V1Manager

    dirs: dict[mounts.Hierarchy, str] = {}
    main = None
    for h in v1:
        key = next(iter(sorted(h.controllers)), "")
        p = paths.resolve(cgroups_path, container_id, own.get(key, "/"))
        dirs[h] = h.dir_of(p)
        if main is None or "freezer" in h.controllers:
            main = p
    unified = None
    if v2 is not None:
        from .v2 import V2Manager

        unified = V2Manager(paths.resolve(cgroups_path, container_id, own.get("", "/")), v2,
                            enable_all=False)
        unified.version = "hybrid"
    return V1Manager(main or paths.resolve(cgroups_path, container_id, "/"), dirs, unified)


def from_state(state: dict) -> Manager:
    """Re-open the cgroup a Manager.state() recorded (the directories, as resolved back then)."""
    try:
        version, path, dirs = state["version"], state["path"], state["dirs"]
    except (KeyError, TypeError):
        raise errors.DataCorruption(f"cgroup state {state!r} lacks version/path/dirs")
    by_mp = {h.mountpoint: h for h in mounts.hierarchies()}
    missing = [mp for mp in dirs if mp not in by_mp]
    if missing:
        raise errors.Unavailable(f"cgroup hierarchies {missing} recorded for {path} are not mounted now")
    if version == "v2":
        from .v2 import V2Manager

        (mp, _d), = dirs.items()
        return V2Manager(path, by_mp[mp])
    from .v1 import V1Manager

    v1d = {by_mp[mp]: d for mp, d in dirs.items() if by_mp[mp].version == 1}
    unified = None
    for mp, d in dirs.items():
        h = by_mp[mp]
        if h.version == 2:
            from .v2 import V2Manager

            rel = "/" + d[len(h.mountpoint):].lstrip("/")
            unified = V2Manager(rel if h.root == "/" else h.root.rstrip("/") + rel, h, enable_all=False)
            unified.version = "hybrid"
    return V1Manager(path, v1d, unified)
