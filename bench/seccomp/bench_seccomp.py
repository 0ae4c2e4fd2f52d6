"""Micro-benchmark of berth.seccomp: cold compile, cache hit, load, and the hot path's import cost.

Run as root: .venv/bin/python bench/seccomp/bench_seccomp.py [rounds]
Prints medians in milliseconds. Uses a private cache directory under /tmp.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "src"))

from berth.oci.defaults import DEFAULT_CAPABILITIES  # noqa: E402
from berth.seccomp import cache, compile_bpf, default_profile, load_bpf  # noqa: E402
from berth.seccomp.compiler import compile_uncached  # noqa: E402


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.3f} ms (min {min(samples) * 1000:.3f})"


def load_in_child(bpf: bytes) -> float:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None)
        libc.prctl(38, 1, 0, 0, 0)
        t = time.perf_counter()
        load_bpf(bpf)
        os.write(w, repr(time.perf_counter() - t).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = float(f.read())
    os.waitpid(pid, 0)
    return out


def fresh_process(code: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    tmp = tempfile.mkdtemp(prefix="berth-seccomp-bench-")
    os.environ["BERTH_SECCOMP_CACHE"] = tmp
    try:
        profile = default_profile(list(DEFAULT_CAPABILITIES))
        bpf = compile_uncached(profile)
        print(f"Docker default profile: {len(profile['syscalls'])} rule groups -> {len(bpf) // 8} BPF instructions")

        samples = []
        for _ in range(rounds):
            t = time.perf_counter()
            compile_uncached(profile)
            samples.append(time.perf_counter() - t)
        print(f"compile, in process (libseccomp already loaded):    {ms(samples)}")

        env = {**os.environ, "BERTH_SECCOMP_CACHE": tmp}
        prelude = (
            f"import sys, time, json; sys.path.insert(0, {os.path.join(ROOT, 'src')!r})\n"
            "from berth.seccomp.profile import default_profile\n"
            f"p = default_profile({list(DEFAULT_CAPABILITIES)!r})\n"
        )
        cold = prelude + (
            "from berth.seccomp import cache\n"
            "t = time.perf_counter(); cache.compile_bpf(p); print(time.perf_counter() - t)\n"
        )
        samples = []
        for _ in range(rounds):
            shutil.rmtree(tmp, ignore_errors=True)
            samples.append(fresh_process(cold, env))
        print(f"compile_bpf cold (fresh process, miss, dlopen, write): {ms(samples)}")

        compile_bpf(profile)  # warm
        samples = []
        for _ in range(rounds):
            t = time.perf_counter()
            compile_bpf(profile)
            samples.append(time.perf_counter() - t)
        print(f"compile_bpf cache hit (in process):                 {ms(samples)}")
        samples = [fresh_process(cold, env) for _ in range(rounds)]
        print(f"compile_bpf cache hit (fresh process):              {ms(samples)}")

        samples = [load_in_child(bpf) for _ in range(rounds)]
        print(f"load_bpf (seccomp syscall, in a forked child):       {ms(samples)}")

        imp = (
            f"import sys, time; sys.path.insert(0, {os.path.join(ROOT, 'src')!r})\n"
            "import json, ctypes\n"
            "t = time.perf_counter(); import berth.seccomp; print(time.perf_counter() - t)\n"
        )
        samples = [fresh_process(imp, env) for _ in range(rounds)]
        print(f"import berth.seccomp (json, ctypes already imported): {ms(samples)}")
        print(f"cache key inputs: libseccomp={cache.libseccomp_identity()} machine={os.uname().machine}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
