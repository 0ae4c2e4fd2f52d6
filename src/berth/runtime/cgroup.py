"""The runtime's view of berth.cgroups, imported lazily (and optional while that package is missing)."""

from berth.errors import Unsupported


def available() -> bool:
    try:
        import berth.cgroups  # noqa: F401
    except ImportError:
        return False
    return True


def manager(cgroups_path: str | None, cid: str):
    """A Manager, or None when berth.cgroups is not installed."""
    try:
        from berth.cgroups import new_manager
    except ImportError:
        return None
    return new_manager(cgroups_path, cid)


def for_state(st: dict):
    path = st.get("cgroups_path")
    if path is None:
        return None
    return manager(path, st["id"])


def need(st: dict, what: str):
    m = for_state(st)
    if m is None:
        raise Unsupported(f"{what} needs cgroups, which this container does not have")
    return m


def frozen(st: dict) -> bool:
    try:
        m = for_state(st)
        return bool(m and m.frozen())
    except Exception:
        return False
