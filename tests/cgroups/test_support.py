"""What the daemon believes the host's cgroups can honour, read off (fake) hierarchy trees."""

from berth.cgroups.mounts import Hierarchy
from berth.cgroups.support import blkio_support
from berth.daemon.spec import discard_unsupported_blkio


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


def test_v1_without_a_weight_scheduler(tmp_path):
    for f in ("blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
              "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"):
        touch(tmp_path / f)
    s = blkio_support([Hierarchy(str(tmp_path), "/", frozenset({"blkio"}), 1)])
    assert s == {"weight": False, "weight_device": False, "read_bps": True, "write_bps": True,
                 "read_iops": True, "write_iops": True}


def test_v1_with_bfq(tmp_path):
    touch(tmp_path / "blkio.bfq.weight")
    touch(tmp_path / "blkio.bfq.weight_device")
    s = blkio_support([Hierarchy(str(tmp_path), "/", frozenset({"blkio"}), 1)])
    assert s["weight"] and s["weight_device"] and not s["read_bps"]


def test_v2_io_controller(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    touch(tmp_path / "system.slice" / "io.max")
    s = blkio_support([Hierarchy(str(tmp_path), "/", frozenset(), 2)])
    assert s["read_bps"] and s["write_iops"] and not s["weight"]
    touch(tmp_path / "system.slice" / "io.weight")
    assert blkio_support([Hierarchy(str(tmp_path), "/", frozenset(), 2)])["weight"]


def test_v2_without_io_and_no_blkio_at_all(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    touch(tmp_path / "a" / "io.max")
    assert not any(blkio_support([Hierarchy(str(tmp_path), "/", frozenset(), 2)]).values())
    assert not any(blkio_support([]).values())


def test_discard_keeps_what_the_host_honours():
    hc = {"BlkioWeight": 300, "BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 200}],
          "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1}], "Memory": 1}
    support = {"weight": False, "weight_device": False, "read_bps": True, "write_bps": True,
               "read_iops": True, "write_iops": True}
    warnings = discard_unsupported_blkio(hc, support)
    assert hc == {"BlkioWeight": 0, "BlkioWeightDevice": [],
                  "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1}], "Memory": 1}
    assert warnings == [
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
        "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."]
    assert discard_unsupported_blkio(hc, support) == []
