"""top and stats: read from the container's cgroup (berth.cgroups) and the host's ps."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections.abc import AsyncIterator

from berth import errors
from berth.daemon.container import Container, now_rfc3339

ZERO = "0001-01-01T00:00:00Z"


def _manager(c: Container):
    from berth import cgroups

    return cgroups.new_manager(f"/berth/{c.id}", c.id)


async def top(c: Container, ps_args: str) -> dict:
    try:
        pids = set(await asyncio.to_thread(lambda: _manager(c).pids()))
    except errors.BerthError as e:
        raise errors.SystemError_(f"cannot list the container's processes: {e}")
    args = shlex.split(ps_args)
    proc = await asyncio.create_subprocess_exec("ps", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise errors.InvalidArgument(f"ps: {err.decode().strip() or 'failed'}")
    lines = out.decode().splitlines()
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise errors.InvalidArgument(f"Couldn't find PID field in ps output (ps_args {ps_args!r})")
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) <= pid_col:
            continue
        try:
            pid = int(fields[pid_col])
        except ValueError:
            continue
        if pid in pids:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}


def _one(c: Container, pre: dict | None, pre_read: str) -> dict:
    try:
        s = _manager(c).docker_stats()
    except Exception:
        s = {"cpu_stats": {}, "memory_stats": {}, "pids_stats": {}, "blkio_stats": {}}
    out = {"read": now_rfc3339(), "preread": pre_read, "name": "/" + c.name, "id": c.id,
           "num_procs": 0, "storage_stats": {}, "networks": _networks(c)}
    out.update(s)
    out["precpu_stats"] = (pre or {}).get("cpu_stats") or {"cpu_usage": {"total_usage": 0}, "throttling_data": {
        "periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    return out


def _networks(c: Container) -> dict:
    pid = c.state.get("Pid")
    if not pid or (c.host_config.get("NetworkMode") == "host"):
        return {}
    nets = {}
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            for line in f.readlines()[2:]:
                name, _, rest = line.partition(":")
                name = name.strip()
                if name == "lo":
                    continue
                v = [int(x) for x in rest.split()]
                nets[name] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                              "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]}
    except (OSError, ValueError, IndexError):
        pass
    return nets


async def stats_stream(c: Container, *, stream: bool, one_shot: bool) -> AsyncIterator[bytes]:
    if not c.running:
        if not stream:
            yield b""
            return
        yield json.dumps(_empty(c)).encode() + b"\n"
        return
    pre: dict | None = None
    pre_read = ZERO
    if not stream and not one_shot:
        # Docker primes precpu with a sample a second earlier: CPU% needs two samples.
        pre = await asyncio.to_thread(_one, c, None, ZERO)
        pre_read = pre["read"]
        await asyncio.sleep(0.5)
    while True:
        cur = await asyncio.to_thread(_one, c, pre, pre_read)
        yield json.dumps(cur).encode() + b"\n"
        if not stream or not c.running:
            return
        pre, pre_read = cur, cur["read"]
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0 and c.running:
            await asyncio.sleep(0.1)


def _empty(c: Container) -> dict:
    return {"read": ZERO, "preread": ZERO, "name": "/" + c.name, "id": c.id, "pids_stats": {},
            "blkio_stats": {}, "num_procs": 0, "storage_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0}},
            "precpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {}}
