"""Docker's default security settings for a container (Docker Engine 25+ / 28), as plain data.

Used by the daemon to build a container's config.json: capabilities, masked and read-only paths,
the default mounts, devices and device-cgroup rules. Pure data + small functions, no I/O except
``masked_paths()``, which expands a per-CPU glob on the host as Docker does.
"""

from __future__ import annotations

import glob

from berth import errors

# Docker's default capability set (moby oci.DefaultCapabilities).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Every capability Linux defines, in bit order (index == capability number); linux/capability.h.
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",  # 0
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",  # 5
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",  # 10
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",  # 15
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",  # 20
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",  # 25
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",  # 30
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",  # 35
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",  # 40
)
_CAP_INDEX = {name: i for i, name in enumerate(ALL_CAPABILITIES)}


def normalize_capability(name: str) -> str:
    """'net_admin', 'NET_ADMIN', 'CAP_NET_ADMIN' -> 'CAP_NET_ADMIN'; 'all' -> 'ALL'; unknown -> InvalidArgument."""
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidArgument(f"capability: invalid name {name!r}")
    n = name.strip().upper()
    if n in ("ALL", "CAP_ALL"):
        return "ALL"
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in _CAP_INDEX:
        raise errors.InvalidArgument(f"capability: unknown capability {name!r}")
    return n


def all_capabilities(last_cap: int | None = None) -> list[str]:
    """All capabilities, or those the running kernel knows (0..last_cap, from /proc/sys/kernel/cap_last_cap)."""
    if last_cap is None:
        return list(ALL_CAPABILITIES)
    return list(ALL_CAPABILITIES[: last_cap + 1])


def capabilities(
    cap_add: list[str] | None = None,
    cap_drop: list[str] | None = None,
    privileged: bool = False,
    last_cap: int | None = None,
) -> list[str]:
    """The container's capability set with Docker's semantics, sorted by capability number.

    - privileged: every capability; cap_add/cap_drop are ignored (as Docker does).
    - "ALL" in cap_add: every capability except those named in cap_drop.
    - "ALL" in cap_drop (and not in cap_add): only the capabilities named in cap_add.
    - otherwise: Docker's defaults minus cap_drop, plus cap_add.
    Names are accepted with or without the CAP_ prefix, in any case.
    """
    every = all_capabilities(last_cap)
    if privileged:
        return every
    adds = {normalize_capability(c) for c in cap_add or []}
    drops = {normalize_capability(c) for c in cap_drop or []}
    if "ALL" in adds:
        caps = {c for c in every if c not in drops}
    elif "ALL" in drops:
        caps = adds
    else:
        caps = (set(DEFAULT_CAPABILITIES) - drops) | adds
    return sorted(caps, key=_CAP_INDEX.__getitem__)


# Paths Docker masks (/dev/null bind-mounted over files, empty read-only tmpfs over directories).
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
# Expanded on the host when the container is created (one entry per CPU); Docker 28 masks them too.
MASKED_PATH_GLOBS: tuple[str, ...] = ("/sys/devices/system/cpu/cpu*/thermal_throttle",)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


def masked_paths(privileged: bool = False) -> list[str]:
    """Docker's masked paths for a new container (none when privileged)."""
    if privileged:
        return []
    out = list(MASKED_PATHS)
    for pattern in MASKED_PATH_GLOBS:
        out.extend(sorted(glob.glob(pattern)))
    return out


def readonly_paths(privileged: bool = False) -> list[str]:
    return [] if privileged else list(READONLY_PATHS)


SHM_SIZE = 64 * 1024 * 1024  # Docker's default --shm-size

# Docker's default mounts (OCI config.json "mounts"), in mount order.
DEFAULT_MOUNTS: tuple[dict, ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
    {
        "destination": "/sys/fs/cgroup",
        "type": "cgroup",
        "source": "cgroup",
        "options": ["ro", "nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={SHM_SIZE}"],
    },
)


def default_mounts(shm_size: int = SHM_SIZE) -> list[dict]:
    """A fresh copy of the default mounts (callers edit it), with /dev/shm sized as asked."""
    out = []
    for m in DEFAULT_MOUNTS:
        m = {**m, "options": list(m["options"])}
        if m["destination"] == "/dev/shm":
            m["options"] = [o for o in m["options"] if not o.startswith("size=")] + [f"size={shm_size}"]
        out.append(m)
    return out


def _dev(path: str, major: int, minor: int) -> dict:
    return {"path": path, "type": "c", "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0}


# The OCI default devices every container gets (config-linux.md "Default Devices").
DEFAULT_DEVICES: tuple[dict, ...] = (
    _dev("/dev/null", 1, 3),
    _dev("/dev/zero", 1, 5),
    _dev("/dev/full", 1, 7),
    _dev("/dev/random", 1, 8),
    _dev("/dev/urandom", 1, 9),
    _dev("/dev/tty", 5, 0),
)
# Symlinks created in /dev.
DEFAULT_DEV_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
)


def _rule(
    allow: bool, type_: str = "a", major: int | None = None, minor: int | None = None, access: str = "rwm"
) -> dict:
    rule: dict = {"allow": allow, "access": access}
    if type_ != "a":
        rule["type"] = type_
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


# linux.resources.devices as dockerd writes it: deny all, then the default devices and the console.
DOCKER_DEVICE_CGROUP_RULES: tuple[dict, ...] = (
    _rule(False),
    _rule(True, "c", 1, 5),  # zero
    _rule(True, "c", 1, 3),  # null
    _rule(True, "c", 1, 9),  # urandom
    _rule(True, "c", 1, 8),  # random
    _rule(True, "c", 5, 0),  # tty
    _rule(True, "c", 5, 1),  # console
    _rule(False, "c", 10, 229),  # fuse
)
# What runc adds on top of any spec (its built-in allow-list): mknod of any node, full, /dev/pts/*, ptmx,
# tun. Docker containers get these through runc; berth states them in the spec so they hold whatever
# runtime runs the container.
RUNTIME_DEVICE_CGROUP_RULES: tuple[dict, ...] = (
    _rule(True, "c", None, None, "m"),  # mknod of any char device
    _rule(True, "b", None, None, "m"),  # mknod of any block device
    _rule(True, "c", 1, 7),  # full
    _rule(True, "c", 136, None),  # /dev/pts/*
    _rule(True, "c", 5, 2),  # /dev/ptmx
    _rule(True, "c", 10, 200),  # /dev/net/tun
)


def device_cgroup_rules(privileged: bool = False) -> list[dict]:
    """The effective default device-cgroup rules (OCI linux.resources.devices), in order."""
    if privileged:
        return [_rule(True)]
    return [dict(r) for r in DOCKER_DEVICE_CGROUP_RULES + RUNTIME_DEVICE_CGROUP_RULES]


def default_devices() -> list[dict]:
    return [dict(d) for d in DEFAULT_DEVICES]


DEFAULT_NAMESPACES: tuple[str, ...] = ("mount", "network", "uts", "pid", "ipc")
