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


def test_tmpfs_keeps_the_mode_of_its_mount_point(rt, bundle, cid):
    import os

    for name, mode in (("priv", 0o711), ("shared", 0o1777)):
        os.mkdir(os.path.join(bundle.rootfs, name))
        os.chmod(os.path.join(bundle.rootfs, name), mode)
        bundle.config["mounts"].append({"destination": "/" + name, "type": "tmpfs", "source": "tmpfs",
                                        "options": ["nosuid", "size=1m"]})
    out = in_container(bundle, rt, cid, "stat -c %a /priv /shared; grep -c ' /priv ' /proc/self/mounts").stdout
    assert out.split() == ["711", "1777", "1"]


def test_loopback_is_up_in_a_new_network_namespace(rt, bundle, cid):
    out = in_container(bundle, rt, cid, "cat /sys/class/net/lo/flags; ip link show lo").stdout
    assert int(out.split()[0], 16) & 0x1
    assert "UP" in out.split("<", 1)[1].split(">", 1)[0].split(",")


def test_rootfs_is_the_root_without_a_mount_namespace(rt, bundle, cid):
    from .rt_helpers import run

    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "mount"]
    bundle.linux["maskedPaths"] = []  # runc refuses them without a mount namespace of its own
    bundle.linux["readonlyPaths"] = []
    with open(bundle.rootfs + "/MARKER", "w") as f:
        f.write("in the rootfs\n")
    # The inherited mount namespace is a throwaway one, so nothing the runtime mounts reaches ours.
    out = run(rt, bundle.sh("cat /MARKER; ls /dev/null /proc/self/stat"), cid,
              wrap=["unshare", "-m", "--propagation", "unchanged"]).stdout
    assert out.split("\n")[0] == "in the rootfs"


def test_shared_rootfs_propagation_starts(rt, bundle, cid):
    from .rt_helpers import IS_BERTH

    bundle.linux["rootfsPropagation"] = "shared"
    bundle.process["capabilities"] = {k: ["CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")}
    out = in_container(bundle, rt, cid, "mkdir -p /tmp/m && mount -t tmpfs t /tmp/m && "
                       "grep ' /tmp/m ' /proc/self/mountinfo").stdout
    fields = out.split(" - ")[0].split()
    assert fields[4] == "/tmp/m"
    if IS_BERTH:  # runc 1.1 (Debian 12's) sets it only before pivot_root, where it is lost (runc#1755)
        assert any(f.startswith("shared:") for f in fields[6:])
