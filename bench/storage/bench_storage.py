"""Storage driver benchmarks (compare with ../shared/anchors/results-2026-11-29.md section 6).

a) a container's filesystem from a 21-layer image (busybox + 20 small layers): time create_rw + get,
   and the 1-layer busybox image for the ratio;
b) a 1-byte append to a 500 MiB file that lives in an image layer (copy-up on overlay, nothing on
   vfs, an extent CoW on btrfs) vs the same append to a 500 MiB file on a named volume; plus the
   cost of removing the container's layer afterwards (docker's `run --rm` figure includes it).

Runs overlay and vfs on this machine's root filesystem (ext4) and btrfs on a loopback filesystem.
Usage: sudo .venv/bin/python bench/storage/bench_storage.py [--runs N] [--drivers overlay,vfs,btrfs]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time

from berth.bootstrap import make_rootfs
from berth.layers import tar_directory
from berth.linux import libc, mountinfo
from berth.metadata import Database
from berth.storage import get_driver
from berth.testing.loopfs import loopback_btrfs
from berth.volumes import VolumeStore

BIG = 500 * 1024 * 1024


def small_layer(i: int, path: str) -> str:
    with tarfile.open(path, "w") as t:
        data = f"layer{i}\n".encode()
        ti = tarfile.TarInfo(f"f{i}.txt")
        ti.size, ti.mtime = len(data), 1_700_000_000
        import io

        t.addfile(ti, io.BytesIO(data))
    return path


def big_layer(path: str, workdir: str) -> str:
    src = os.path.join(workdir, "bigsrc")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "big.bin"), "wb") as f:
        for _ in range(BIG // (8 << 20)):
            f.write(os.urandom(8 << 20))
    with open(path, "wb") as out:
        tar_directory(src, out)
    shutil.rmtree(src)
    return path


def fmt(xs: list[float], unit: str = "ms") -> str:
    k = 1000 if unit == "ms" else 1
    return f"{statistics.median(xs) * k:.1f} {unit} ({min(xs) * k:.1f}–{max(xs) * k:.1f})"


def bench_driver(name: str, home: str, tars: dict, runs: int, cow_runs: int) -> dict[str, str]:
    drv = get_driver(name, os.path.join(home, "store"))
    res: dict[str, str] = {}
    try:
        with open(tars["base"], "rb") as f:
            drv.apply_diff("0" * 64, None, f)
        parent = "0" * 64
        for i in range(20):
            lid = f"{i + 1:064x}"
            with open(tars["small"][i], "rb") as f:
                drv.apply_diff(lid, parent, f)
            parent = lid
        top20 = parent
        for label, image in (("21 layers", top20), ("1 layer", "0" * 64)):
            times, rm = [], []
            for r in range(runs + 2):
                cid = f"c{r:063d}"
                t0 = time.perf_counter()
                drv.create_rw(cid, image)
                drv.get(cid)
                t1 = time.perf_counter()
                drv.put(cid)
                drv.remove(cid)
                t2 = time.perf_counter()
                if r >= 2:  # two warm-ups
                    times.append(t1 - t0)
                    rm.append(t2 - t1)
            res[f"create_rw+get, {label}"] = fmt(times)
            res[f"put+remove, {label}"] = fmt(rm)

        with open(tars["big"], "rb") as f:
            t0 = time.perf_counter()
            drv.apply_diff("b" * 64, top20, f)
            res["apply 500 MiB layer"] = fmt([time.perf_counter() - t0], "s")
        db = Database(os.path.join(home, "meta.db"))
        vols = VolumeStore(home, db)
        vol = vols.create("bench")
        shutil.copyfile(os.path.join(drv.get("b" * 64), "big.bin"), os.path.join(vol.mountpoint, "big.bin"))
        drv.put("b" * 64)
        os.sync()
        prep, first, second, volume, removal = [], [], [], [], []
        for r in range(cow_runs):
            cid = f"d{r:063d}"
            t0 = time.perf_counter()
            drv.create_rw(cid, "b" * 64)
            root = drv.get(cid)
            t1 = time.perf_counter()
            for dest, bucket in ((os.path.join(root, "big.bin"), first), (os.path.join(root, "big.bin"), second),
                                 (os.path.join(vols.acquire("bench", cid), "big.bin"), volume)):
                s = time.perf_counter()
                with open(dest, "ab") as f:
                    f.write(b"x")
                bucket.append(time.perf_counter() - s)
            vols.release("bench", cid)
            t2 = time.perf_counter()
            drv.put(cid)
            drv.remove(cid)
            removal.append(time.perf_counter() - t2)
            prep.append(t1 - t0)
        res["create_rw+get on 500 MiB image"] = fmt(prep)
        res["first 1-byte append, image-layer file"] = fmt(first)
        res["second append, same file"] = fmt(second)
        res["1-byte append, volume file"] = fmt(volume)
        res["put+remove after the append"] = fmt(removal)
        vols.remove("bench")
        db.close()
    finally:
        drv.cleanup()
        for lid in reversed(sorted(drv.list())):
            with contextlib.suppress(Exception):
                drv.remove(lid)
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cow-runs", type=int, default=7)
    ap.add_argument("--drivers", default="overlay,vfs,btrfs")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="berth-bench-", dir="/var/tmp")
    results: dict[str, dict[str, str]] = {}
    try:
        rootfs = make_rootfs(os.path.join(work, "rootfs"))
        tars = {"base": os.path.join(work, "base.tar"), "big": os.path.join(work, "big.tar")}
        with open(tars["base"], "wb") as f:
            tar_directory(rootfs, f)
        tars["small"] = [small_layer(i + 1, os.path.join(work, f"l{i}.tar")) for i in range(20)]
        big_layer(tars["big"], work)
        for name in a.drivers.split(","):
            print(f"# {name} ...", file=sys.stderr, flush=True)
            if name == "btrfs":
                with loopback_btrfs("3G", dir="/var/tmp") as mnt:
                    results[name] = bench_driver(name, mnt, tars, a.runs, a.cow_runs)
            else:
                home = os.path.join(work, name)
                results[name] = bench_driver(name, home, tars, a.runs, a.cow_runs)
    finally:
        for mp, _ in mountinfo.mounts_under(work):
            libc.umount(mp)
        shutil.rmtree(work, ignore_errors=True)
    drivers = list(results)
    print("| measurement (median (min–max)) | " + " | ".join(drivers) + " |")
    print("|---|" + "---|" * len(drivers))
    for key in results[drivers[0]]:
        print(f"| {key} | " + " | ".join(results[d].get(key, "") for d in drivers) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
