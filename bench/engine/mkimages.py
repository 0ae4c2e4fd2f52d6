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
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

CHUNK = 1 << 20


def _info(name: str, size: int = 0) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime, ti.uid, ti.gid = size, 0o644, 0, 0, 0
    return ti


def rootfs_tar(out: str) -> None:
    from berth.bootstrap import make_rootfs

    tmp = tempfile.mkdtemp(prefix="bench-rootfs-")
    try:
        root = make_rootfs(os.path.join(tmp, "r"))
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(dirnames + filenames):
                    full = os.path.join(dirpath, name)
                    ti = tf.gettarinfo(full, os.path.relpath(full, root))
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = ""
                    ti.mtime = 0
                    if ti.isreg():
                        with open(full, "rb") as f:
                            tf.addfile(ti, f)
                    else:
                        tf.addfile(ti)
    finally:
        shutil.rmtree(tmp)


class _HashingWriter(io.RawIOBase):
    """A file that hashes what is written to it (the layer's diff_id)."""

    def __init__(self, f):
        self.f, self.h = f, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.h.update(b)
        return self.f.write(b)


def _layer(tf_out: tarfile.TarFile, fill) -> str:
    """Write one layer tar (built by `fill(tarfile)`) into the archive; returns its diff_id hex."""
    with tempfile.TemporaryFile() as tmp:
        hw = _HashingWriter(tmp)
        with tarfile.open(fileobj=hw, mode="w|", format=tarfile.PAX_FORMAT) as lt:
            fill(lt)
        hexd = hw.h.hexdigest()
        size = tmp.tell()
        tmp.seek(0)
        d = _info(hexd, 0)
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tf_out.addfile(d)
        tf_out.addfile(_info(f"{hexd}/layer.tar", size), tmp)
    return hexd


def archive(out: str, ref: str, base: str, layers: int, big: int) -> None:
    diff_ids: list[str] = []
    history: list[dict] = []
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        def base_fill(lt: tarfile.TarFile) -> None:
            with tarfile.open(base) as src:
                for m in src:
                    lt.addfile(m, src.extractfile(m) if m.isreg() else None)
        diff_ids.append(_layer(tf, base_fill))
        history.append({"created": "1970-01-01T00:00:00Z", "created_by": "busybox rootfs (berth.bootstrap)"})
        for i in range(1, layers + 1):
            data = f"layer{i}\n".encode()

            def small(lt: tarfile.TarFile, i=i, data=data) -> None:
                lt.addfile(_info(f"f{i}.txt", len(data)), io.BytesIO(data))
            diff_ids.append(_layer(tf, small))
            history.append({"created": "1970-01-01T00:00:00Z", "created_by": f"RUN echo layer{i} > /f{i}.txt"})
        if big:
            def big_fill(lt: tarfile.TarFile) -> None:
                # stream random bytes without holding them in memory
                with open("/dev/urandom", "rb") as rnd:
                    class Src:
                        left = big

                        def read(self, n: int = -1) -> bytes:
                            n = self.left if n < 0 else min(n, self.left)
                            self.left -= n
                            return rnd.read(n)
                    lt.addfile(_info("big.bin", big), Src())
            diff_ids.append(_layer(tf, big_fill))
            history.append({"created": "1970-01-01T00:00:00Z",
                            "created_by": f"RUN busybox head -c {big} /dev/urandom > /big.bin"})
        config = {
            "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
            "history": history,
        }
        cbytes = json.dumps(config, separators=(",", ":")).encode()
        chex = hashlib.sha256(cbytes).hexdigest()
        tf.addfile(_info(f"{chex}.json", len(cbytes)), io.BytesIO(cbytes))
        manifest = [{"Config": f"{chex}.json", "RepoTags": [ref], "Layers": [f"{d}/layer.tar" for d in diff_ids]}]
        mbytes = json.dumps(manifest).encode()
        tf.addfile(_info("manifest.json", len(mbytes)), io.BytesIO(mbytes))


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
        rootfs_tar(o.out)
    else:
        archive(o.out, o.ref, o.base, o.layers, o.big)
    return 0


if __name__ == "__main__":
    sys.exit(main())
