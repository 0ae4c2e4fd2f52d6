"""Bad bundles fail with a message naming the field, a non-zero exit, and nothing left behind:
no state directory, no cgroup, no mount, no process."""

import json
import os

import pytest

from .rt_helpers import IS_BERTH, host_mounts


def assert_clean(rt, cid, bundle):
    assert rt.ids() == []
    assert not os.path.exists(os.path.join(rt.root, cid))
    for ctrl in ("pids/", "memory/", "cpu/", "freezer/", "devices/", ""):  # v1 hierarchies, or the v2 tree
        assert not os.path.exists(f"/sys/fs/cgroup/{ctrl}berth/{cid}"), ctrl
    assert bundle.rootfs not in host_mounts()


def attempt(rt, bundle, cid, raw: str | None = None):
    if raw is None:
        bundle.write()
    else:
        (bundle.path / "config.json").write_text(raw)
    return rt("run", "--bundle", str(bundle.path), cid, check=False)


def test_malformed_json(rt, bundle, cid):
    p = attempt(rt, bundle, cid, raw='{"ociVersion": "1.0.2", "process": {')
    assert p.returncode != 0 and "config.json" in p.stderr
    assert_clean(rt, cid, bundle)


@pytest.mark.parametrize("mutate, field", [
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces[6].type"),
    (lambda c: c["process"].update(args=[]), "process.args"),
    (lambda c: c["process"].update(cwd="relative"), "process.cwd"),
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}),
     "process.rlimits[1].type"),
    (lambda c: c["process"]["capabilities"]["bounding"].append("CAP_BOGUS"), "process.capabilities.bounding[3]"),
    (lambda c: c["mounts"].append({"type": "tmpfs"}), "mounts[7].destination"),
    (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     "linux.uidMappings"),
    (lambda c: c.pop("root"), "root"),
])
def test_invalid_field_is_named(rt, bundle, cid, mutate, field):
    mutate(bundle.config)
    p = attempt(rt, bundle, cid)
    assert p.returncode != 0
    if IS_BERTH:
        assert field in p.stderr, p.stderr
    assert_clean(rt, cid, bundle)


def test_missing_rootfs(rt, bundle, cid):
    bundle.config["root"]["path"] = "/nonexistent/rootfs"
    p = attempt(rt, bundle, cid)
    assert p.returncode != 0 and "/nonexistent/rootfs" in p.stderr
    assert_clean(rt, cid, bundle)


def test_bad_mount_source(rt, bundle, cid):
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": "/nonexistent/src",
                                    "options": ["rbind"]})
    p = attempt(rt, bundle, cid)
    assert p.returncode != 0 and "/nonexistent/src" in p.stderr
    if IS_BERTH:
        assert "mounts[7]" in p.stderr
    assert_clean(rt, cid, bundle)


def test_bad_mount_type(rt, bundle, cid):
    bundle.config["mounts"].append({"destination": "/data", "type": "nosuchfs", "source": "x"})
    p = attempt(rt, bundle, cid)
    assert p.returncode != 0
    if IS_BERTH:
        assert "mounts[7]" in p.stderr and "/data" in p.stderr
    assert_clean(rt, cid, bundle)


def test_join_missing_namespace_path(rt, bundle, cid):
    bundle.config["linux"]["namespaces"][1] = {"type": "network", "path": "/proc/999999999/ns/net"}
    p = attempt(rt, bundle, cid)
    assert p.returncode != 0 and "/proc/999999999/ns/net" in p.stderr
    assert_clean(rt, cid, bundle)


@pytest.mark.skipif(not IS_BERTH, reason="runc supports systemd cgroup paths")
def test_systemd_cgroups_path_fails_cleanly(rt, bundle, cid):
    bundle.config["linux"]["cgroupsPath"] = "system.slice:berth:" + cid
    p = attempt(rt, bundle, cid)
    assert p.returncode != 0 and ("system.slice" in p.stderr or "systemd" in p.stderr)
    assert_clean(rt, cid, bundle)


def test_missing_config(rt, bundle, cid):
    p = rt("run", "--bundle", str(bundle.path), cid, check=False)
    assert p.returncode != 0 and "config.json" in p.stderr
    assert_clean(rt, cid, bundle)


def test_duplicate_id(rt, bundle, cid):
    bundle.args("sleep", "60")
    rt("create", "--bundle", bundle.write(), cid)
    p = rt("create", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode != 0 and "exist" in p.stderr
    assert rt.state(cid)["status"] == "created"


@pytest.mark.skipif(not IS_BERTH, reason="berth's json log")
def test_json_log_for_callers(rt, bundle, cid, tmp_path):
    log = tmp_path / "log.json"
    (bundle.path / "config.json").write_text("{nope")
    p = rt("--log", str(log), "--log-format", "json", "create", "--bundle", str(bundle.path), cid, check=False)
    assert p.returncode != 0
    entries = [json.loads(ln) for ln in log.read_text().splitlines()]
    err = [e for e in entries if e["level"] == "error"]
    assert err and "config.json" in err[-1]["msg"] and err[-1]["time"].endswith("Z")


@pytest.mark.skipif(not IS_BERTH, reason="runc supports the systemd driver")
def test_systemd_cgroup_is_a_clear_error(rt, bundle, cid):
    p = rt("--systemd-cgroup", "run", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode != 0 and "systemd" in p.stderr
    assert_clean(rt, cid, bundle)


def test_sigterm_during_create_cleans_up(rt, bundle, cid, tmp_path):
    """The runtime is told to stop while a (slow) createRuntime hook runs: nothing is left behind."""
    import signal
    import subprocess
    import time

    marker = tmp_path / "hook-started"
    bundle.config["hooks"] = {"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {marker}.pid; touch {marker}; exec sleep 30"]}]}
    proc = subprocess.Popen([rt.exe, "--root", rt.root, "create", "--bundle", bundle.write(), cid],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    assert_clean(rt, cid, bundle)
    from .rt_helpers import gone

    assert gone(int((tmp_path / "hook-started.pid").read_text()), timeout=5)  # the hook was stopped too
