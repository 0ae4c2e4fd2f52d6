"""The compiled-BPF cache: hits, no libseccomp on a hit, corrupt entries, unwritable cache dirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from berth.oci.defaults import DEFAULT_CAPABILITIES
from berth.seccomp import cache, compile_bpf, default_profile
from berth.seccomp.compiler import compile_uncached


def profile() -> dict:
    return default_profile(list(DEFAULT_CAPABILITIES))


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def entries(d: str) -> list[str]:
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_hit_returns_identical_bytes(cache_dir):
    p = profile()
    first = compile_bpf(p)
    assert entries(cache_dir) == [cache.cache_key(p) + ".bpf"]
    assert compile_bpf(p) == first == compile_uncached(p)
    assert entries(cache_dir) == [cache.cache_key(p) + ".bpf"]  # no temp files left behind


def test_key_is_canonical_and_specific():
    p = profile()
    reordered = json.loads(json.dumps(p, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    assert cache.cache_key(reordered) == cache.cache_key(p)
    other = profile()
    other["defaultErrnoRet"] = 38
    assert cache.cache_key(other) != cache.cache_key(p)
    assert cache.libseccomp_identity().startswith("libseccomp.so.2")


def test_hit_does_not_load_libseccomp(cache_dir):
    p = profile()
    expected = compile_bpf(p)  # warm the cache
    code = (
        "import json, sys\n"
        "from berth.seccomp import compile_bpf\n"
        "bpf = compile_bpf(json.loads(sys.stdin.read()))\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(json.dumps({'hex': bpf.hex(), 'mods': sorted(m for m in sys.modules if 'seccomp' in m),"
        " 'mapped': 'libseccomp' in maps}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(p),
        capture_output=True,
        text=True,
        env={**os.environ, "BERTH_SECCOMP_CACHE": cache_dir},
        check=True,
        timeout=60,
    )
    res = json.loads(out.stdout)
    assert bytes.fromhex(res["hex"]) == expected
    assert "berth.seccomp.libseccomp" not in res["mods"] and "berth.seccomp.compiler" not in res["mods"]
    assert res["mapped"] is False


def test_miss_does_load_libseccomp(cache_dir):
    # the other side of the check above: without a cache entry the library is loaded
    code = (
        "import json, sys\nfrom berth.seccomp import compile_bpf\n"
        "compile_bpf({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['unshare'], "
        "'action': 'SCMP_ACT_ERRNO'}]})\nprint('libseccomp' in open('/proc/self/maps').read())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "BERTH_SECCOMP_CACHE": cache_dir},
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "True"


def test_corrupt_entries_are_rebuilt(cache_dir):
    p = profile()
    good = compile_bpf(p)
    path = cache.entry_path(p)
    original = read(path)
    flipped = bytearray(original)
    flipped[-3] ^= 0xFF
    for corrupt in (b"", b"garbage", original[:-5], original[:-8], bytes(flipped), b"X" + original[1:]):
        with open(path, "wb") as f:
            f.write(corrupt)
        assert cache.lookup(p) is None
        assert compile_bpf(p) == good
        assert read(path) == original  # rewritten whole


def test_unwritable_cache_dir_still_compiles(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("BERTH_SECCOMP_CACHE", str(blocker / "cache"))
    assert compile_bpf(profile())
    assert blocker.read_text() == "not a directory"


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv("BERTH_SECCOMP_CACHE", raising=False)
    assert cache.cache_dir() == "/run/berth/seccomp-cache"


def test_foreign_or_writable_entries_are_not_trusted(cache_dir):
    p = profile()
    good = compile_bpf(p)
    path = cache.entry_path(p)
    os.chmod(path, 0o666)
    assert cache.lookup(p) is None
    assert compile_bpf(p) == good and os.stat(path).st_mode & 0o777 == 0o600
    os.chown(path, 65534, 65534)
    assert cache.lookup(p) is None
    assert compile_bpf(p) == good and os.stat(path).st_uid == os.geteuid()
