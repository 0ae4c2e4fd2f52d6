"""Usage counters in runc's `events --stats` "data" shape, and Docker's stats JSON built from them."""

from __future__ import annotations

import os

from . import convert, fs

_NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _empty() -> dict:
    mem_entry = {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}
    return {
        "cpu": {"usage": {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": [],
                          "kernel": 0, "user": 0},
                "throttling": {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}},
        "memory": {"cache": 0, "usage": dict(mem_entry), "swap": dict(mem_entry),
                   "kernel": dict(mem_entry), "kernelTCP": dict(mem_entry), "raw": {}},
        "pids": {"current": 0, "limit": 0},
        "blkio": {k: [] for k in ("ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive",
                                  "ioServiceTimeRecursive", "ioWaitTimeRecursive", "ioMergedRecursive",
                                  "ioTimeRecursive", "sectorsRecursive")},
        "hugetlb": {},
        # berth additions: the OOM kill count, so one read serves `events` and `stats`
        "oom_kill": 0,
    }


def _blkio_entries(path: str) -> list[dict]:
    """v1 blkio "8:0 Read 4096" lines ("Total N" summary line skipped)."""
    out = []
    try:
        text = fs.read(path)
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        f = line.split()
        if len(f) == 3 and ":" in f[0]:
            maj, _, mnr = f[0].partition(":")
            out.append({"major": int(maj), "minor": int(mnr), "op": f[1], "value": int(f[2])})
        elif len(f) == 2 and ":" in f[0]:
            maj, _, mnr = f[0].partition(":")
            out.append({"major": int(maj), "minor": int(mnr), "op": "", "value": int(f[1])})
    return out


def _mem_entry(d: str, prefix: str) -> dict:
    return {
        "usage": fs.read_int(os.path.join(d, f"{prefix}.usage_in_bytes")),
        "max": fs.read_int(os.path.join(d, f"{prefix}.max_usage_in_bytes")),
        "failcnt": fs.read_int(os.path.join(d, f"{prefix}.failcnt")),
        "limit": fs.read_int(os.path.join(d, f"{prefix}.limit_in_bytes")),
    }


def v1_stats(ctl: dict[str, str]) -> dict:
    s = _empty()
    if "cpuacct" in ctl:
        d = ctl["cpuacct"]
        u = s["cpu"]["usage"]
        u["total"] = fs.read_int(os.path.join(d, "cpuacct.usage"))
        try:
            u["percpu"] = [int(x) for x in fs.read(os.path.join(d, "cpuacct.usage_percpu")).split()]
            u["percpu_kernel"] = [int(x) for x in
                                  fs.read(os.path.join(d, "cpuacct.usage_percpu_sys")).split()]
            u["percpu_user"] = [int(x) for x in
                                fs.read(os.path.join(d, "cpuacct.usage_percpu_user")).split()]
        except FileNotFoundError:
            pass
        st = fs.read_kv(os.path.join(d, "cpuacct.stat"))
        u["user"] = st.get("user", 0) * _NS_PER_TICK
        u["kernel"] = st.get("system", 0) * _NS_PER_TICK
    if "cpu" in ctl:
        st = fs.read_kv(os.path.join(ctl["cpu"], "cpu.stat"))
        s["cpu"]["throttling"] = {"periods": st.get("nr_periods", 0),
                                  "throttledPeriods": st.get("nr_throttled", 0),
                                  "throttledTime": st.get("throttled_time", 0)}
    if "memory" in ctl:
        d = ctl["memory"]
        m = s["memory"]
        m["usage"] = _mem_entry(d, "memory")
        m["swap"] = _mem_entry(d, "memory.memsw")
        m["kernel"] = _mem_entry(d, "memory.kmem")
        m["kernelTCP"] = _mem_entry(d, "memory.kmem.tcp")
        m["raw"] = fs.read_kv(os.path.join(d, "memory.stat"))
        m["cache"] = m["raw"].get("cache", 0)
        s["oom_kill"] = fs.read_kv(os.path.join(d, "memory.oom_control")).get("oom_kill", 0)
    if "pids" in ctl:
        d = ctl["pids"]
        s["pids"]["current"] = fs.read_int(os.path.join(d, "pids.current"))
        lim = fs.read_int(os.path.join(d, "pids.max"))
        s["pids"]["limit"] = 0 if lim < 0 else lim
    if "blkio" in ctl:
        d = ctl["blkio"]
        # CFQ's counters, else BFQ's, else the throttle layer's (which sees every I/O)
        for prefix in ("blkio.", "blkio.bfq.", "blkio.throttle."):
            sb = _blkio_entries(os.path.join(d, prefix + "io_service_bytes_recursive"))
            if sb:
                s["blkio"]["ioServiceBytesRecursive"] = sb
                s["blkio"]["ioServicedRecursive"] = _blkio_entries(
                    os.path.join(d, prefix + "io_serviced_recursive"))
                break
        for key, name in (("ioQueueRecursive", "io_queued_recursive"),
                          ("ioServiceTimeRecursive", "io_service_time_recursive"),
                          ("ioWaitTimeRecursive", "io_wait_time_recursive"),
                          ("ioMergedRecursive", "io_merged_recursive"),
                          ("ioTimeRecursive", "time_recursive"),
                          ("sectorsRecursive", "sectors_recursive")):
            s["blkio"][key] = _blkio_entries(os.path.join(d, "blkio." + name))
    if "hugetlb" in ctl:
        d = ctl["hugetlb"]
        for size in convert.hugepage_sizes():
            s["hugetlb"][size] = {
                "usage": fs.read_int(os.path.join(d, f"hugetlb.{size}.usage_in_bytes")),
                "max": fs.read_int(os.path.join(d, f"hugetlb.{size}.max_usage_in_bytes")),
                "failcnt": fs.read_int(os.path.join(d, f"hugetlb.{size}.failcnt")),
            }
    return s


def v2_hugetlb(d: str) -> dict:
    out = {}
    for size in convert.hugepage_sizes():
        cur = os.path.join(d, f"hugetlb.{size}.current")
        if os.path.exists(cur):
            out[size] = {"usage": fs.read_int(cur), "max": 0,
                         "failcnt": fs.read_kv(os.path.join(d, f"hugetlb.{size}.events")).get("max", 0)}
    return out


def _v2_limit(path: str) -> int:
    v = fs.read_int(path, -1)
    return convert.UNLIMITED_U64 if v < 0 else v


def v2_stats(d: str) -> dict:
    s = _empty()
    st = fs.read_kv(os.path.join(d, "cpu.stat"))
    s["cpu"]["usage"].update(total=st.get("usage_usec", 0) * 1000, user=st.get("user_usec", 0) * 1000,
                             kernel=st.get("system_usec", 0) * 1000)
    s["cpu"]["throttling"] = {"periods": st.get("nr_periods", 0),
                              "throttledPeriods": st.get("nr_throttled", 0),
                              "throttledTime": st.get("throttled_usec", 0) * 1000}
    m = s["memory"]
    if os.path.exists(os.path.join(d, "memory.current")):
        usage = fs.read_int(os.path.join(d, "memory.current"))
        events = fs.read_kv(os.path.join(d, "memory.events"))
        m["usage"] = {"usage": usage, "max": fs.read_int(os.path.join(d, "memory.peak")),
                      "failcnt": events.get("max", 0), "limit": _v2_limit(os.path.join(d, "memory.max"))}
        if os.path.exists(os.path.join(d, "memory.swap.current")):
            # v1's memsw counts memory+swap; report the same sum so both versions read alike
            sw = fs.read_int(os.path.join(d, "memory.swap.current"))
            sw_lim = _v2_limit(os.path.join(d, "memory.swap.max"))
            lim = m["usage"]["limit"]
            both = convert.UNLIMITED_U64 if convert.UNLIMITED_U64 in (sw_lim, lim) else sw_lim + lim
            m["swap"] = {"usage": usage + sw, "max": 0,
                         "failcnt": fs.read_kv(os.path.join(d, "memory.swap.events")).get("max", 0),
                         "limit": both}
        m["raw"] = fs.read_kv(os.path.join(d, "memory.stat"))
        m["cache"] = m["raw"].get("file", 0)
        s["oom_kill"] = events.get("oom_kill", 0)
    if os.path.exists(os.path.join(d, "pids.current")):
        s["pids"]["current"] = fs.read_int(os.path.join(d, "pids.current"))
        lim = fs.read_int(os.path.join(d, "pids.max"))
        s["pids"]["limit"] = 0 if lim < 0 else lim
    try:
        io = fs.read(os.path.join(d, "io.stat"))
    except FileNotFoundError:
        io = ""
    for line in io.splitlines():
        f = line.split()
        if not f or ":" not in f[0]:
            continue
        maj, _, mnr = f[0].partition(":")
        kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
        for key, rd, wr in (("ioServiceBytesRecursive", "rbytes", "wbytes"),
                            ("ioServicedRecursive", "rios", "wios")):
            r, w = int(kv.get(rd, 0)), int(kv.get(wr, 0))
            for op, v in (("Read", r), ("Write", w), ("Total", r + w)):
                s["blkio"][key].append({"major": int(maj), "minor": int(mnr), "op": op, "value": v})
    s["hugetlb"] = v2_hugetlb(d)
    return s


def _system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                return sum(int(x) for x in line.split()[1:8]) * _NS_PER_TICK
    return 0


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def to_docker(s: dict, version: str) -> dict:
    """The cgroup part of Docker's /containers/{id}/stats JSON (read/preread/networks are the daemon's)."""
    u = s["cpu"]["usage"]
    t = s["cpu"]["throttling"]
    mu = s["memory"]["usage"]
    limit = mu["limit"]
    host = _mem_total()
    if not limit or limit >= host:
        limit = host                # unlimited: Docker reports the host's memory
    mem = {"usage": mu["usage"], "limit": limit, "stats": dict(s["memory"]["raw"])}
    if version != "v2":
        mem.update(max_usage=mu["max"], failcnt=mu["failcnt"])
    cpu_usage = {"total_usage": u["total"], "usage_in_kernelmode": u["kernel"],
                 "usage_in_usermode": u["user"]}
    if u["percpu"]:
        cpu_usage["percpu_usage"] = list(u["percpu"])
    blk = {}
    for ours, theirs in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                         ("ioServicedRecursive", "io_serviced_recursive"),
                         ("ioQueueRecursive", "io_queue_recursive"),
                         ("ioServiceTimeRecursive", "io_service_time_recursive"),
                         ("ioWaitTimeRecursive", "io_wait_time_recursive"),
                         ("ioMergedRecursive", "io_merged_recursive"),
                         ("ioTimeRecursive", "io_time_recursive"),
                         ("sectorsRecursive", "sectors_recursive")):
        entries = s["blkio"][ours]
        if version == "v2":  # Docker on v2 reports lower-case ops and no Total lines
            entries = [dict(e, op=e["op"].lower()) for e in entries if e["op"] != "Total"]
        blk[theirs] = [dict(e) for e in entries] or None
    pids = {"current": s["pids"]["current"]}
    if s["pids"]["limit"]:
        pids["limit"] = s["pids"]["limit"]
    return {
        "cpu_stats": {"cpu_usage": cpu_usage, "system_cpu_usage": _system_cpu_ns(),
                      "online_cpus": len(u["percpu"]) or os.cpu_count() or 1,
                      "throttling_data": {"periods": t["periods"], "throttled_periods": t["throttledPeriods"],
                                          "throttled_time": t["throttledTime"]}},
        "memory_stats": mem,
        "pids_stats": pids,
        "blkio_stats": blk,
    }
