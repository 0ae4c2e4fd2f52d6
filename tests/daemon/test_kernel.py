"""What berthd sets up in the kernel: cgroup limits (and live updates), OOM kills, Docker's security
defaults, --init, namespaces and network modes. Checked through /proc and /sys, not just inspect."""

from __future__ import annotations

import json
import os
import time

import pytest

from berth.cgroups.support import blkio_support

pytestmark = pytest.mark.interop

DOCKER_DEFAULT_CAPS = 0x00000000A80425FB  # CHOWN..AUDIT_WRITE, Docker's default set


def cg(ctl: str, cid: str, name: str) -> str:
    with open(f"/sys/fs/cgroup/{ctl}/berth/{cid}/{name}") as f:
        return f.read().strip()


def v1_only():
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("cgroup v1 memory controller not mounted")


def test_resources_in_cgroups_and_live_update(berthd, cname):
    v1_only()
    berthd.docker("run", "-d", "--name", cname, "--memory", "64m", "--memory-reservation", "32m", "--cpus", "0.5",
                  "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "20", "busybox", "sleep", "300")
    try:
        cid = berthd.inspect(cname)["Id"]
        assert cg("memory", cid, "memory.limit_in_bytes") == str(64 << 20)
        assert cg("memory", cid, "memory.soft_limit_in_bytes") == str(32 << 20)
        assert cg("cpu", cid, "cpu.cfs_quota_us") == "50000"
        assert cg("cpu", cid, "cpu.cfs_period_us") == "100000"
        assert cg("cpu", cid, "cpu.shares") == "512"
        assert cg("cpuset", cid, "cpuset.cpus") == "0"
        assert cg("pids", cid, "pids.max") == "20"
        berthd.docker("update", "--memory", "96m", "--memory-swap", "192m", "--pids-limit", "30", "--cpus", "1", cname)
        assert cg("memory", cid, "memory.limit_in_bytes") == str(96 << 20)
        assert cg("pids", cid, "pids.max") == "30"
        assert cg("cpu", cid, "cpu.cfs_quota_us") == "100000"
        hc = berthd.inspect(cname)["HostConfig"]
        assert (hc["Memory"], hc["PidsLimit"], hc["NanoCpus"]) == (96 << 20, 30, 1_000_000_000)
        stats = json.loads(berthd.out("stats", "--no-stream", "--format", "{{json .}}", cname))
        assert stats["PIDs"] == "1"
        top = berthd.out("top", cname)
        assert "sleep 300" in top
    finally:
        berthd.docker("rm", "-f", cname, check=False)


def test_oom_kill_reported_and_neighbour_survives(berthd, cname):
    v1_only()
    neighbour = cname + "-n"
    since = time.time() - 1
    berthd.docker("run", "-d", "--name", neighbour, "--memory", "64m", "busybox", "sleep", "300")
    try:
        r = berthd.docker("run", "--name", cname, "--memory", "64m", "--memory-swap", "64m", "busybox",
                          "sh", "-c", "head -c 200m /dev/zero | tail", check=False)
        assert r.returncode == 137
        st = berthd.inspect(cname)["State"]
        assert st["OOMKilled"] is True and st["ExitCode"] == 137
        oom_id = berthd.inspect(cname)["Id"]
        n = berthd.inspect(neighbour)
        assert n["State"]["Running"] is True and not n["State"]["OOMKilled"]
        assert os.path.exists(f"/proc/{n['State']['Pid']}")
        # the neighbour is responsive, and its own 64 MB limit still holds
        assert berthd.out("exec", neighbour, "echo", "alive") == "alive\n"
        assert cg("memory", n["Id"], "memory.limit_in_bytes") == str(64 << 20)
        # the killed container's cgroup is gone already
        assert not os.path.exists(f"/sys/fs/cgroup/memory/berth/{oom_id}")
        cl = berthd.client()
        try:
            evs = list(cl.events(since=int(since), until=int(time.time()) + 1, decode=True,
                                 filters={"event": "oom"}))
        finally:
            cl.close()
        assert any(e["Actor"]["Attributes"].get("name") == cname for e in evs)
        assert not any(e["Actor"]["Attributes"].get("name") == neighbour for e in evs)
    finally:
        berthd.docker("rm", "-f", cname, neighbour, check=False)
    for cid in (oom_id, n["Id"]):
        for ctl in os.listdir("/sys/fs/cgroup"):
            assert not os.path.exists(f"/sys/fs/cgroup/{ctl}/berth/{cid}")
        assert not os.path.exists(os.path.join(berthd.root, "containers", cid))
        with open("/proc/self/mountinfo") as f:
            assert cid not in f.read()


def _status(berthd, *args: str) -> dict[str, str]:
    out = berthd.out("run", "--rm", *args, "busybox", "cat", "/proc/self/status")
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def test_security_defaults(berthd):
    st = _status(berthd)
    assert int(st["CapEff"], 16) == DOCKER_DEFAULT_CAPS
    assert int(st["CapBnd"], 16) == DOCKER_DEFAULT_CAPS
    assert st["Seccomp"].strip() == "2"
    assert st["NoNewPrivs"].strip() == "0"
    st = _status(berthd, "--security-opt", "no-new-privileges")
    assert st["NoNewPrivs"].strip() == "1"
    st = _status(berthd, "--security-opt", "seccomp=unconfined")
    assert st["Seccomp"].strip() == "0"
    st = _status(berthd, "--cap-drop", "ALL", "--cap-add", "NET_ADMIN")
    assert int(st["CapEff"], 16) == 1 << 12
    st = _status(berthd, "--privileged")
    assert int(st["CapEff"], 16) > DOCKER_DEFAULT_CAPS and st["Seccomp"].strip() == "0"
    # masked and read-only paths
    masked = next(p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
                  if os.path.exists(p) and os.path.getsize(p) >= 0 and open(p, "rb").read(1))  # noqa: SIM115
    r = berthd.docker("run", "--rm", "busybox", "sh", "-c", f"wc -c < {masked}; echo 1 > /proc/sys/kernel/hostname",
                      check=False)
    assert r.stdout.split()[0] == b"0" and r.returncode != 0
    assert b"Read-only file system" in r.stderr
    r = berthd.docker("run", "--rm", "--read-only", "busybox", "touch", "/x", check=False)
    assert r.returncode != 0 and b"Read-only file system" in r.stderr
    assert berthd.out("run", "--rm", "--user", "65534:65534", "busybox", "id") == \
        "uid=65534(nobody) gid=65534(nogroup)\n"


def test_init_ulimit_hostname_env_entrypoint_workdir(berthd):
    if not os.path.exists("/usr/bin/tini-static"):
        pytest.skip("tini is not installed (Debian package tini)")
    out = berthd.out("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert out.startswith("/sbin/docker-init -- sh -c")
    out = berthd.out("run", "--rm", "--ulimit", "nofile=512:1024", "--hostname", "boxy", "-e", "FOO=bar",
                     "-w", "/etc", "--entrypoint", "/bin/sh", "busybox", "-c",
                     "ulimit -n; ulimit -H -n; hostname; echo $FOO; pwd")
    assert out.split() == ["512", "1024", "boxy", "bar", "/etc"]


def test_network_modes(berthd, cname):
    out = berthd.out("run", "--rm", "busybox", "cat", "/proc/net/dev")
    ifaces = {line.split(":")[0].strip() for line in out.splitlines()[2:]}
    assert ifaces == {"lo"}
    with open("/proc/net/dev") as f:
        host_ifaces = {line.split(":")[0].strip() for line in f.readlines()[2:]}
    out = berthd.out("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev")
    assert {line.split(":")[0].strip() for line in out.splitlines()[2:]} == host_ifaces
    berthd.docker("run", "-d", "--name", cname, "busybox", "sleep", "300")
    try:
        pid = berthd.inspect(cname)["State"]["Pid"]
        own = os.readlink(f"/proc/{pid}/ns/net")
        out = berthd.out("run", "--rm", "--network", f"container:{cname}", "busybox", "readlink", "/proc/self/ns/net")
        assert out.strip() == own
    finally:
        berthd.docker("rm", "-f", cname, check=False)
    r = berthd.docker("run", "--rm", "--network", "bridge", "busybox", "true", check=False)
    assert r.returncode == 125 and b"not implemented yet" in r.stderr


def _root_disk() -> str | None:
    for dev in sorted(os.listdir("/sys/block")):
        if dev.startswith(("vd", "sd", "nvme", "xvd")) and os.path.exists(f"/dev/{dev}"):
            return f"/dev/{dev}"
    return None


def test_blkio_and_devices(berthd, cname):
    """What the host can honour is set; the rest is discarded with dockerd's warning, and the container
    still starts (the root disk here has no CFQ/BFQ scheduler, so no blkio weight files)."""
    v1_only()
    disk = _root_disk()
    if disk is None:
        pytest.skip("no block device to throttle")
    support = blkio_support()
    r = berthd.docker("run", "-d", "--name", cname, "--blkio-weight", "300", "--blkio-weight-device", f"{disk}:200",
                      "--device-read-bps", f"{disk}:1mb", "--device-write-bps", f"{disk}:2mb",
                      "--device-read-iops", f"{disk}:100", "--device-write-iops", f"{disk}:200",
                      "--device", "/dev/zero:/dev/myzero", "busybox", "sleep", "300")
    try:
        warned = r.stderr.decode()
        cid = berthd.inspect(cname)["Id"]
        hc = berthd.inspect(cname)["HostConfig"]
        st = os.stat(disk)
        majmin = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        for what, file, value in (("read_bps", "blkio.throttle.read_bps_device", "1048576"),
                                  ("write_bps", "blkio.throttle.write_bps_device", "2097152"),
                                  ("read_iops", "blkio.throttle.read_iops_device", "100"),
                                  ("write_iops", "blkio.throttle.write_iops_device", "200")):
            if support[what]:
                assert cg("blkio", cid, file) == f"{majmin} {value}"
            else:
                assert "limit discarded" in warned
        weight_file = next((n for n in ("blkio.bfq.weight", "blkio.weight")
                            if os.path.exists(f"/sys/fs/cgroup/blkio/berth/{cid}/{n}")), None)
        if support["weight"]:
            assert weight_file and cg("blkio", cid, weight_file).split()[-1] == "300"
            assert hc["BlkioWeight"] == 300
        else:
            assert "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. " \
                   "Weight discarded." in warned
            assert weight_file is None and hc["BlkioWeight"] == 0
        if support["weight_device"]:
            assert hc["BlkioWeightDevice"] == [{"Path": disk, "Weight": 200}]
        else:
            assert "Weight-device discarded." in warned
            assert not hc["BlkioWeightDevice"]
        assert "c 1:5 rwm" in cg("devices", cid, "devices.list").splitlines()
        assert berthd.out("exec", cname, "sh", "-c", "head -c 3 /dev/myzero | wc -c").strip() == "3"
        # a live update is discarded the same way
        u = berthd.docker("update", "--blkio-weight", "400", cname)
        if support["weight"]:
            assert berthd.inspect(cname)["HostConfig"]["BlkioWeight"] == 400
        else:
            assert "Weight discarded." in u.stdout.decode()  # docker update prints them with the ids
            assert berthd.inspect(cname)["HostConfig"]["BlkioWeight"] == 0
    finally:
        berthd.docker("rm", "-f", cname, check=False)
