"""Images for the engine benchmarks, identical for every engine.

  python mkimages.py rootfs OUT.tar
      the busybox root filesystem of berth.bootstrap.make_rootfs as a plain tar (for `import`)
  python mkimages.py archive OUT.tar REF BASE.tar [--layers N] [--big BYTES]
      a docker-archive (`docker save` format, loadable by berth/docker/podman `load`) whose first layer is
      BASE.tar, then N small layers (each adds /fI.txt, like `RUN echo layerI > /fI.txt`) and, with --big,
      one layer holding /big.bin of BYTES random bytes
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
from typing import BinaryIO

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

from berth.testing.images import (  # noqa: E402 - after the path set-up
    Layer,
    busybox_rootfs_tar,
    bytes_layer,
    docker_archive,
    files_tar,
    member,
    tar_file_layer,
)


def _random_layer(size: int):
    """A layer holding /big.bin of size random bytes, streamed (never held in memory)."""
    def write(out: BinaryIO) -> None:
        with open("/dev/urandom", "rb") as rnd, \
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as lt:
            class Src:
                left = size

                def read(self, n: int = -1) -> bytes:
                    n = self.left if n < 0 else min(n, self.left)
                    self.left -= n
                    return rnd.read(n)
            lt.addfile(member("big.bin", size), Src())
    return write


def archive(out: str, ref: str, base: str, layers: int, big: int) -> None:
    parts: list[Layer] = [("busybox rootfs (berth.bootstrap)", tar_file_layer(base))]
    for i in range(1, layers + 1):
        data = files_tar({f"f{i}.txt": f"layer{i}\n".encode()})
        parts.append((f"RUN echo layer{i} > /f{i}.txt", bytes_layer(data)))
    if big:
        parts.append((f"RUN busybox head -c {big} /dev/urandom > /big.bin", _random_layer(big)))
    docker_archive(out, ref, parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rootfs")
    r.add_argument("out")
    a = sub.add_parser("archive")
    a.add_argument("out")
    a.add_argument("ref")
    a.add_argument("base")
    a.add_argument("--layers", type=int, default=0)
    a.add_argument("--big", type=int, default=0)
    o = ap.parse_args()
    if o.cmd == "rootfs":
        busybox_rootfs_tar(o.out)
    else:
        archive(o.out, o.ref, o.base, o.layers, o.big)
    return 0


if __name__ == "__main__":
    sys.exit(main())
