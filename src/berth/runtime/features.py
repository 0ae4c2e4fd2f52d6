"""`berth-runtime features`: what this runtime supports (runc's JSON shape)."""

from berth.linux.caps import NAMES
from berth.oci.runtime_spec import HOOK_KINDS, NAMESPACES
from berth.runtime import cgroup, mountopts, spec


def features() -> dict:
    seccomp = {"enabled": False}
    try:
        import berth.seccomp  # noqa: F401

        seccomp = {
            "enabled": True,
            "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                        "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
            "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                          "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
            "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        }
    except ImportError:
        pass
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": spec.OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": mountopts.supported(),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": list(NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "enabled": cgroup.available()},
            "seccomp": seccomp,
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runtime-spec.features.berth.version": "0.1.0"},
    }
