"""The container's seccomp program: linux.seccomp compiled to BPF through berth.seccomp's cache.

Without a user namespace, init compiles it itself while the runtime makes its cgroup (a cache hit is
a file read and two sha256s, ~0.8 ms off the runtime's side, which init would wait for). With one,
the runtime does: init is then no longer the host's root and could not write the cache entries the
runtime trusts (its own, not writable by others)."""

from berth.errors import BerthError, InvalidArgument, Unsupported


def flags(cfg: dict) -> list[str]:
    sc = (cfg.get("linux") or {}).get("seccomp")
    return list(sc.get("flags") or []) if sc else []


def compile_for(cfg: dict) -> bytes | None:
    """The BPF for cfg's linux.seccomp, or None when it has none."""
    sc = (cfg.get("linux") or {}).get("seccomp")
    if not sc:
        return None
    try:
        from berth.seccomp import compile_bpf
    except ImportError:
        raise Unsupported("config.json: linux.seccomp: seccomp support (berth.seccomp) is not installed")
    try:
        return compile_bpf(sc)
    except BerthError as e:
        raise InvalidArgument(f"config.json: linux.seccomp: {e}") from None


def compiled_by_init(userns: bool) -> bool:
    return not userns
