"""Storage drivers (overlay, vfs, btrfs) behind one protocol; see docs/architecture.md.

`get_driver(name, home)` records the chosen driver in `home/driver`; the driver keeps its layers in
`home/<name>/`. Opening the same home with another driver is refused: layers of one driver are
meaningless to another.
"""

from __future__ import annotations

import os

from berth import errors
from berth.linux import libc
from berth.storage import _fsutil as fs
from berth.storage.base import Driver
from berth.storage.copying import BtrfsDriver, VfsDriver
from berth.storage.overlay import OverlayDriver
from berth.storage.overlay import probe as overlay_usable

DRIVERS: dict[str, type[Driver]] = {"overlay": OverlayDriver, "vfs": VfsDriver, "btrfs": BtrfsDriver}
ALIASES = {"overlay2": "overlay", "overlayfs": "overlay"}

__all__ = [
    "DRIVERS", "BtrfsDriver", "Driver", "OverlayDriver", "VfsDriver", "detect", "get_driver", "recorded_driver",
]


def detect(home: str) -> str:
    """overlay if a probe mount works on home's filesystem, else btrfs if home is on btrfs, else vfs."""
    os.makedirs(home, mode=0o700, exist_ok=True)
    if overlay_usable(home) is not None:
        return "overlay"
    if libc.fs_magic(home) == libc.BTRFS_SUPER_MAGIC:
        return "btrfs"
    return "vfs"


def recorded_driver(home: str) -> str | None:
    text = fs.read_text(os.path.join(home, "driver"))
    return text.strip() if text else None


def get_driver(name: str | None, home: str) -> Driver:
    if name is not None:
        name = ALIASES.get(name, name)
        if name not in DRIVERS:
            raise errors.InvalidArgument(
                f"unknown storage driver {name!r} (choose one of {', '.join(sorted(DRIVERS))})"
            )
    os.makedirs(home, mode=0o700, exist_ok=True)
    with fs.flocked(os.path.join(home, ".driver.lock")):
        recorded = recorded_driver(home)
        if recorded is not None:
            if name is not None and name != recorded:
                raise errors.Conflict(
                    f"storage at {home} was created with driver {recorded!r}; refusing to open it with "
                    f"{name!r} (use {recorded!r}, or a fresh --root)"
                )
            name = recorded
            if name not in DRIVERS:
                raise errors.DataCorruption(f"{home}/driver names an unknown storage driver {name!r}")
        chosen = name or detect(home)
        driver = DRIVERS[chosen](os.path.join(home, chosen))
        if recorded is None:
            fs.write_atomic(os.path.join(home, "driver"), chosen + "\n")
            fs.fsync_dir(home)
        return driver
