"""OCI linux.seccomp enforced through libseccomp, with a cache of compiled BPF programs.

    compile_bpf(seccomp) -> bytes            OCI object -> raw sock_filter array; cached on disk
                                             ($BERTH_SECCOMP_CACHE or /run/berth/seccomp-cache)
    load_bpf(bpf, flags=[]) -> None          seccomp(SECCOMP_SET_MODE_FILTER); needs no_new_privs or
                                             CAP_SYS_ADMIN (see berth.seccomp.loader)
    default_profile(capabilities) -> dict    Docker's default rules for a container's capabilities

Only stdlib modules are imported here: a cache hit plus load never touch libseccomp
(``berth.seccomp.libseccomp`` is imported by the compiler on a miss only).
"""

from berth.seccomp.cache import compile_bpf
from berth.seccomp.loader import load_bpf


def default_profile(
    capabilities: list[str], arch: str | None = None, kernel: str | None = None
) -> dict[str, object]:
    from berth.seccomp.profile import default_profile as _default_profile

    return _default_profile(capabilities, arch=arch, kernel=kernel)


__all__ = ["compile_bpf", "load_bpf", "default_profile"]
