"""Pure logic: path rules, conversions, mountinfo parsing, the device program's shape."""

import pytest

from berth import errors
from berth.cgroups import convert, device_rules, devices_bpf, mounts, paths

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:32 /sub /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory
"""


def test_mountinfo_hybrid():
    hs = mounts.parse_mountinfo(HYBRID, {"cpu", "cpuacct", "memory"})
    assert [(h.mountpoint, sorted(h.controllers), h.version) for h in hs] == [
        ("/sys/fs/cgroup/cpu", ["cpu"], 1),
        ("/sys/fs/cgroup/cpuacct", ["cpuacct"], 1),
        ("/sys/fs/cgroup/memory", ["memory"], 1),
        ("/sys/fs/cgroup/systemd", ["name=systemd"], 1),
        ("/sys/fs/cgroup/unified", [], 2),
    ]  # the bind mount of the memory hierarchy (same device) is skipped


def test_mountinfo_escapes_and_root():
    hs = mounts.parse_mountinfo("50 31 0:99 /sub /mnt/mem\\040x rw - cgroup cgroup rw,memory", {"memory"})
    assert hs[0].mountpoint == "/mnt/mem x"
    assert hs[0].dir_of("/sub/berth/a") == "/mnt/mem x/berth/a"


def test_proc_cgroup():
    got = mounts.parse_proc_cgroup("9:name=systemd:/\n2:cpu,cpuacct:/a\n0::/b\n")
    assert got == {"name=systemd": "/", "cpu": "/a", "cpuacct": "/a", "": "/b"}


def test_paths():
    assert paths.resolve(None, "abc", "/x") == "/berth/abc"
    assert paths.resolve("/a/b/", "abc", "/x") == "/a/b"
    assert paths.resolve("c/d", "abc", "/own") == "/own/c/d"
    with pytest.raises(errors.Unsupported, match="systemd"):
        paths.check("system.slice:berth:abc", "abc")
    for bad in ("/a/../b", "../x", "/"):
        with pytest.raises(errors.InvalidArgument):
            paths.check(bad, "abc")
    with pytest.raises(errors.InvalidArgument):
        paths.check(None, "a/b")


def test_conversions():
    assert convert.shares_to_weight(2) == 1
    assert convert.shares_to_weight(1024) == 39
    assert convert.shares_to_weight(262144) == 10000
    assert convert.blkio_weight_to_io_weight(10) == 1
    assert convert.blkio_weight_to_io_weight(1000) == 10000
    assert convert.blkio_weight_to_io_weight(500) == 4950
    assert convert.swap_to_v2(64 << 20, 128 << 20) == 64 << 20
    assert convert.swap_to_v2(64 << 20, 64 << 20) == 0
    assert convert.swap_to_v2(64 << 20, -1) == -1
    assert convert.swap_to_v2(64 << 20, None) is None
    assert convert.swap_to_v2(-1, None) == -1
    with pytest.raises(errors.InvalidArgument, match="memory.limit"):
        convert.swap_to_v2(128 << 20, 64 << 20)
    with pytest.raises(errors.InvalidArgument):
        convert.swap_to_v2(None, 64 << 20)
    assert convert.page_size_name(2048) == "2MB"
    assert convert.page_size_name(1048576) == "1GB"
    assert convert.page_size_name(64) == "64KB"


def test_device_rule_lines():
    assert device_rules.v1_line({"allow": False, "access": "rwm"}) == "a"
    assert device_rules.v1_line({"type": "c", "major": 1, "minor": 3, "access": "wr"}) == "c 1:3 rw"
    assert device_rules.v1_line({"type": "b", "major": 8, "access": "m"}) == "b 8:* m"
    with pytest.raises(errors.InvalidArgument, match=r"devices\[\]\.type"):
        device_rules.v1_line({"type": "x"})
    with pytest.raises(errors.InvalidArgument, match="access"):
        device_rules.v1_line({"type": "c", "access": "rx"})


def test_device_program_shape():
    prog = devices_bpf.assemble([{"allow": False, "access": "rwm"},
                                 {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    assert len(prog) % 8 == 0
    assert prog[-8:] == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])   # ends in exit
