"""Generate a benchmark layer: N files (total about SIZE MB) in a few hundred directories, as a tar."""

import os
import random
import sys
import tarfile

out, n, total_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
avg = total_mb * 1024 * 1024 // n
block = os.urandom(1 << 20)
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
    dirs = [f"d{i:03d}/s{j:02d}" for i in range(50) for j in range(10)]
    for d in sorted({x.split("/")[0] for x in dirs}) + dirs:
        ti = tarfile.TarInfo(d)
        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
        tf.addfile(ti)
    for i in range(n):
        size = max(0, int(rng.expovariate(1 / avg)))
        size = min(size, len(block))
        off = rng.randrange(0, len(block) - size + 1)
        ti = tarfile.TarInfo(f"{dirs[i % len(dirs)]}/f{i:05d}")
        ti.size, ti.mode, ti.mtime, ti.uid, ti.gid = size, 0o644, 1_700_000_000, 1000, 1000
        from io import BytesIO
        tf.addfile(ti, BytesIO(block[off : off + size]))
