"""berth.oci.defaults: Docker's default capabilities, paths, mounts, devices and device rules."""

from __future__ import annotations

import pytest

from berth import errors
from berth.oci import defaults as d


def test_default_capabilities_are_dockers_fourteen():
    assert len(d.DEFAULT_CAPABILITIES) == 14
    assert set(d.DEFAULT_CAPABILITIES) <= set(d.ALL_CAPABILITIES)
    assert d.capabilities() == sorted(d.DEFAULT_CAPABILITIES, key=d.ALL_CAPABILITIES.index)
    assert "CAP_SYS_ADMIN" not in d.capabilities() and "CAP_NET_ADMIN" not in d.capabilities()


def test_all_capabilities_in_bit_order():
    assert len(d.ALL_CAPABILITIES) == 41 and len(set(d.ALL_CAPABILITIES)) == 41
    assert d.ALL_CAPABILITIES[21] == "CAP_SYS_ADMIN" and d.ALL_CAPABILITIES[40] == "CAP_CHECKPOINT_RESTORE"
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    assert d.all_capabilities(last) == list(d.ALL_CAPABILITIES[: last + 1])


def test_name_normalisation():
    assert d.normalize_capability("net_admin") == "CAP_NET_ADMIN"
    assert d.normalize_capability(" CAP_SYS_ADMIN ") == "CAP_SYS_ADMIN"
    assert d.normalize_capability("all") == "ALL"
    for bad in ("", "CAP_NOPE", "nope", None):
        with pytest.raises(errors.InvalidArgument, match="capability"):
            d.normalize_capability(bad)


def test_add_and_drop():
    caps = d.capabilities(cap_add=["net_admin", "CAP_SYS_PTRACE"], cap_drop=["chown", "CAP_MKNOD"])
    assert {"CAP_NET_ADMIN", "CAP_SYS_PTRACE"} <= set(caps)
    assert "CAP_CHOWN" not in caps and "CAP_MKNOD" not in caps
    assert len(caps) == 14
    assert caps == sorted(caps, key=d.ALL_CAPABILITIES.index)


def test_all_semantics():
    assert d.capabilities(cap_add=["ALL"]) == list(d.ALL_CAPABILITIES)
    assert "CAP_SYS_ADMIN" not in d.capabilities(cap_add=["all"], cap_drop=["sys_admin"])
    assert d.capabilities(cap_drop=["ALL"]) == []
    assert d.capabilities(cap_add=["NET_BIND_SERVICE"], cap_drop=["ALL"]) == ["CAP_NET_BIND_SERVICE"]
    assert d.capabilities(cap_add=["sys_admin"], cap_drop=["all"], privileged=True) == list(
        d.ALL_CAPABILITIES
    )
    with pytest.raises(errors.InvalidArgument, match="CAP_BOGUS"):
        d.capabilities(cap_add=["CAP_BOGUS"])


def test_paths():
    masked = d.masked_paths()
    for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/scsi", "/proc/acpi"):
        assert p in masked
    assert d.masked_paths(privileged=True) == [] and d.readonly_paths(privileged=True) == []
    assert set(d.readonly_paths()) == {
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    }


def test_mounts():
    mounts = {m["destination"]: m for m in d.default_mounts()}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    assert {"newinstance", "ptmxmode=0666", "gid=5", "mode=0620"} <= set(mounts["/dev/pts"]["options"])
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert f"size={64 * 1024 * 1024}" in mounts["/dev/shm"]["options"]
    small = {m["destination"]: m for m in d.default_mounts(shm_size=1024)}
    assert [o for o in small["/dev/shm"]["options"] if o.startswith("size=")] == ["size=1024"]
    mounts["/proc"]["options"].append("ro")  # a copy: the module's data is untouched
    assert "ro" not in d.DEFAULT_MOUNTS[0]["options"]


def test_devices_and_rules():
    devs = {x["path"]: (x["major"], x["minor"]) for x in d.default_devices()}
    assert devs == {
        "/dev/null": (1, 3),
        "/dev/zero": (1, 5),
        "/dev/full": (1, 7),
        "/dev/random": (1, 8),
        "/dev/urandom": (1, 9),
        "/dev/tty": (5, 0),
    }
    rules = d.device_cgroup_rules()
    assert rules[0] == {"allow": False, "access": "rwm"}
    allowed = {
        (r.get("type"), r.get("major"), r.get("minor")) for r in rules if r["allow"] and r["access"] == "rwm"
    }
    assert {
        ("c", 1, 3),
        ("c", 1, 5),
        ("c", 1, 7),
        ("c", 1, 8),
        ("c", 1, 9),
        ("c", 5, 0),
        ("c", 136, None),
    } <= allowed
    assert ("c", 10, 229) not in allowed
    assert d.device_cgroup_rules(privileged=True) == [{"allow": True, "access": "rwm"}]
