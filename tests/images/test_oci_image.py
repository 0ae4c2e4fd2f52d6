"""Image spec models: validation errors name the field; platform matching; chain ids."""

import pytest

from berth.errors import InvalidArgument
from berth.oci import image as oi

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def manifest(**over):
    m = {
        "schemaVersion": 2,
        "mediaType": oi.OCI_MANIFEST,
        "config": {"mediaType": oi.OCI_CONFIG, "digest": D1, "size": 10},
        "layers": [{"mediaType": oi.OCI_LAYER_GZIP, "digest": D2, "size": 20}],
    }
    m.update(over)
    return m


def test_valid_documents():
    oi.validate_manifest(manifest())
    oi.validate_manifest(manifest(mediaType=oi.DOCKER_MANIFEST,
                                  config={"mediaType": oi.DOCKER_CONFIG, "digest": D1, "size": 1}))
    oi.validate_index({"schemaVersion": 2, "manifests": [
        {"mediaType": oi.OCI_MANIFEST, "digest": D1, "size": 3, "platform": {"os": "linux", "architecture": "amd64"}}]})
    oi.validate_config({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [D1]},
                        "history": [{"created_by": "x"}, {"empty_layer": True}]})


@pytest.mark.parametrize("doc,needle", [
    (manifest(schemaVersion=1), "manifest.schemaVersion"),
    (manifest(mediaType="text/plain"), "manifest.mediaType"),
    (manifest(config=None), "manifest.config: required"),
    (manifest(config={"mediaType": oi.OCI_CONFIG, "digest": "sha256:xyz", "size": 1}), "manifest.config.digest"),
    (manifest(layers=[{"mediaType": oi.OCI_LAYER, "digest": D2, "size": -1}]), "manifest.layers[0].size"),
    (manifest(layers=[{"mediaType": oi.OCI_LAYER, "digest": D2, "size": "1"}]), "manifest.layers[0].size: must be int"),
    (manifest(layers=[{"digest": D2, "size": 1}]), "manifest.layers[0].mediaType"),
    (manifest(annotations={"a": 1}), "manifest.annotations"),
    (b"{not json", "not valid JSON"),
    ([], "must be a JSON object"),
])
def test_manifest_errors(doc, needle):
    with pytest.raises(InvalidArgument) as e:
        oi.validate_manifest(doc)
    assert needle in str(e.value)


@pytest.mark.parametrize("cfg,needle", [
    ({"os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}, "config.architecture"),
    ({"architecture": "amd64", "os": "linux"}, "config.rootfs"),
    ({"architecture": "amd64", "os": "linux", "rootfs": {"type": "x", "diff_ids": []}}, "config.rootfs.type"),
    ({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["nope"]}},
     "config.rootfs.diff_ids[0]"),
    ({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
      "config": {"Cmd": "sh"}}, "config.config.Cmd"),
    ({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [D1]},
      "history": [{"empty_layer": True}]}, "config.history"),
])
def test_config_errors(cfg, needle):
    with pytest.raises(InvalidArgument) as e:
        oi.validate_config(cfg)
    assert needle in str(e.value)


def test_index_errors():
    with pytest.raises(InvalidArgument, match=r"index.manifests\[0\].platform.os"):
        oi.validate_index({"schemaVersion": 2, "manifests": [
            {"mediaType": oi.OCI_MANIFEST, "digest": D1, "size": 3, "platform": {"architecture": "amd64"}}]})
    with pytest.raises(InvalidArgument, match="this is an index"):
        oi.validate_manifest({"schemaVersion": 2, "manifests": [], "config": {}, "layers": []})


def plat(os_, arch, variant=None):
    p = {"os": os_, "architecture": arch}
    if variant:
        p["variant"] = variant
    return p


@pytest.mark.parametrize("want,have,ok", [
    (plat("linux", "amd64"), plat("linux", "amd64"), True),
    (plat("linux", "x86_64"), plat("linux", "amd64"), True),
    (plat("linux", "amd64"), plat("linux", "arm64"), False),
    (plat("linux", "arm64"), plat("linux", "arm64", "v8"), True),
    (plat("linux", "aarch64", "v8"), plat("linux", "arm64"), True),
    (plat("linux", "arm", "v7"), plat("linux", "arm", "v6"), False),
    (plat("linux", "arm"), plat("linux", "arm", "v7"), True),
    (plat("linux", "amd64"), plat("windows", "amd64"), False),
])
def test_platform_matching(want, have, ok):
    assert oi.platform_matches(want, have) is ok


def test_select_manifest():
    idx = {"schemaVersion": 2, "manifests": [
        {"mediaType": oi.OCI_MANIFEST, "digest": D1, "size": 1, "platform": plat("linux", "arm", "v7")},
        {"mediaType": oi.DOCKER_MANIFEST, "digest": D2, "size": 1, "platform": plat("linux", "amd64")},
    ]}
    assert oi.select_manifest(idx, plat("linux", "amd64"))["digest"] == D2
    assert oi.select_manifest(idx, plat("linux", "arm", "v7"))["digest"] == D1
    with pytest.raises(InvalidArgument, match="no image for platform linux/s390x"):
        oi.select_manifest(idx, plat("linux", "s390x"))


def test_chain_ids():
    assert oi.chain_ids([]) == []
    ids = oi.chain_ids([D1, D2])
    assert ids[0] == D1
    import hashlib
    assert ids[1] == "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
