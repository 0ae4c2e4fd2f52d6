"""Linux capabilities: names, bounding/ambient sets and capset."""

from berth.linux import libc

NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]
BY_NAME = {n: i for i, n in enumerate(NAMES)}


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def mask(names: list[str] | None, field: str = "capabilities") -> int:
    """Names -> bit mask; unknown names are an error naming the field (runc ignores them with a warning)."""
    m = 0
    for n in names or ():
        key = n.upper()
        if not key.startswith("CAP_"):
            key = "CAP_" + key
        if key not in BY_NAME:
            raise ValueError(f"{field}: unknown capability {n!r}")
        m |= 1 << BY_NAME[key]
    return m


def drop_bounding(keep: int) -> None:
    """Drop every capability not in `keep` from the bounding set (needs CAP_SETPCAP, so do it first)."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            try:
                libc.prctl(libc.PR_CAPBSET_DROP, cap)
            except OSError as e:
                if e.errno != 22:  # EINVAL: cap unknown to this kernel
                    raise


def apply(effective: int, permitted: int, inheritable: int, ambient: int) -> None:
    libc.capset(effective, permitted, inheritable)
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(last_cap() + 1):
        if ambient & (1 << cap):
            try:
                libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, cap)
            except OSError:
                # runc ignores ambient caps that are not both permitted and inheritable.
                pass
