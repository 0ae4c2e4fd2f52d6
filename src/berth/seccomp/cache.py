"""compile_bpf: the on-disk cache of compiled seccomp programs (the container-start hot path).

A hit costs one file read and a sha256; it never imports ``berth.seccomp.libseccomp`` nor dlopens
libseccomp. The key is sha256 over the canonical JSON of the profile, the identity of the installed
libseccomp (its real file name, which carries the version, plus size and mtime, read with stat — no
dlopen), the machine arch and this module's format version. Entries are written tmp + fsync + rename,
and each carries a digest of its payload, so a torn or corrupt entry is detected, ignored and rebuilt;
an entry owned by another user or writable by group/others is ignored too.
"""

import _json  # the C encoder alone: `import json` pulls in re and enum (~6-10 ms per container start)
import os

try:  # the builtin sha256 (no OpenSSL load: ~3 ms less per container start)
    from _sha256 import sha256
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import sha256
from berth import errors

FORMAT = b"BERTHBPF3\n"  # bump when the compiler's output for a given profile may change
_DIGEST_LEN = 32
DEFAULT_CACHE_DIR = "/run/berth/seccomp-cache"
_LIB_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/lib64",
    "/usr/lib",
    "/lib",
    "/usr/local/lib",
)
_lib_identity: str | None = None


def cache_dir() -> str:
    return os.environ.get("BERTH_SECCOMP_CACHE") or DEFAULT_CACHE_DIR


def libseccomp_identity() -> str:
    """'libseccomp.so.2.5.4:<size>:<mtime_ns>' of the library the dynamic loader would pick, by stat only."""
    global _lib_identity
    if _lib_identity is None:
        ident = "none"
        for d in _LIB_DIRS:
            path = os.path.join(d, "libseccomp.so.2")
            try:
                real = os.path.realpath(path)
                st = os.stat(real)
            except OSError:
                continue
            ident = f"{os.path.basename(real)}:{st.st_size}:{st.st_mtime_ns}"
            break
        _lib_identity = ident
    return _lib_identity


def _not_json(o: object) -> object:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def canonical_json(seccomp: dict[str, object]) -> bytes:
    """Byte-identical to json.dumps(seccomp, sort_keys=True, separators=(",", ":"), ensure_ascii=True)."""
    # args: markers (cycle check), default, string encoder, indent, key sep, item sep, sort_keys, skipkeys,
    # allow_nan -- what json.dumps hands the same C encoder
    enc = _json.make_encoder({}, _not_json, _json.encode_basestring_ascii, None, ":", ",", True, False, True)
    try:
        return "".join(enc(seccomp, 0)).encode()
    except (TypeError, ValueError) as e:
        raise errors.InvalidArgument(f"linux.seccomp: not a JSON object: {e}")


def cache_key(seccomp: dict[str, object]) -> str:
    h = sha256(canonical_json(seccomp))
    h.update(b"\0" + libseccomp_identity().encode() + b"\0" + os.uname().machine.encode() + b"\0" + FORMAT)
    return h.hexdigest()


def entry_path(seccomp: dict[str, object]) -> str:
    return os.path.join(cache_dir(), cache_key(seccomp) + ".bpf")


def _read_entry(path: str) -> bytes | None:
    """The cached program, or None when missing or corrupt (a corrupt entry is then rebuilt)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            # a program we load into containers: trust only our own entries that no one else can write
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            data = f.read()
    except OSError:
        return None
    head = len(FORMAT) + _DIGEST_LEN
    payload = data[head:]
    if (
        not data.startswith(FORMAT)
        or not payload
        or len(payload) % 8
        or sha256(payload).digest() != data[len(FORMAT) : head]
    ):
        return None
    return payload


def _write_entry(path: str, bpf: bytes) -> None:
    """Best effort: a cache that cannot be written must never fail a container start."""
    d = os.path.dirname(path)
    tmp = f"{path}.tmp.{os.getpid()}.{os.urandom(4).hex()}"
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, FORMAT + sha256(bpf).digest() + bpf)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def lookup(seccomp: dict[str, object]) -> bytes | None:
    """The cached program for this profile, or None (never compiles)."""
    return _read_entry(entry_path(seccomp))


def compile_bpf(seccomp: dict[str, object]) -> bytes:
    """OCI linux.seccomp -> raw sock_filter array (8 bytes per instruction), cached on disk."""
    path = entry_path(seccomp)
    bpf = _read_entry(path)
    if bpf is not None:
        return bpf
    from berth.seccomp.compiler import compile_uncached  # lazy: dlopens libseccomp

    bpf = compile_uncached(seccomp)
    _write_entry(path, bpf)
    return bpf
