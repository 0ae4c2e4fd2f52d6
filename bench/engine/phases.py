"""Where `berth run --rm IMG true` and `berth exec C true` spend their time, API call by API call, from
a warm client (no interpreter start): the same request sequence the CLI sends, each step timed.

Usage: BERTH_HOST=unix://SOCK python phases.py [RUNS] [IMAGE]
Prints per-step medians (ms). Interpreter start + CLI imports are measured separately by profile.sh.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

from berth.client import Client  # noqa: E402


class Marks:
    """mark(name): milliseconds since the previous mark (or since creation), kept in .t under name."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.t0 = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.t[name] = (now - self.t0) * 1000
        self.t0 = now


def run_once(c: Client, image: str) -> dict[str, float]:
    mark = Marks()
    t = mark.t
    c.api_version = None
    c.negotiate()
    mark("ping")
    body = {"Image": image, "Cmd": ["true"], "AttachStdout": True, "AttachStderr": True,
            "HostConfig": {"AutoRemove": True, "NetworkMode": "none"}}
    cid = c.post_json("/containers/create", body)["Id"]
    mark("create")
    conn = c.hijack(f"/containers/{cid}/attach", {"stderr": True, "stdout": True, "stream": True})
    mark("attach")
    wait = c.request("POST", f"/containers/{cid}/wait", {"condition": "removed"})
    mark("wait (headers)")
    c.request("POST", f"/containers/{cid}/start").read()
    mark("start")
    while conn.recv():
        pass
    mark("output EOF (exit)")
    conn.close()
    wait.json()
    mark("wait returns (removed)")
    return t


def exec_once(c: Client, cid: str) -> dict[str, float]:
    mark = Marks()
    t = mark.t
    c.api_version = None
    c.negotiate()
    mark("ping")
    c.get_json(f"/containers/{cid}/json")
    mark("inspect")
    eid = c.post_json(f"/containers/{cid}/exec", {"Cmd": ["true"], "AttachStdout": True, "AttachStderr": True})["Id"]
    mark("exec create")
    conn = c.hijack(f"/exec/{eid}/start", body={"Detach": False, "Tty": False})
    mark("exec start (101)")
    while conn.recv():
        pass
    mark("output EOF")
    conn.close()
    c.get_json(f"/exec/{eid}/json")
    mark("exec inspect")
    return t


def report(title: str, rows: list[dict[str, float]]) -> None:
    print(f"{title} ({len(rows)} runs), median ms per step:")
    total = [sum(r.values()) for r in rows]
    for k in rows[0]:
        print(f"  {k:24} {statistics.median(r[k] for r in rows):8.1f}")
    print(f"  {'total':24} {statistics.median(total):8.1f}")


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    image = sys.argv[2] if len(sys.argv) > 2 else "bench-busybox:latest"
    c = Client()
    run_once(c, image)  # warm-up
    report("run --rm", [run_once(c, image) for _ in range(runs)])
    cid = c.post_json("/containers/create", {"Image": image, "Cmd": ["busybox", "sleep", "3600"],
                                             "HostConfig": {"NetworkMode": "none"}})["Id"]
    try:
        c.request("POST", f"/containers/{cid}/start").read()
        exec_once(c, cid)
        report("exec", [exec_once(c, cid) for _ in range(runs)])
    finally:
        c.request("DELETE", f"/containers/{cid}", {"force": True}).read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
