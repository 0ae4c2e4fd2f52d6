"""v1 <-> v2 value conversions, as the OCI runtime spec and runc document them."""

from berth import errors

UNLIMITED_U64 = 2**64 - 1


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) -> cpu.weight (1..10000); 0 means unset."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) -> io.weight (1..10000); 0 means unset."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(memory: int | None, swap: int | None) -> int | None:
    """OCI memory.swap is memory+swap (v1 memsw); v2's memory.swap.max is swap alone.

    None = leave unset, -1 = unlimited.
    """
    mem = memory or 0
    sw = swap or 0
    if mem == -1 and sw == 0:
        return -1           # unlimited memory and no swap given: unlimited swap too, as v1 would behave
    if sw in (0, -1):
        return None if sw == 0 else -1
    if mem in (0, -1):
        raise errors.InvalidArgument(
            f"linux.resources.memory.swap={sw} needs a memory limit too (memory.limit is {memory})"
        )
    if sw < mem:
        raise errors.InvalidArgument(
            f"linux.resources.memory.swap={sw} must be >= memory.limit={mem} (it is memory+swap)"
        )
    return sw - mem


def v2_limit(value: int) -> str:
    return "max" if value < 0 else str(value)


def page_size_name(kb: int) -> str:
    """2048 (kB) -> "2MB", 1048576 -> "1GB", 64 -> "64KB" (the names cgroup files use)."""
    for unit, size in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
        if kb % size == 0 and kb >= size:
            return f"{kb // size}{unit}"
    return f"{kb}KB"


def hugepage_sizes() -> list[str]:
    import os

    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return []
    out = []
    for n in sorted(names):
        if n.startswith("hugepages-") and n.endswith("kB"):
            out.append(page_size_name(int(n[len("hugepages-"):-2])))
    return out
