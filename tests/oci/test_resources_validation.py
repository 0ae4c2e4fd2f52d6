"""linux.resources type checks: a wrong type is refused naming the field, never applied as something else."""

import json
import os
import subprocess
import sys

import pytest

from berth.errors import InvalidArgument
from berth.oci.runtime_spec import validate_resources

RUNTIME = os.environ.get("OCI_RUNTIME") or os.path.join(os.path.dirname(sys.executable), "berth-runtime")


@pytest.mark.parametrize(
    "res, field",
    [
        ({"memory": {"limit": "1g"}}, "linux.resources.memory.limit"),
        ({"memory": {"limit": 1.5}}, "linux.resources.memory.limit"),
        ({"memory": {"swap": True}}, "linux.resources.memory.swap"),
        ({"cpu": {"shares": "1024"}}, "linux.resources.cpu.shares"),
        ({"cpu": {"cpus": 1}}, "linux.resources.cpu.cpus"),
        ({"pids": {"limit": "10"}}, "linux.resources.pids.limit"),
        ({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": "1m"}]}},
         "linux.resources.blockIO.throttleReadBpsDevice[0].rate"),
        ({"devices": [{"access": "rwm"}]}, "linux.resources.devices[0].allow"),
        ({"devices": [{"allow": False, "type": "x"}]}, "linux.resources.devices[0].type"),
        ({"hugepageLimits": [{"pageSize": "2MB", "limit": "big"}]}, "linux.resources.hugepageLimits[0].limit"),
        ({"unified": {"memory.high": 5}}, "linux.resources.unified"),
        ({"memory": []}, "linux.resources.memory"),
    ],
)
def test_wrong_types_name_the_field(res, field):
    with pytest.raises(InvalidArgument, match=field.replace("[", r"\[").replace("]", r"\]")):
        validate_resources(res)


def test_good_resources_pass_unchanged():
    res = {
        "memory": {"limit": 67108864, "reservation": 0, "swap": -1, "disableOOMKiller": False},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 20},
        "blockIO": {"weight": 500, "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3}],
        "unified": {"memory.high": "max"},
    }
    assert validate_resources(res) is res


def test_runtime_refuses_string_memory_limit(rootfs_copy, tmp_path, unique_name):
    """A "1g" limit must not run the container with some other limit (runc refuses it too)."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    os.rename(rootfs_copy, bundle / "rootfs")
    subprocess.run([RUNTIME, "spec"], cwd=bundle, check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["true"]
    cfg["linux"].setdefault("resources", {})["memory"] = {"limit": "1g"}
    (bundle / "config.json").write_text(json.dumps(cfg))
    root = tmp_path / "state"
    r = subprocess.run([RUNTIME, "--root", str(root), "run", "--bundle", str(bundle), unique_name],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "linux.resources.memory.limit" in r.stderr
    assert not (root / unique_name).exists()
