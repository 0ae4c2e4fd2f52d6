"""A throwaway btrfs filesystem on a loop device, for the tests and benchmarks of the btrfs driver.

Only tests and benchmarks use this module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

from berth.linux import libc, mountinfo


@contextlib.contextmanager
def loopback_btrfs(size: str = "1G", dir: str | None = None) -> Iterator[str]:
    """A fresh btrfs of size (truncate's syntax) on a loop device, mounted on a temp dir under dir;
    the mount, the loop device and the image are all undone on exit, even on failure."""
    base = tempfile.mkdtemp(prefix="berth-btrfs-", dir=dir)
    image, mnt = os.path.join(base, "fs.img"), os.path.join(base, "mnt")
    os.mkdir(mnt)
    loop = None
    try:
        subprocess.run(["truncate", "-s", size, image], check=True)
        subprocess.run(["mkfs.btrfs", "-q", image], check=True, stdout=subprocess.DEVNULL)
        loop = subprocess.run(["losetup", "--find", "--show", image], check=True, capture_output=True,
                              text=True).stdout.strip()
        libc.mount(loop, mnt, "btrfs", 0, None)
        yield mnt
    finally:
        for mp, _ in mountinfo.mounts_under(mnt):
            libc.umount(mp)
        if loop:
            subprocess.run(["losetup", "-d", loop], check=False)
        shutil.rmtree(base, ignore_errors=True)
