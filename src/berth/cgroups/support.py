"""What the host's cgroups can honour, read off the mounted hierarchies (the daemon's view, as dockerd's
sysinfo): a setting the host cannot honour is discarded with a warning at create, not failed at start.

The runtime does not use this: given a config that asks for a missing knob it fails, as runc does.
"""

import os

from . import mounts

# HostConfig key -> (what it is called in dockerd's warning, the v1 blkio file(s) that must exist)
BLKIO_KNOBS: dict[str, tuple[str, tuple[str, ...]]] = {
    "BlkioWeight": ("weight", ("blkio.weight", "blkio.bfq.weight")),
    "BlkioWeightDevice": ("weight_device", ("blkio.weight_device", "blkio.bfq.weight_device")),
    "BlkioDeviceReadBps": ("read_bps", ("blkio.throttle.read_bps_device",)),
    "BlkioDeviceWriteBps": ("write_bps", ("blkio.throttle.write_bps_device",)),
    "BlkioDeviceReadIOps": ("read_iops", ("blkio.throttle.read_iops_device",)),
    "BlkioDeviceWriteIOps": ("write_iops", ("blkio.throttle.write_iops_device",)),
}

# the cgroup2 io controller's files for the same knobs (weights need BFQ or blk-iocost)
_V2_FILES: dict[str, tuple[str, ...]] = {
    "weight": ("io.weight", "io.bfq.weight"),
    "weight_device": ("io.weight", "io.bfq.weight"),
    "read_bps": ("io.max",), "write_bps": ("io.max",), "read_iops": ("io.max",), "write_iops": ("io.max",),
}


def blkio_support(hierarchies: "list[mounts.Hierarchy] | None" = None) -> dict[str, bool]:
    """{"weight": bool, "weight_device": ..., "read_bps": ..., "write_bps": ..., "read_iops": ..., "write_iops": ...}.

    cgroup v1: the blkio hierarchy's top directory has the file (CFQ's blkio.weight, or BFQ's
    blkio.bfq.weight, exist only while such a scheduler is loaded). cgroup2: the io controller is
    available and some first-level cgroup that has it enabled shows the file (the top has none)."""
    hs = mounts.hierarchies() if hierarchies is None else hierarchies
    v1 = next((h for h in hs if h.version == 1 and "blkio" in h.controllers), None)
    if v1 is not None:
        return {what: any(os.path.exists(os.path.join(v1.mountpoint, f)) for f in files)
                for what, files in BLKIO_KNOBS.values()}
    v2 = next((h for h in hs if h.version == 2), None)
    if v2 is None or "io" not in mounts.unified_controllers(v2):
        return {what: False for what, _ in BLKIO_KNOBS.values()}
    present: set[str] = set()
    try:
        children = [e.path for e in os.scandir(v2.mountpoint) if e.is_dir(follow_symlinks=False)]
    except OSError:
        children = []
    for d in children:
        for f in ("io.weight", "io.bfq.weight", "io.max"):
            if os.path.exists(os.path.join(d, f)):
                present.add(f)
    return {what: any(f in present for f in _V2_FILES[what]) for what, _ in BLKIO_KNOBS.values()}
