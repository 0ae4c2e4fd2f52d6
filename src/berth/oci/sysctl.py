"""Which linux.sysctl keys a container may set: only the namespaced ones, and only when the container has
its own namespace of that kind (the facts runc validates by). Pure and stdlib-free: the runtime's start
path and berthd both import it."""

# The IPC namespace's sysctls (plus every fs.mqueue.* key).
IPC_KEYS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                      "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})


def problem(key: str, own: set[str] | frozenset[str], hostname_set: bool = True) -> str | None:
    """-> why `key` cannot be set (naming it), or None. `own`: the OCI namespace types the container has
    to itself ("ipc", "network", "uts"); `hostname_set`: the config has a "hostname" field."""
    k = key.replace("/", ".")
    if k in IPC_KEYS or k.startswith("fs.mqueue."):
        return None if "ipc" in own else f'sysctl "{key}" is not allowed in the host\'s ipc namespace'
    if k.startswith("net."):
        return None if "network" in own else f'sysctl "{key}" is not allowed in the host\'s network namespace'
    if k in ("kernel.domainname", "kernel.hostname") and "uts" in own:
        if k == "kernel.hostname" and hostname_set:
            return f'sysctl "{key}" is not allowed as it conflicts with the OCI "hostname" field'
        return None
    return f'sysctl "{key}" is not in a separate kernel namespace'


def check(sysctl: dict, own: set[str] | frozenset[str], hostname_set: bool = True) -> str | None:
    """The first problem among the keys of `sysctl` (see problem), or None."""
    for key in sysctl:
        why = problem(key, own, hostname_set)
        if why:
            return why
    return None
