"""Generate a benchmark layer: N files (about SIZE MB in all, sizes exponentially distributed) in 500
directories, listed directory by directory like `tar -c` would."""

import io
import os
import random
import sys
import tarfile

out, n, total_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
avg = total_mb * 1024 * 1024 // n
block = os.urandom(1 << 20)
dirs = [f"d{i:03d}/s{j:02d}" for i in range(50) for j in range(10)]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
    per_dir = -(-n // len(dirs))
    i = 0
    for top in range(50):
        ti = tarfile.TarInfo(f"d{top:03d}")
        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
        tf.addfile(ti)
        for d in dirs[top * 10 : top * 10 + 10]:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tf.addfile(ti)
            for _ in range(per_dir):
                if i == n:
                    break
                size = min(len(block), int(rng.expovariate(1 / avg)))
                off = rng.randrange(0, len(block) - size + 1)
                ti = tarfile.TarInfo(f"{d}/f{i:05d}")
                ti.size, ti.mode, ti.mtime, ti.uid, ti.gid = size, 0o644, 1_700_000_000, 1000, 1000
                tf.addfile(ti, io.BytesIO(block[off : off + size]))
                i += 1
