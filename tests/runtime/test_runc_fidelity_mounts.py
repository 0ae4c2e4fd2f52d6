"""Root filesystem details where berth-runtime must do what runc does (each test also runs with
OCI_RUNTIME=runc)."""

from .rt_helpers import in_container


def test_device_path_with_trailing_slash_is_cleaned(rt, bundle, cid):
    bundle.linux["devices"] = [{"path": "/dev/fuse/", "type": "c", "major": 10, "minor": 229,
                                "fileMode": 0o640, "uid": 0, "gid": 0}]
    bundle.linux["resources"]["devices"].append({"allow": True, "type": "c", "major": 10, "minor": 229,
                                                 "access": "rwm"})
    out = in_container(bundle, rt, cid, "stat -c '%n %F %t:%T %a' /dev/fuse").stdout
    assert out.strip() == "/dev/fuse character special file a:e5 640"
