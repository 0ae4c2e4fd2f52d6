"""Namespaces: new ones are really new, joined ones are shared, user namespaces map ids, time offsets apply."""

import os

import pytest

from .rt_helpers import in_container, run


def ns_ids(text: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in text.strip().splitlines())


NS_SCRIPT = "for n in pid net ipc uts mnt cgroup user; do echo $n $(readlink /proc/self/ns/$n); done"


def host_ns(name: str) -> str:
    return os.readlink(f"/proc/self/ns/{name}")


def test_new_namespaces(rt, bundle, cid):
    out = ns_ids(in_container(bundle, rt, cid, NS_SCRIPT + "; echo pid1 $$").stdout)
    for n in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert out[n] != host_ns(n), n
    assert out["user"] == host_ns("user")
    assert out["pid1"] == "1"


def test_join_namespace_by_path(rt, bundle, cid, tmp_path, rootfs_copy):
    bundle.args("sleep", "60")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    pid = rt.state(cid)["pid"]
    other = tmp_path / "b2"
    other.mkdir()
    from .rt_helpers import Bundle

    b2 = Bundle(other, rootfs_copy)
    b2.config["hostname"] = None
    del b2.config["hostname"]
    b2.linux["namespaces"] = [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                              {"type": "network", "path": f"/proc/{pid}/ns/net"},
                              {"type": "uts", "path": f"/proc/{pid}/ns/uts"}]
    out = ns_ids(in_container(b2, rt, cid + "-2", NS_SCRIPT + "; echo host $(hostname)").stdout)
    assert out["net"] == os.readlink(f"/proc/{pid}/ns/net")
    assert out["uts"] == os.readlink(f"/proc/{pid}/ns/uts")
    assert out["ipc"] != os.readlink(f"/proc/{pid}/ns/ipc")
    assert out["host"] == "berth"


def test_user_namespace_mappings(rt, bundle, cid):
    bundle.linux["namespaces"].append({"type": "user"})
    # Container root is host root (the test's rootfs lives under a 0700 tmp dir); 1.. map to 100001..
    maps = [{"containerID": 0, "hostID": 0, "size": 1}, {"containerID": 1, "hostID": 100001, "size": 65535}]
    bundle.linux["uidMappings"] = maps
    bundle.linux["gidMappings"] = maps
    os.chown(os.path.join(bundle.rootfs, "tmp"), 100005, 100005)
    out = in_container(bundle, rt, cid, "cat /proc/self/uid_map; id -u; readlink /proc/self/ns/user; "
                       "ls -lnd /tmp | awk '{print $3}'; mknod /dev/x c 1 3 2>/dev/null || echo NOMKNOD; "
                       "cat /dev/null && echo null-ok").stdout.split("\n")
    assert [ln.split() for ln in out[0:2]] == [["0", "0", "1"], ["1", "100001", "65535"]]
    assert out[2] == "0"
    assert out[3] != host_ns("user")
    assert out[4] == "5"  # host uid 100005 is container uid 5
    assert out[5] == "NOMKNOD"  # no devices can be made in a user namespace: they were bind-mounted
    assert out[6] == "null-ok"


def test_time_namespace_offsets(rt, bundle, cid):
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("kernel without time namespaces")
    bundle.linux["namespaces"].append({"type": "time"})
    bundle.linux["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0},
                                   "monotonic": {"secs": 86400 * 30, "nanosecs": 0}}
    out = in_container(bundle, rt, cid, "cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time").stdout.split()
    assert int(out[0]) >= 86400 * 365
    assert out[1] != host_ns("time")


def test_host_network_without_netns(rt, bundle, cid):
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "network"]
    out = in_container(bundle, rt, cid, "readlink /proc/self/ns/net; cat /proc/self/mounts").stdout
    assert out.split()[0] == host_ns("net")
    assert " /sys " in out  # sysfs bound from the host instead


def test_ipc_isolation(rt, bundle, cid):
    out = run(rt, bundle.sh("cat /proc/sysvipc/shm | wc -l"), cid).stdout
    assert out.strip() == "1"  # only the header: no host segments visible


def test_join_user_namespace_by_path(rt, bundle, cid, tmp_path, rootfs_copy):
    maps = [{"containerID": 0, "hostID": 0, "size": 1}, {"containerID": 1, "hostID": 100001, "size": 65535}]
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = maps
    bundle.linux["gidMappings"] = maps
    bundle.args("sleep", "60")
    rt("run", "-d", "--bundle", bundle.write(), cid)
    pid = rt.state(cid)["pid"]
    from .rt_helpers import Bundle

    other = tmp_path / "b2"
    other.mkdir()
    b2 = Bundle(other, rootfs_copy)
    b2.linux["namespaces"] += [{"type": "user", "path": f"/proc/{pid}/ns/user"}]
    b2.linux["namespaces"] = [n for n in b2.linux["namespaces"] if n["type"] != "network"] + [
        {"type": "network", "path": f"/proc/{pid}/ns/net"}]
    out = in_container(b2, rt, cid + "-2", "readlink /proc/self/ns/user; readlink /proc/self/ns/net; "
                       "cat /proc/self/uid_map").stdout.split("\n")
    assert out[0] == os.readlink(f"/proc/{pid}/ns/user")
    assert out[1] == os.readlink(f"/proc/{pid}/ns/net")
    assert out[3].split() == ["1", "100001", "65535"]
