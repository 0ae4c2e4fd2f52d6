"""OCI device rules (linux.resources.devices): checked and normalised, and as cgroup v1 writes them.

Its own small module: a v1 container start needs only this, not the v2 eBPF assembler."""

from berth import errors


def normalize(rule: dict, what: str) -> tuple[str, int, int, str]:
    typ = rule.get("type") or "a"
    if typ not in ("a", "b", "c"):
        raise errors.InvalidArgument(f"{what}.type={typ!r} must be 'a', 'b' or 'c'")
    access = rule.get("access") or "rwm"
    if not access or set(access) - set("rwm"):
        raise errors.InvalidArgument(f"{what}.access={access!r} must be letters of 'rwm'")
    major, minor = rule.get("major"), rule.get("minor")
    for name, v in (("major", major), ("minor", minor)):
        if v is not None and (not isinstance(v, int) or v < -1):
            raise errors.InvalidArgument(f"{what}.{name}={v!r} must be a number (or -1/absent for any)")
    mj = -1 if major is None else major
    mn = -1 if minor is None else minor
    return typ, mj, mn, access


def v1_line(rule: dict, what: str = "linux.resources.devices[]") -> str:
    """OCI device rule -> the v1 devices.allow/deny line, e.g. "c 1:3 rwm" or "a *:* rwm"."""
    typ, mj, mn, access = normalize(rule, what)
    if typ == "a":
        return "a"
    return f"{typ} {'*' if mj < 0 else mj}:{'*' if mn < 0 else mn} {''.join(sorted(set(access), key='rwm'.index))}"
