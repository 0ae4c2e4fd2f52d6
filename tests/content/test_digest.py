import hashlib
import io

import pytest

from berth.errors import InvalidArgument
from berth.oci import digest as dg

HEX = hashlib.sha256(b"x").hexdigest()


def test_parse_sha256_and_sha512():
    d = dg.parse(f"sha256:{HEX}")
    assert (d.algorithm, d.hex, str(d), d.short) == ("sha256", HEX, f"sha256:{HEX}", HEX[:12])
    h512 = hashlib.sha512(b"x").hexdigest()
    assert dg.parse(f"sha512:{h512}").hex == h512


@pytest.mark.parametrize(
    "value, words",
    [
        (HEX, "missing 'algorithm:'"),
        (f"sha256:{HEX[:-1]}", "needs 64 hex"),
        (f"sha256:{HEX.upper()}", "lowercase hex"),
        (f"md5:{HEX}", "unsupported algorithm"),
        (f"SHA256:{HEX}", "malformed algorithm"),
        (f"sha512:{HEX}", "needs 128 hex"),
        ("sha256:", "needs 64 hex"),
    ],
)
def test_parse_errors_say_what_is_wrong(value, words):
    with pytest.raises(InvalidArgument, match=words) as e:
        dg.parse(value)
    assert repr(value)[1:-1][:20] in str(e.value)
    assert not dg.is_valid(value)


def test_helpers():
    assert dg.from_bytes(b"x") == f"sha256:{HEX}"
    assert dg.from_stream(io.BytesIO(b"x")) == (f"sha256:{HEX}", 1)
    assert dg.hex_of(HEX) == HEX and dg.hex_of(f"sha256:{HEX}") == HEX
    assert dg.validate(f"sha256:{HEX}") == f"sha256:{HEX}"
