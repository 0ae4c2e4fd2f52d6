"""The cgroup managers against the real kernel. Runs unchanged on hybrid (the host), pure v2 and pure v1
(inside vm-run; see test_vm.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import berth.cgroups as cgroups
from berth import errors
from berth.cgroups import convert, devices_bpf

KIND = cgroups.detect()
V2 = KIND == "v2"


def read(m: cgroups.Manager, ctl: str, name: str) -> str:
    d = m.dir_for(ctl)
    assert d is not None, f"no directory for {ctl}"
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def wait_for(cond, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def utime(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[11])


def test_detect_matches_mounts():
    with open("/proc/self/mountinfo") as f:
        text = f.read()
    has_v2 = " - cgroup2 " in text
    has_v1_memory = any(" - cgroup " in ln and "memory" in ln.split(" - ")[1] for ln in text.splitlines())
    expected = "hybrid" if has_v1_memory and has_v2 else "v1" if has_v1_memory else "v2"
    assert expected == KIND


@pytest.mark.skipif(not os.environ.get("BERTH_EXPECT_CGROUP"), reason="only inside test_vm.py's VMs")
def test_vm_layout_is_the_requested_one():
    assert os.environ["BERTH_EXPECT_CGROUP"] == KIND


def test_apply_pids_destroy(make_manager, waiting):
    m = make_manager()
    assert not m.exists()
    w = waiting("sleep 100")
    m.apply(w.pid)
    assert m.exists()
    assert m.pids() == [w.pid]
    for d in m.dirs().values():
        assert os.path.isdir(d)
    with open(f"/proc/{w.pid}/cgroup") as f:
        assert m.path in f.read()
    m.kill_all(signal.SIGKILL)
    w.proc.wait()
    assert m.pids() == []
    m.destroy()
    assert not m.exists()
    assert not any(os.path.exists(d) for d in m.dirs().values())
    m.destroy()  # idempotent
    with pytest.raises(errors.NotFound):
        m.stats()
    with pytest.raises(errors.NotFound, match="does not exist"):
        m.freeze()
    m.kill_all(signal.SIGKILL)  # nothing to kill: fine


def test_self_join_then_apply_puts_the_process_everywhere(make_manager):
    """The runtime's path: create, open the v1 `tasks` files, fork; the child writes "0" into them
    itself; apply(self_joined=True) moves it by pid only where it could not (cgroup v2)."""
    m = make_manager()
    m.create()
    fds = m.open_self_join()
    assert len(fds) == (0 if V2 else len([h for h in m.dirs() if not h.endswith("unified")]))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in fds:
                os.write(fd, b"0")
            os.write(w, b"x")
            time.sleep(30)
        finally:
            os._exit(0)
    os.close(w)  # a child that fails before it writes gives EOF, not a hang
    try:
        for fd in fds:
            os.close(fd)
        assert os.read(r, 1) == b"x", "the child could not write itself into the v1 tasks files"
        m.apply(pid, self_joined=bool(fds))
        assert m.pids() == [pid]
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
        assert lines and all(ln.split(":", 2)[2] == m.path for ln in lines if ln.split(":", 2)[2] != "/"), lines
        assert len([ln for ln in lines if ln.split(":", 2)[2] == m.path]) == len(m.dirs())
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
    m.destroy()
    assert not m.exists()


def test_hierarchies_are_where_the_dirs_are(make_manager):
    m = make_manager()
    hs = m.hierarchies()
    assert sorted(h.mountpoint for h in hs) == sorted(m.dirs())
    assert {h.version for h in hs} == ({2} if V2 else {1, 2} if KIND == "hybrid" else {1})


def test_apply_missing_pid_leaves_nothing(make_manager):
    m = make_manager()
    with open("/proc/sys/kernel/pid_max") as f:
        gone = int(f.read()) + 1          # can never exist
    with pytest.raises(errors.NotFound, match=str(gone)):
        m.apply(gone)
    assert not m.exists()


def test_set_before_apply(make_manager, waiting):
    m = make_manager()
    m.set({"pids": {"limit": 5}})     # creates the cgroup so the limit is there before any process
    assert m.exists() and read(m, "pids", "pids.max") == "5"
    w = waiting("sleep 100")
    m.apply(w.pid)
    assert m.pids() == [w.pid]


def test_destroy_refuses_while_processes_remain(make_manager, waiting):
    m = make_manager()
    w = waiting("sleep 100")
    m.apply(w.pid)
    with pytest.raises(errors.Conflict, match="still holds processes"):
        m.destroy()
    assert m.pids() == [w.pid]


def test_state_roundtrip(make_manager, waiting):
    m = make_manager()
    w = waiting("sleep 100")
    m.apply(w.pid)
    again = cgroups.from_state(json.loads(json.dumps(m.state())))
    assert again.dirs() == m.dirs() and again.path == m.path
    assert again.pids() == [w.pid]


def test_relative_path_is_below_own_cgroup(make_manager, waiting, unique_name):
    parent = make_manager()
    w = waiting("sleep 100")
    parent.apply(w.pid)
    # resolve as that process would: /proc/<pid>/cgroup instead of /proc/self/cgroup
    from berth.cgroups import mounts, paths

    own = mounts.own_cgroups(w.pid)
    for key in ("", "memory", "pids"):
        if key in own:
            assert paths.resolve("child", "x", own[key]) == parent.path + "/child"


def test_relative_path_end_to_end(make_manager, waiting):
    parent = make_manager()
    script = ("import json, os, berth.cgroups as c; m = c.new_manager('child', 'x'); m.apply(os.getpid()); "
              "print(json.dumps(m.state()))")
    w = waiting(f"exec {sys.executable} -c \"{script}\"")
    parent.apply(w.pid)
    w.go()
    rc, out, err = w.finish()
    assert rc == 0, err
    child = cgroups.from_state(json.loads(out))
    assert child.path == parent.path + "/child"
    assert sorted(child.dirs().values()) == sorted(d + "/child" for d in parent.dirs().values())
    assert child.exists() and child.pids() == []
    # the parent's destroy (fixture) removes the nested cgroup too


def test_bad_value_names_file_and_leaves_state(make_manager, waiting):
    m = make_manager()
    w = waiting("sleep 100")
    m.apply(w.pid)
    with pytest.raises(errors.InvalidArgument, match="cpuset.cpus"):
        m.set({"cpu": {"cpus": "9999"}})
    with pytest.raises(errors.InvalidArgument, match="swap"):
        m.set({"memory": {"limit": 64 << 20, "swap": 32 << 20}})


def test_cpu_files(make_manager, waiting):
    m = make_manager()
    w = waiting("sleep 100")
    m.apply(w.pid)
    m.set({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}})
    if V2:
        assert read(m, "cpu", "cpu.max") == "50000 100000"
        assert read(m, "cpu", "cpu.weight") == str(convert.shares_to_weight(512))
    else:
        assert read(m, "cpu", "cpu.cfs_quota_us") == "50000"
        assert read(m, "cpu", "cpu.cfs_period_us") == "100000"
        assert read(m, "cpu", "cpu.shares") == "512"
    assert read(m, "cpuset", "cpuset.cpus") == "0"
    m.set({"cpu": {"quota": -1}})
    if V2:
        assert read(m, "cpu", "cpu.max") == "max 100000"
    else:
        assert read(m, "cpu", "cpu.cfs_quota_us") == "-1"


def _swap_supported(m: cgroups.Manager) -> bool:
    name = "memory.swap.max" if V2 else "memory.memsw.limit_in_bytes"
    return os.path.exists(os.path.join(m.dir_for("memory"), name))


def test_memory_files(make_manager, waiting):
    m = make_manager()
    w = waiting("sleep 100")
    m.apply(w.pid)
    m.set({"memory": {"limit": 64 << 20, "reservation": 32 << 20, "kernel": 1 << 20}})
    if V2:
        assert read(m, "memory", "memory.max") == str(64 << 20)
        assert read(m, "memory", "memory.low") == str(32 << 20)
    else:
        assert read(m, "memory", "memory.limit_in_bytes") == str(64 << 20)
        assert read(m, "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
    if not _swap_supported(m):
        with pytest.raises(errors.Unsupported, match="swap accounting"):
            m.set({"memory": {"limit": 64 << 20, "swap": 128 << 20}})
        m.set({"memory": {"limit": 64 << 20, "swap": -1}})   # unlimited swap needs no accounting
        return
    m.set({"memory": {"limit": 64 << 20, "swap": 128 << 20}})
    if V2:
        assert read(m, "memory", "memory.swap.max") == str(64 << 20)
    else:
        assert read(m, "memory", "memory.memsw.limit_in_bytes") == str(128 << 20)
    # growing the limit above the old memory+swap limit needs the other order: handled
    m.set({"memory": {"limit": 256 << 20, "swap": 512 << 20}})
    if V2:
        assert read(m, "memory", "memory.max") == str(256 << 20)
        assert read(m, "memory", "memory.swap.max") == str(256 << 20)
    else:
        assert read(m, "memory", "memory.limit_in_bytes") == str(256 << 20)
        assert read(m, "memory", "memory.memsw.limit_in_bytes") == str(512 << 20)


def test_oom_kill_is_counted(make_manager, waiting):
    m = make_manager()
    w = waiting("exec dd if=/dev/zero of=/dev/null bs=100M count=1")
    m.apply(w.pid)
    limit = 32 << 20
    m.set({"memory": {"limit": limit, "swap": limit if _swap_supported(m) else 0}})
    assert m.oom_kill_count() == 0
    w.go()
    rc, _, _ = w.finish()
    assert rc == -signal.SIGKILL
    assert m.oom_kill_count() >= 1
    assert m.stats()["oom_kill"] >= 1


def test_pids_limit_contains_fork_loop(make_manager, waiting):
    m = make_manager()
    limit = 12
    # forks sleepers forever; without the limit this would fill the host's process table
    w = waiting("while true; do sleep 1000 & done")
    m.apply(w.pid)
    m.set({"pids": {"limit": limit}})
    assert read(m, "pids", "pids.max") == str(limit)
    w.go()
    # busybox sh gives up at the first refused fork: the limit stopped it, its sleepers stay
    assert w.proc.wait(timeout=60) != 0     # (its sleepers hold the pipes: no communicate())
    assert len(m.pids()) == limit - 1
    assert m.stats()["pids"] == {"current": limit - 1, "limit": limit}
    events = os.path.join(m.dir_for("pids"), "pids.events")
    if os.path.exists(events):
        with open(events) as f:
            assert int(f.read().split()[1]) >= 1
    m.kill_all(signal.SIGKILL)
    assert w.proc.stderr is not None and b"can't fork" in w.proc.stderr.read()
    assert m.pids() == []
    m.destroy()
    assert not m.exists()


def test_kill_all_stops_a_fork_bomb(make_manager, waiting):
    m = make_manager()
    limit = 20
    # every shell forks copies of itself forever; the ones whose fork is refused die, others take over
    w = waiting("export B='while :; do /bin/busybox sh -c \"$B\" 2>/dev/null & done'; eval \"$B\" 2>/dev/null")
    m.apply(w.pid)
    m.set({"pids": {"limit": limit}})
    w.go()
    wait_for(lambda: m.stats()["pids"]["current"] >= limit - 2, "the bomb to fill its pids budget")
    assert m.stats()["pids"]["current"] <= limit
    m.kill_all(signal.SIGKILL)
    assert m.pids() == []
    m.destroy()
    assert not m.exists()


def test_freeze_stops_and_thaw_resumes(make_manager, waiting):
    m = make_manager()
    w = waiting("while :; do :; done")
    m.apply(w.pid)
    w.go()
    start = utime(w.pid)
    wait_for(lambda: utime(w.pid) > start, "the busy loop to use CPU")
    m.freeze()
    assert m.frozen()
    before = utime(w.pid)
    time.sleep(0.3)
    assert utime(w.pid) == before, "a frozen process kept running"
    m.thaw()
    assert not m.frozen()
    wait_for(lambda: utime(w.pid) > before, "the thawed loop to run again")


def test_kill_all_while_frozen_and_other_signals(make_manager, waiting):
    m = make_manager()
    w = waiting("trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done")
    m.apply(w.pid)
    w.go()
    assert w.proc.stdout is not None and w.proc.stdout.readline() == b"ready\n"
    m.kill_all(signal.SIGTERM)
    rc, out, _ = w.finish()
    assert rc == 3 and "got-term" in out


def test_stats_report_usage(make_manager, waiting):
    m = make_manager()
    w = waiting("dd if=/dev/zero of=/dev/null bs=8M count=64; x=$(head -c 4000000 /dev/zero | tr '\\0' a); "
                "echo ready; read y")
    m.apply(w.pid)
    m.set({"pids": {"limit": 50}, "memory": {"limit": 256 << 20}})
    w.go()
    assert w.proc.stdout is not None
    assert w.proc.stdout.readline() == b"ready\n"
    s = m.stats()
    assert s["cpu"]["usage"]["total"] > 0
    assert s["memory"]["usage"]["usage"] > 0
    assert s["memory"]["usage"]["limit"] == 256 << 20
    assert s["memory"]["raw"]
    assert s["pids"] == {"current": 1, "limit": 50}
    assert set(s["blkio"]) >= {"ioServiceBytesRecursive", "ioServicedRecursive"}
    if not V2:
        assert len(s["cpu"]["usage"]["percpu"]) == os.cpu_count()
    d = m.docker_stats()
    assert d["cpu_stats"]["cpu_usage"]["total_usage"] == s["cpu"]["usage"]["total"] or \
        d["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert d["memory_stats"]["limit"] == 256 << 20 and d["memory_stats"]["usage"] > 0
    assert d["pids_stats"] == {"current": 1, "limit": 50}
    assert d["cpu_stats"]["system_cpu_usage"] > 0 and d["cpu_stats"]["online_cpus"] >= 1
    assert "io_service_bytes_recursive" in d["blkio_stats"]


DENY_NULL = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]   # /dev/zero only


def _check_devices(run) -> None:
    rc, out, err = run("head -c 3 /dev/zero | wc -c; cat /dev/null && echo null-opened")
    assert out.split()[0] == "3"
    assert "null-opened" not in out and "not permitted" in err


def test_devices(make_manager, waiting):
    m = make_manager()
    w = waiting("head -c 3 /dev/zero | wc -c; cat /dev/null && echo null-opened")
    m.apply(w.pid)
    m.set({"devices": DENY_NULL})
    if not V2:
        assert read(m, "devices", "devices.list") == "c 1:5 rwm"
    w.go()
    _check_devices(lambda _: w.finish())


def test_devices_later_rule_narrows_access(make_manager, waiting, tmp_path):
    m = make_manager()
    w = waiting("cat /dev/null && echo read-ok; echo x > /dev/null && echo write-ok; "
                f"mknod {tmp_path}/nul c 1 3 2>/dev/null && echo mknod-ok; true")
    m.apply(w.pid)
    m.set({"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                       {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "wm"}]})
    if not V2:
        assert read(m, "devices", "devices.list") == "c 1:3 r"
    w.go()
    _, out, _ = w.finish()
    assert out.split() == ["read-ok"]


@pytest.mark.skipif(KIND != "hybrid", reason="v2 runs it through set(); this is the hybrid host's unified half")
def test_bpf_device_program_on_unified_half(make_manager, waiting):
    m = make_manager()
    w = waiting("head -c 3 /dev/zero | wc -c; cat /dev/null && echo null-opened")
    m.apply(w.pid)
    ud = m.dirs()[next(mp for mp in m.dirs() if os.path.basename(mp) == "unified")]
    devices_bpf.apply(ud, [{"allow": True, "access": "rwm"}])        # replaced just below
    devices_bpf.apply(ud, DENY_NULL)
    fd = os.open(ud, os.O_RDONLY)
    try:
        assert len(devices_bpf.attached(fd)) == 1
    finally:
        os.close(fd)
    w.go()
    _check_devices(lambda _: w.finish())


def test_unified(make_manager, waiting):
    m = make_manager()
    w = waiting("sleep 100")
    m.apply(w.pid)
    if KIND == "v1":
        with pytest.raises(errors.Unsupported, match="unified"):
            m.set({"unified": {"cgroup.max.descendants": "5"}})
        return
    m.set({"unified": {"cgroup.max.descendants": "5"}})
    ud = m.dirs()[next(mp for mp in m.dirs() if mp.endswith(("unified", "/sys/fs/cgroup")))]
    with open(os.path.join(ud, "cgroup.max.descendants")) as f:
        assert f.read().strip() == "5"
    with pytest.raises(errors.Unsupported, match="nosuch.file"):
        m.set({"unified": {"nosuch.file": "1"}})
    with pytest.raises(errors.InvalidArgument):
        m.set({"unified": {"../cgroup.procs": "1"}})
    if V2:
        m.set({"unified": {"pids.max": "7"}})
        assert read(m, "pids", "pids.max") == "7"


@pytest.mark.skipif("2MB" not in convert.hugepage_sizes(), reason="no 2MB huge pages on this kernel")
def test_hugepage_limits(make_manager, waiting):
    m = make_manager()
    w = waiting("sleep 100")
    m.apply(w.pid)
    m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
    d = m.dir_for("hugetlb")
    name = "hugetlb.2MB.limit_in_bytes" if os.path.exists(os.path.join(d, "hugetlb.2MB.limit_in_bytes")) \
        else "hugetlb.2MB.max"
    with open(os.path.join(d, name)) as f:
        assert f.read().strip() == str(4 << 20)
    assert "2MB" in m.stats()["hugetlb"]


def _block_device() -> tuple[int, int] | None:
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "ram", "zram", "nbd")):
            continue
        try:
            with open(f"/sys/block/{name}/dev") as f:
                maj, mnr = f.read().strip().split(":")
            return int(maj), int(mnr)
        except OSError:
            continue
    return None


@pytest.fixture
def block_device(tmp_path):
    dev = _block_device()
    if dev is not None:
        yield dev
        return
    if not os.environ.get("BERTH_EXPECT_CGROUP"):
        pytest.skip("no block device to throttle")
    # inside test_vm.py's throwaway VM (no disks): a loop device is a real block device to throttle
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * (1 << 20))
    subprocess.run(["modprobe", "loop"], capture_output=True, check=False)
    loop = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    if loop.returncode != 0:
        pytest.skip(f"no block device and no loop device: {loop.stderr.strip()}")
    name = loop.stdout.strip()
    try:
        st = os.stat(name)
        yield os.major(st.st_rdev), os.minor(st.st_rdev)
    finally:
        subprocess.run(["losetup", "-d", name], check=False)


def test_block_io(make_manager, waiting, block_device):
    dev = block_device
    m = make_manager()
    w = waiting("sleep 100")
    m.apply(w.pid)
    maj, mnr = dev
    m.set({"blockIO": {"throttleReadBpsDevice": [{"major": maj, "minor": mnr, "rate": 1048576}],
                       "throttleWriteIOPSDevice": [{"major": maj, "minor": mnr, "rate": 100}]}})
    if V2:
        line = read(m, "io", "io.max")
        assert f"{maj}:{mnr} rbps=1048576" in line and "wiops=100" in line
    else:
        assert read(m, "blkio", "blkio.throttle.read_bps_device") == f"{maj}:{mnr} 1048576"
        assert read(m, "blkio", "blkio.throttle.write_iops_device") == f"{maj}:{mnr} 100"
    try:
        m.set({"blockIO": {"weight": 500}})
    except errors.Unsupported as e:
        assert "weight" in str(e)          # no proportional I/O scheduler: said clearly
    else:
        d = m.dir_for("blkio" if not V2 else "io")
        files = {}
        for n in ("blkio.weight", "blkio.bfq.weight", "io.bfq.weight", "io.weight"):
            if os.path.exists(os.path.join(d, n)):
                with open(os.path.join(d, n)) as f:
                    files[n] = f.read()
        assert any(("500" in v) or (str(convert.blkio_weight_to_io_weight(500)) in v) for v in files.values())


def test_systemd_path_and_bad_paths():
    with pytest.raises(errors.Unsupported, match="systemd form"):
        cgroups.new_manager("system.slice:berth:abc", "abc")
    with pytest.raises(errors.InvalidArgument, match=r"\.\."):
        cgroups.new_manager("/berth/../etc", "abc")
