"""References: normalisation, familiar form, validation (table-driven)."""

import pytest

from berth.errors import InvalidArgument
from berth.oci import reference as r

NORMALIZE = [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox:t", "docker.io/library/busybox:t", "busybox:t"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("user/app/sub:v1", "docker.io/user/app/sub:v1", "user/app/sub:v1"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
    ("127.0.0.1:5000/x:t", "127.0.0.1:5000/x:t", "127.0.0.1:5000/x:t"),
    ("quay.io/a/b-c__d.e:v1.2-3", "quay.io/a/b-c__d.e:v1.2-3", "quay.io/a/b-c__d.e:v1.2-3"),
    ("[::1]:5000/x:t", "[::1]:5000/x:t", "[::1]:5000/x:t"),
    ("x@sha256:" + "a" * 64, "docker.io/library/x@sha256:" + "a" * 64, "x@sha256:" + "a" * 64),
    ("x:t@sha256:" + "b" * 64, "docker.io/library/x:t@sha256:" + "b" * 64, "x:t@sha256:" + "b" * 64),
    ("Registry.Example.com/x", "Registry.Example.com/x:latest", "Registry.Example.com/x:latest"),
]


@pytest.mark.parametrize("ref,full,short", NORMALIZE)
def test_normalize_and_familiar(ref, full, short):
    assert r.normalize(ref) == full
    assert r.familiar(full) == short
    assert r.parse(full) == r.parse(ref)


BAD = [
    ("", "empty"),
    ("Busybox", "lowercase"),
    ("user/App", "lowercase"),
    ("busybox:", "tag"),
    ("busybox:-bad", "tag"),
    ("busybox:" + "t" * 129, "tag"),
    ("bad repo", "whitespace"),
    ("a//b", "repository name"),
    ("a/b_", "repository name"),
    ("-a", "repository name"),
    ("x@sha256:abc", "digest"),
    ("x@sha256:" + "A" * 64, "digest"),
    ("x@" + "a" * 64, "digest"),
    ("a" * 64, "64-byte hexadecimal"),
    ("host:port/x", "registry"),
    (":tag", "no repository"),
    ("x/" + "a" * 300, "longer than"),
]


@pytest.mark.parametrize("ref,needle", BAD)
def test_invalid_references_name_the_problem(ref, needle):
    with pytest.raises(InvalidArgument) as e:
        r.parse(ref)
    assert needle in str(e.value)


def test_parts():
    ref = r.parse("localhost:5000/team/app:v2")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "team/app", "v2", None)
    assert ref.familiar_name == "localhost:5000/team/app"
    assert r.parse("busybox", default_tag=False).tag is None
    assert str(r.parse("busybox").with_tag("x")) == "docker.io/library/busybox:x"
    with pytest.raises(InvalidArgument):
        r.parse("busybox").with_tag("bad tag")


@pytest.mark.parametrize("s,is_id,is_prefix", [
    ("sha256:" + "c" * 64, True, True),
    ("c" * 64, True, True),
    ("c0ffee", False, True),
    ("sha256:c0ffee", False, True),
    ("busybox", False, False),
    ("", False, False),
])
def test_ids(s, is_id, is_prefix):
    assert r.is_image_id(s) is is_id
    assert r.is_id_prefix(s) is is_prefix
