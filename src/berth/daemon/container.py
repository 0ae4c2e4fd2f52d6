"""A container's record: what `docker inspect` shows, persisted as container.json (tmp+fsync+rename),
plus in-memory waiters for the daemon's asyncio side."""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from berth.daemon.monitorctl import write_json_atomic
from berth.humanize import human_duration

ZERO_TIME = "0001-01-01T00:00:00Z"

_ADJ = ("admiring", "brave", "calm", "clever", "eager", "focused", "gallant", "happy", "jolly", "keen",
        "loving", "modest", "nifty", "quirky", "serene", "sharp", "tender", "upbeat", "vibrant", "wizardly")
_NAMES = ("turing", "hopper", "lovelace", "knuth", "ritchie", "thompson", "torvalds", "liskov", "dijkstra",
          "hamilton", "perlman", "kay", "lamport", "shannon", "noether", "curie", "babbage", "wozniak",
          "allen", "backus")


def random_name() -> str:
    return f"{random.choice(_ADJ)}_{random.choice(_NAMES)}{random.randint(0, 99)}"


def now_rfc3339() -> str:
    ns = time.time_ns()
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}Z"


def parse_rfc3339(t: str) -> float:
    """RFC3339(Nano) -> unix seconds (float); 0 for Go's zero time."""
    if not t or t.startswith("0001-"):
        return 0.0
    import calendar

    base, _, rest = t.partition(".")
    if not rest:
        base = base.rstrip("Z")
        frac = 0.0
    else:
        digits = "".join(ch for ch in rest if ch.isdigit())
        frac = float("0." + digits) if digits else 0.0
    return calendar.timegm(time.strptime(base[:19], "%Y-%m-%dT%H:%M:%S")) + frac


def parse_rfc3339_ns(t: str) -> int:
    """RFC3339(Nano) -> unix nanoseconds, exactly (floats lose ~0.2 µs at today's seconds, enough
    to misorder a log record against a --since taken from that very record)."""
    if not t or t.startswith("0001-"):
        return 0
    import calendar

    base, _, rest = t.partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit()) if rest else ""
    secs = calendar.timegm(time.strptime(base.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int((digits + "000000000")[:9])


def fresh_state() -> dict:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


@dataclass
class Container:
    id: str
    name: str  # without the leading "/"
    created: str
    config: dict
    host_config: dict
    image_id: str
    image_ref: str
    path: str
    args: list[str]
    dir: str  # persistent: root/containers/<id>
    rundir: str  # runtime: exec_root/containers/<id>
    state: dict = field(default_factory=fresh_state)
    restart_count: int = 0
    mounts: list[dict] = field(default_factory=list)  # inspect form
    driver: str = ""
    manual_stop: bool = False  # stopped by the user: unless-stopped / always stay down
    commit_pause: bool = False  # paused by a commit: a restart after a crash mid-commit resumes it
    # in memory only
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    exit_waiters: list[asyncio.Future] = field(default_factory=list)
    remove_waiters: list[asyncio.Future] = field(default_factory=list)
    start_waiters: list[asyncio.Future] = field(default_factory=list)  # attach before start
    attach_ready: list[asyncio.Future] = field(default_factory=list)
    watcher: asyncio.Task | None = None
    health_task: asyncio.Task | None = None
    restart_task: asyncio.Task | None = None
    exec_ids: set[str] = field(default_factory=set)
    removing: bool = False
    removed: bool = False
    # the exit was not saved (auto-remove follows): on disk it still runs, and restore, finding its
    # monitor gone, records the exit and auto-removes it; no removal mark is needed then
    exit_unsaved: bool = False
    backoff: int = 0  # consecutive quick restarts (restart policy back-off)

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, f"{self.id}-json.log")

    @property
    def sock(self) -> str:
        return os.path.join(self.rundir, "monitor.sock")

    @property
    def exit_file(self) -> str:
        return os.path.join(self.rundir, "exit.json")

    @property
    def running(self) -> bool:
        return bool(self.state.get("Running"))

    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})

    def event_attrs(self, **extra: str) -> dict[str, str]:
        a = self.labels()
        a.update({"image": self.image_ref, "name": self.name})
        a.update(extra)
        return a

    def save(self) -> None:
        write_json_atomic(os.path.join(self.dir, "container.json"), self.to_disk())

    def to_disk(self) -> dict:
        return {"Id": self.id, "Name": self.name, "Created": self.created, "Config": self.config,
                "HostConfig": self.host_config, "Image": self.image_id, "ImageRef": self.image_ref,
                "Path": self.path, "Args": self.args, "State": self.state, "RestartCount": self.restart_count,
                "Mounts": self.mounts, "Driver": self.driver, "ManualStop": self.manual_stop,
                "CommitPause": self.commit_pause}

    @classmethod
    def from_disk(cls, d: dict, cdir: str, rundir: str) -> Container:
        return cls(id=d["Id"], name=d["Name"], created=d["Created"], config=d["Config"],
                   host_config=d["HostConfig"], image_id=d["Image"], image_ref=d.get("ImageRef", d["Image"]),
                   path=d["Path"], args=d["Args"], dir=cdir, rundir=rundir, state=d["State"],
                   restart_count=d.get("RestartCount", 0), mounts=d.get("Mounts", []),
                   driver=d.get("Driver", ""), manual_stop=d.get("ManualStop", False),
                   commit_pause=d.get("CommitPause", False))

    def status_text(self) -> str:
        st = self.state
        if st.get("Running"):
            up = human_duration(time.time() - parse_rfc3339(st.get("StartedAt", "")))
            if st.get("Paused"):
                return f"Up {up} (Paused)"
            if st.get("Restarting"):
                return f"Restarting ({st.get('ExitCode', 0)}) {up} ago"
            health = (st.get("Health") or {}).get("Status")
            if health == "starting":
                return f"Up {up} (health: starting)"
            if health in ("healthy", "unhealthy"):
                return f"Up {up} ({health})"
            return f"Up {up}"
        if st.get("Status") == "removing":
            return "Removal In Progress"
        if st.get("Dead"):
            return "Dead"
        if st.get("StartedAt", ZERO_TIME) == ZERO_TIME:
            return "Created"
        ago = human_duration(time.time() - parse_rfc3339(st.get("FinishedAt", "")))
        return f"Exited ({st.get('ExitCode', 0)}) {ago} ago"

    def inspect(self, exec_ids: list[str], size: tuple[int, int] | None = None) -> dict[str, Any]:
        hc = dict(self.host_config)
        nm = hc.get("NetworkMode") or "none"
        ports = {p: None for p in (self.config.get("ExposedPorts") or {})}
        out = {
            "Id": self.id, "Created": self.created, "Path": self.path, "Args": self.args,
            "State": dict(self.state), "Image": self.image_id,
            "ResolvConfPath": os.path.join(self.dir, "resolv.conf"),
            "HostnamePath": os.path.join(self.dir, "hostname"),
            "HostsPath": os.path.join(self.dir, "hosts"),
            "LogPath": self.log_path, "Name": "/" + self.name, "RestartCount": self.restart_count,
            "Driver": self.driver, "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
            "AppArmorProfile": "", "ExecIDs": exec_ids or None, "HostConfig": hc,
            "GraphDriver": {"Data": None, "Name": self.driver},
            "Mounts": [{k: v for k, v in m.items() if k != "Anonymous"} for m in self.mounts],
            "Config": dict(self.config),
            "NetworkSettings": {
                "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
                "LinkLocalIPv6PrefixLen": 0, "Ports": ports, "SandboxKey": "", "SecondaryIPAddresses": None,
                "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
                "Networks": {nm: _endpoint()},
            },
        }
        if size is not None:
            out["SizeRw"], out["SizeRootFs"] = size
        return out

    def summary(self, size: tuple[int, int] | None = None) -> dict[str, Any]:
        cmd = " ".join([self.path, *self.args]).strip()
        nm = self.host_config.get("NetworkMode") or "none"
        out = {
            "Id": self.id, "Names": ["/" + self.name], "Image": self.image_ref, "ImageID": self.image_id,
            "Command": cmd, "Created": int(parse_rfc3339(self.created)), "Ports": [],
            "Labels": self.labels(), "State": self.state.get("Status", "created"), "Status": self.status_text(),
            "HostConfig": {"NetworkMode": nm}, "NetworkSettings": {"Networks": {nm: _endpoint()}},
            "Mounts": [{k: m[k] for k in ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW",
                                          "Propagation") if k in m} for m in self.mounts],
        }
        if size is not None:
            out["SizeRw"], out["SizeRootFs"] = size
        return out


def _endpoint() -> dict:
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}


def write_run_file(path: str, obj: Any) -> None:
    """A file in the exec root: no fsync (see write_json_atomic)."""
    write_json_atomic(path, obj, sync=False)
