"""OCI content digests: parsing, validation and hashing helpers (pure, no I/O).

A digest is `<algorithm>:<encoded>` (OCI image-spec descriptor.md). berth stores and produces sha256;
sha512 is accepted when parsing so that foreign descriptors validate.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from berth.errors import InvalidArgument, Unsupported

# Lengths of the hex encoding per registered algorithm.
_HEX_LEN = {"sha256": 64, "sha512": 128}
_ALGO_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*$")
_HEX_RE = re.compile(r"^[a-f0-9]+$")

SHA256 = "sha256"
CANONICAL = SHA256


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        """12 hex characters, like docker's short ids."""
        return self.hex[:12]


def parse(value: str) -> Digest:
    """Parse and validate `algo:hex`; raise InvalidArgument explaining what is wrong."""
    if not isinstance(value, str):
        raise InvalidArgument(f"digest must be a string, got {type(value).__name__}")
    algo, sep, enc = value.partition(":")
    if not sep:
        raise InvalidArgument(f"invalid digest {value!r}: missing 'algorithm:' prefix (e.g. sha256:<64 hex>)")
    if not _ALGO_RE.match(algo):
        raise InvalidArgument(f"invalid digest {value!r}: malformed algorithm {algo!r}")
    if algo not in _HEX_LEN:
        raise InvalidArgument(f"invalid digest {value!r}: unsupported algorithm {algo!r} (sha256, sha512)")
    want = _HEX_LEN[algo]
    if len(enc) != want:
        raise InvalidArgument(f"invalid digest {value!r}: {algo} needs {want} hex characters, got {len(enc)}")
    if not _HEX_RE.match(enc):
        raise InvalidArgument(f"invalid digest {value!r}: encoded part must be lowercase hex")
    return Digest(algo, enc)


def validate(value: str) -> str:
    """Return value unchanged if it is a valid digest, else raise InvalidArgument."""
    parse(value)
    return value


def is_valid(value: str) -> bool:
    try:
        parse(value)
    except InvalidArgument:
        return False
    return True


def hasher(algorithm: str = SHA256):
    """A fresh hashlib object for the digest algorithm."""
    if algorithm not in _HEX_LEN:
        raise Unsupported(f"digest algorithm {algorithm!r} is not supported")
    return hashlib.new(algorithm)


def from_bytes(data: bytes, algorithm: str = SHA256) -> str:
    h = hasher(algorithm)
    h.update(data)
    return f"{algorithm}:{h.hexdigest()}"


def from_hasher(h) -> str:
    return f"{h.name}:{h.hexdigest()}"


def from_stream(stream, algorithm: str = SHA256, bufsize: int = 1 << 20) -> tuple[str, int]:
    """Digest and size of everything left in a binary stream."""
    h = hasher(algorithm)
    n = 0
    while chunk := stream.read(bufsize):
        h.update(chunk)
        n += len(chunk)
    return f"{algorithm}:{h.hexdigest()}", n


def hex_of(value: str) -> str:
    """The encoded part of a sha256 digest; a bare 64-hex id is accepted too."""
    if ":" not in value and len(value) == 64:
        value = f"sha256:{value}"
    return parse(value).hex
