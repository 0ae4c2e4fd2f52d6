"""Health checks (Config.Healthcheck): run the test through the monitor as an exec, keep the state
in State.Health and emit `health_status: ...` events, as Docker does."""

from __future__ import annotations

import asyncio
import logging
import time

from berth.daemon import execs
from berth.daemon.container import Container, now_rfc3339

log = logging.getLogger("berthd.health")
_NS = 1_000_000_000
_MAX_LOG = 5
_MAX_OUTPUT = 4096


def _dur(v, default: float) -> float:
    return v / _NS if v else default


async def _probe(eng, c: Container, cmd: list[str], timeout: float) -> tuple[int, str]:
    ex = execs.ExecRecord(id="health-" + str(time.time_ns()), container=c,
                          config={"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
    out: list[bytes] = []

    async def sink(kind: int, data: bytes) -> None:
        if sum(map(len, out)) < _MAX_OUTPUT:
            out.append(data)

    try:
        reader, writer = await execs.start(eng, ex, detach=False)
    except Exception as e:
        return -1, str(e)
    try:
        code = await asyncio.wait_for(execs.drain(eng, ex, reader, writer, sink), timeout)
    except TimeoutError:
        return -1, f"Health check exceeded timeout ({timeout:g}s)"
    return (code if code is not None else -1), b"".join(out).decode("utf-8", "replace")[:_MAX_OUTPUT]


async def run_health(eng, c: Container) -> None:
    hc = c.config.get("Healthcheck") or {}
    test = list(hc.get("Test") or [])
    if not test or test[0] == "NONE":
        return
    if test[0] == "CMD":
        cmd = test[1:]
    elif test[0] == "CMD-SHELL":
        cmd = ["/bin/sh", "-c", " ".join(test[1:])]
    else:
        cmd = test
    interval = _dur(hc.get("Interval"), 30.0)
    timeout = _dur(hc.get("Timeout"), 30.0)
    retries = int(hc.get("Retries") or 3)
    start_period = _dur(hc.get("StartPeriod"), 0.0)
    start_interval = _dur(hc.get("StartInterval"), 5.0)
    started = time.monotonic()
    try:
        while c.running:
            in_start = time.monotonic() - started < start_period
            h = c.state.setdefault("Health", {"Status": "starting", "FailingStreak": 0, "Log": []})
            await asyncio.sleep(start_interval if in_start and h["Status"] == "starting" and hc.get("StartInterval")
                                else interval)
            if not c.running:
                return
            if c.state.get("Paused"):
                continue
            t0 = now_rfc3339()
            code, output = await _probe(eng, c, cmd, timeout)
            h = c.state.setdefault("Health", {"Status": "starting", "FailingStreak": 0, "Log": []})
            h["Log"] = (h.get("Log") or [])[-(_MAX_LOG - 1):] + [
                {"Start": t0, "End": now_rfc3339(), "ExitCode": code, "Output": output}]
            old = h["Status"]
            if code == 0:
                h["Status"] = "healthy"
                h["FailingStreak"] = 0
            else:
                in_start = time.monotonic() - started < start_period
                if not (in_start and old == "starting"):
                    h["FailingStreak"] = int(h.get("FailingStreak", 0)) + 1
                    if h["FailingStreak"] >= retries:
                        h["Status"] = "unhealthy"
            if h["Status"] != old or code != 0 or old == "starting":
                c.save()
            if h["Status"] != old:
                eng.events.emit("container", f"health_status: {h['Status']}", c.id, c.event_attrs())
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("health check of %s failed", c.id)
