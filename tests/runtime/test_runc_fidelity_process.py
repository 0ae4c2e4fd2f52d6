"""runc fidelity of processes and hooks: hook failures after start, hook environments."""

import os

import pytest

from .rt_helpers import IS_BERTH, in_container, run


def _hook(script: str, env: list[str] | None = None) -> dict:
    h = {"path": "/bin/sh", "args": ["sh", "-c", script]}
    if env is not None:
        h["env"] = env
    return h


@pytest.mark.skipif(not IS_BERTH, reason="runc 1.1 stops at the first failing poststart/poststop hook; "
                                          "the OCI spec (followed here) says warn and go on")
def test_failing_post_hooks_are_logged_and_the_rest_run(rt, bundle, cid, tmp_path):
    marks = tmp_path / "marks"
    log = tmp_path / "runtime.log"
    bundle.config["hooks"] = {
        kind: [_hook(f"echo {kind}-boom1 >&2; exit 3", ["PATH=/bin"]),
               _hook(f"echo {kind}-boom2 >&2; exit 4", ["PATH=/bin"]),
               _hook(f"echo {kind} >> {marks}", ["PATH=/bin"])]
        for kind in ("poststart", "poststop")}
    bundle.sh("true")
    p = rt("--log", str(log), "run", "--bundle", bundle.write(), cid)
    assert p.returncode == 0
    assert marks.read_text().split() == ["poststart", "poststop"]
    logged = log.read_text()
    for word in ("poststart-boom1", "poststart-boom2", "poststop-boom1", "poststop-boom2"):
        assert word in logged


def test_hook_without_env_inherits_the_runtime_environment(rt, bundle, cid, tmp_path):
    out = tmp_path / "hook-env"
    bundle.config["hooks"] = {"poststart": [_hook(f"env > {out}")]}
    env = dict(os.environ, BERTH_HOOK_PROBE="hello-hook")
    run(rt, bundle.sh("true"), cid, env=env)
    assert "BERTH_HOOK_PROBE=hello-hook" in out.read_text().splitlines()


def test_log_that_cannot_be_opened_is_an_error_at_once(rt, tmp_path):
    bad = str(tmp_path / "no-such-dir" / "runtime.log")
    p = rt("--log", bad, "list", check=False)
    assert p.returncode != 0 and "no-such-dir" in p.stderr
    good = tmp_path / "runtime.log"
    rt("--log", str(good), "list")
    assert good.exists()


def test_exec_gets_its_own_session_and_process_group(rt, bundle, cid):
    bundle.args("sleep", "60")
    rt("run", "--detach", "--bundle", bundle.write(), cid)
    line = rt("exec", cid, "cat", "/proc/self/stat").stdout
    pid = line.split()[0]
    # the fields after "(comm)": state, ppid, pgrp, session
    fields = line.rsplit(")", 1)[1].split()
    assert fields[2] == pid and fields[3] == pid


@pytest.mark.skipif(not IS_BERTH, reason="--cgroup-manager is crun's flag (podman passes it to crun); runc has none")
def test_cgroup_manager_flag(rt, bundle, cid):
    rt("--cgroup-manager", "cgroupfs", "list")
    bundle.sh("true")
    rt("--cgroup-manager", "cgroupfs", "run", "--bundle", bundle.write(), cid)
    p = rt("--cgroup-manager", "systemd", "run", "--bundle", bundle.write(), cid, check=False)
    assert p.returncode != 0 and "systemd" in p.stderr
    p = rt("--cgroup-manager", "bogus", "list", check=False)
    assert p.returncode != 0 and "bogus" in p.stderr


def test_missing_cwd_is_created_owned_by_root(rt, bundle, cid):
    bundle.process["cwd"] = "/made/for/me"
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    out = in_container(bundle, rt, cid, "pwd; id -u").stdout.split()
    assert out == ["/made/for/me", "1000"]
    for d in ("made", "made/for", "made/for/me"):
        st = os.stat(os.path.join(bundle.rootfs, d))
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o755)


def test_stdio_pipes_belong_to_the_container_user(rt, bundle, cid):
    import subprocess

    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.sh("echo out > /proc/self/fd/1; echo err > /dev/stderr; cat /proc/self/fd/0")
    p = subprocess.run([rt.exe, "--root", rt.root, "run", "--bundle", bundle.write(), cid], input=b"in\n",
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [b"out", b"in"] and b"err" in p.stderr


@pytest.mark.parametrize("key", ["kernel.panic", "vm.swappiness"])
def test_sysctl_outside_a_namespace_is_rejected(rt, bundle, cid, key):
    bundle.linux["sysctl"] = {key: "1"}
    p = in_container(bundle, rt, cid, "true", check=False)
    assert p.returncode != 0 and key in p.stderr
    assert rt.ids() == []


def test_sysctl_net_in_the_host_netns_is_rejected(rt, bundle, cid):
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "network"]
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    p = in_container(bundle, rt, cid, "true", check=False)
    assert p.returncode != 0 and "net.ipv4.ip_forward" in p.stderr


def test_namespaced_sysctls_are_set(rt, bundle, cid):
    if not any(n["type"] == "network" for n in bundle.linux["namespaces"]):
        bundle.linux["namespaces"].append({"type": "network"})
    bundle.linux["sysctl"] = {"kernel.shm_rmid_forced": "1", "net.ipv4.ip_forward": "1"}
    out = in_container(bundle, rt, cid, "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_forward")
    assert out.stdout.split() == ["1", "1"]


@pytest.mark.skipif(not IS_BERTH, reason="--config FILE is crun's flag of create/run; runc has none")
def test_run_and_create_with_config_file(rt, bundle, cid, tmp_path):
    bundle.sh("echo from-other-config")
    bundle.write()
    other = tmp_path / "other.json"
    (bundle.path / "config.json").rename(other)
    p = rt("run", "--bundle", str(bundle.path), "--config", str(other), cid)
    assert p.stdout.strip() == "from-other-config"
    rt("create", "--bundle", str(bundle.path), "--config", str(other), cid + "c")
    assert rt.state(cid + "c")["status"] == "created"
    p = rt("run", "--bundle", str(bundle.path), cid + "d", check=False)
    assert p.returncode != 0 and "config.json" in p.stderr
