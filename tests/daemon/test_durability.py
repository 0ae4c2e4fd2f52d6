"""Containers outlive berthd (kill -9 and restart), crash leftovers are cleaned, concurrency, and the
memory an idle container adds to the monitor host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from berth.testing.waiting import wait_for

pytestmark = pytest.mark.interop




def _log_lines(path: str) -> list[str]:
    with open(path) as f:
        return [json.loads(line)["log"] for line in f]


def test_containers_survive_kill9_of_berthd(fresh_berthd, cname):
    d = fresh_berthd
    d.docker("run", "-d", "--name", cname, "busybox", "sh", "-c",
             "trap 'echo bye; exit 7' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done")
    short = cname + "-s"
    d.docker("run", "-d", "--name", short, "busybox", "sh", "-c", "sleep 1; exit 9")
    gone = cname + "-rm"
    d.docker("run", "-d", "--rm", "--name", gone, "busybox", "sh", "-c", "sleep 1")
    gone_id = d.inspect(gone)["Id"]
    info = d.inspect(cname)
    pid, log = info["State"]["Pid"], info["LogPath"]
    wait_for(lambda: len(_log_lines(log)) >= 3, "some output")
    d.stop(signal.SIGKILL)
    n = len(_log_lines(log))
    # While berthd is down the container runs and its monitor keeps logging.
    wait_for(lambda: len(_log_lines(log)) > n + 3, "logging without berthd")
    assert os.path.exists(f"/proc/{pid}")
    # ...and the short one exits meanwhile: its monitor records the code.
    time.sleep(1.2)
    # A crash between create and save leaves a half-made container directory: restore removes it.
    junk = os.path.join(d.root, "containers", "f" * 64)
    os.makedirs(junk)
    d.start()
    assert not os.path.exists(junk)
    st = d.inspect(cname)["State"]
    assert st["Running"] and st["Pid"] == pid
    assert d.inspect(short)["State"]["ExitCode"] == 9 and d.inspect(short)["State"]["Status"] == "exited"
    assert "tick" in d.out("logs", "--tail", "1", cname)
    # --rm container that exited while berthd was down: removed on restore, filesystem and all
    wait_for(lambda: d.docker("inspect", gone, check=False).returncode == 1, "auto-removal after restart")
    assert not os.path.exists(os.path.join(d.root, "containers", gone_id))
    with open("/proc/self/mountinfo") as f:
        assert gone_id not in f.read()
    d.docker("stop", "-t", "5", cname)
    st = d.inspect(cname)["State"]
    assert (st["Status"], st["ExitCode"]) == ("exited", 7)
    assert _log_lines(log)[-1] == "bye\n"
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"  # noqa: SIM115
    d.docker("rm", cname, short)


def test_monitor_gone_reported_as_dead_exit(fresh_berthd, cname):
    d = fresh_berthd
    d.docker("run", "-d", "--name", cname, "busybox", "sleep", "300")
    cid = d.inspect(cname)["Id"]
    with open(os.path.join(d.exec_root, "containers", cid, "monitor.pid")) as f:
        mpid = int(f.read())
    d.stop(signal.SIGKILL)
    os.kill(mpid, signal.SIGKILL)
    d.start()
    st = d.inspect(cname)["State"]
    assert not st["Running"] and st["ExitCode"] == 255 and "monitor" in st["Error"]
    d.docker("rm", "-f", cname)


@pytest.mark.slow
def test_50_concurrent_run_rm(berthd, cname):
    since = time.time() - 1

    def one(i: int) -> tuple[int, bytes]:
        r = subprocess.run([*berthd.docker_cmd.split(), "run", "--rm", "--label", f"batch={cname}", "busybox",
                            "echo", f"n{i}"], capture_output=True, timeout=240)
        return r.returncode, r.stdout + r.stderr

    with ThreadPoolExecutor(50) as ex:
        results = list(ex.map(one, range(50)))
    bad = [(i, r) for i, r in enumerate(results) if r != (0, f"n{i}\n".encode())]
    assert not bad, bad[:3]
    # Nothing is left: every container was destroyed, with its dirs, mounts and cgroups.
    cl = berthd.client()
    try:
        evs = list(cl.events(since=int(since), until=int(time.time()) + 1, decode=True,
                             filters={"label": f"batch={cname}", "event": "destroy"}))
    finally:
        cl.close()
    ids = {e["id"] for e in evs}
    assert len(ids) == 50
    wait_for(lambda: berthd.out("ps", "-aq", "--filter", f"label=batch={cname}") == "", "no containers")
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    for cid in ids:
        assert cid not in mounts
        assert not os.path.exists(os.path.join(berthd.root, "containers", cid))
        assert not os.path.exists(os.path.join(berthd.exec_root, "containers", cid))
        for ctl in os.listdir("/sys/fs/cgroup"):
            assert not os.path.exists(f"/sys/fs/cgroup/{ctl}/berth/{cid}")


def _mem_kb(pid: int) -> tuple[int, int, int]:
    """RSS, PSS and PSS of anonymous memory (not moved by other processes mapping the same files)."""
    rss = pss = anon = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Pss_Anon:"):
                anon = int(line.split()[1])
    return rss, pss, anon


def test_monitor_memory_per_idle_container(fresh_berthd, cname, record_property):
    """What an idle container adds to the one monitor host that serves them all: the host's
    RSS/PSS with N containers minus with 1, over N-1 (reported; the bound only catches a leak or
    a process per container). monitor_pss_kb is the PSS of anonymous memory: the PSS of the
    file-backed pages (python3.11, its libraries) moves with every other process mapping them on
    this machine, tens of kB either way between two samples; monitor_pss_total_kb includes it."""
    d = fresh_berthd
    n = 6
    names = [f"{cname}-{i}" for i in range(n)]

    def host_of(name: str) -> int:
        with open(os.path.join(d.exec_root, "containers", d.inspect(name)["Id"], "monitor.pid")) as f:
            return int(f.read())

    def settled(host: int) -> tuple[int, int, int]:
        """The host's memory once no fork of it (a runtime) shares its pages: PSS counts those."""
        def forks() -> bool:
            for p in os.listdir("/proc"):
                try:
                    with open(f"/proc/{p}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) != host:
                            continue
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        if b"berth.monitor" in f.read():
                            return True
                except (OSError, ValueError):
                    continue
            return False

        wait_for(lambda: not forks(), "the host's forks to end")
        time.sleep(1)
        return _mem_kb(host)

    try:
        d.docker("run", "-d", "--name", names[0], "busybox", "sleep", "300")
        host = host_of(names[0])
        rss1, pss1, anon1 = settled(host)
        for nm in names[1:]:
            d.docker("run", "-d", "--name", nm, "busybox", "sleep", "300")
        assert {host_of(nm) for nm in names} == {host}  # one process serves them all
        rss_n, pss_n, anon_n = settled(host)
        rss, pss, anon = (rss_n - rss1) / (n - 1), (pss_n - pss1) / (n - 1), (anon_n - anon1) / (n - 1)
        record_property("monitor_rss_kb", round(rss))
        record_property("monitor_pss_kb", round(anon))
        record_property("monitor_pss_total_kb", round(pss))
        record_property("monitor_host_rss_kb", rss_n)
        record_property("monitor_host_pss_kb", pss_n)
        print(f"monitor memory added per idle container: RSS {rss:.0f} kB, PSS {pss:.0f} kB "
              f"(anonymous {anon:.0f} kB) "
              f"(the host with {n}: RSS {rss_n} kB, PSS {pss_n} kB; with 1: RSS {rss1} kB, PSS {pss1} kB)")
        assert rss < 2048, (rss1, rss_n)
    finally:
        d.docker("rm", "-f", *names, check=False)


def test_socket_group_and_single_instance(fresh_berthd):
    import grp
    import stat

    d = fresh_berthd
    d.stop()
    d.extra_args = ("--group", "nogroup")
    d.start()
    st = os.stat(d.sock)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == grp.getgrnam("nogroup").gr_gid
    # A second berthd on the same exec-root refuses to start.
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
    r = subprocess.run([sys.executable, "-m", "berth.daemon.main", "-H", f"unix://{d.base}/other.sock",
                        "--root", d.root, "--exec-root", d.exec_root], capture_output=True, timeout=30,
                       env={**os.environ, "PYTHONPATH": src})
    assert r.returncode != 0 and b"another berthd" in r.stderr


@pytest.mark.slow
def test_50_concurrent_dockerpy_run_remove(berthd, cname):
    """docker-py's run(remove=True): create, start, wait, logs and an explicit DELETE, 50 at once."""
    import docker

    clients = [docker.DockerClient(base_url=berthd.host, timeout=240, max_pool_size=4) for _ in range(5)]

    def one(i: int) -> bytes | str:
        try:
            return clients[i % 5].containers.run("busybox", ["echo", f"p{i}"], remove=True,
                                                 labels={"batch": cname})
        except Exception as e:  # reported with its index below
            return f"{type(e).__name__}: {e}"

    try:
        with ThreadPoolExecutor(50) as ex:
            results = list(ex.map(one, range(50)))
        bad = [(i, r) for i, r in enumerate(results) if r != f"p{i}\n".encode()]
        assert not bad, bad[:3]
        assert clients[0].containers.list(all=True, filters={"label": f"batch={cname}"}) == []
    finally:
        for cl in clients:
            cl.close()
