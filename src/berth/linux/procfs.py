"""Facts about processes from /proc."""



def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].decode().split()


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which pid started: with the pid, it identifies one process for good."""
    f = stat_fields(pid)
    return int(f[19]) if f else None


def alive(pid: int, started: int | None) -> bool:
    """True if pid still names the same (non-zombie) process that started at `started`."""
    if pid <= 0:
        return False
    f = stat_fields(pid)
    if f is None or f[0] in ("Z", "X"):
        return False
    return started is None or int(f[19]) == started
