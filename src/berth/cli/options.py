"""`run`/`create` flags and their translation into the Docker create body (Config + HostConfig)."""

from __future__ import annotations

import argparse
import os
import re


class UsageError(Exception):
    """A flag value is malformed (the CLI exits 125)."""


# ------------------------------------------------------------------------------ value parsers

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_bytes(s: str, flag: str = "") -> int:
    """go-units RAMInBytes: "64m", "1.5g", "512kb", "100" (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtpKMGTP]?)[bB]?\s*", s)
    if not m:
        raise UsageError(f'invalid argument "{s}" for "{flag}" flag: invalid size: \'{s}\'')
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def mem_or_unlimited(s: str, flag: str) -> int:
    return -1 if s.strip() == "-1" else ram_bytes(s, flag)


_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DUR_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def duration_ns(s: str, flag: str = "") -> int:
    """Go's time.ParseDuration ("1m30s", "500ms", "0") in nanoseconds."""
    s = s.strip()
    if s == "0":
        return 0
    pos = 0
    total = 0.0
    for m in _DUR.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DUR_NS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise UsageError(f'invalid argument "{s}" for "{flag}" flag: time: invalid duration "{s}"')
    return int(total)


def parse_env_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UsageError(f"open {path}: {e.strerror.lower() if e.strerror else e}")
    out = []
    for n, raw in enumerate(lines, 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, _ = line.partition("=")
        if not key or " " in key.strip() or "\t" in key:
            raise UsageError(f"invalid environment variable in {path} line {n}: {raw!r}")
        if eq:
            out.append(line)
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return out


def env_list(values: list[str]) -> list[str]:
    out = []
    for v in values:
        if "=" in v:
            if v.startswith("="):
                raise UsageError(f'invalid environment variable: {v}')
            out.append(v)
        elif v in os.environ:
            out.append(f"{v}={os.environ[v]}")
    return out


def parse_ulimit(s: str) -> dict:
    name, eq, val = s.partition("=")
    if not eq or not name:
        raise UsageError(f'invalid argument "{s}" for "--ulimit" flag: invalid ulimit argument: {s}')
    soft, _, hard = val.partition(":")
    try:
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    except ValueError:
        raise UsageError(f'invalid argument "{s}" for "--ulimit" flag: invalid ulimit value: {val}')


def parse_device(s: str) -> dict:
    parts = s.split(":")
    perms = "rwm"
    if len(parts) > 1 and re.fullmatch(r"[rwm]{1,3}", parts[-1]):
        perms = parts.pop()
    if not parts[0] or len(parts) > 2:
        raise UsageError(f'invalid argument "{s}" for "--device" flag: bad format for device')
    return {"PathOnHost": parts[0], "PathInContainer": parts[1] if len(parts) > 1 else parts[0], "CgroupPermissions": perms}


def parse_throttle(s: str, flag: str) -> dict:
    path, sep, rate = s.rpartition(":")
    if not sep or not path.startswith("/dev/"):
        raise UsageError(f'invalid argument "{s}" for "{flag}" flag: bad format: {s}')
    return {"Path": path, "Rate": ram_bytes(rate, flag)}


def parse_restart(s: str) -> dict:
    name, _, count = s.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure", ""):
        raise UsageError(f'invalid restart policy: {s}')
    pol = {"Name": name or "no", "MaximumRetryCount": 0}
    if count:
        if name != "on-failure":
            raise UsageError(f"maximum retry count cannot be used with restart policy '{name}'")
        try:
            pol["MaximumRetryCount"] = int(count)
        except ValueError:
            raise UsageError(f"invalid restart policy: maximum retry count must be an integer: {s}")
    return pol


def parse_publish(specs: list[str]) -> tuple[dict, dict]:
    """-p [ip:][hostPort:]containerPort[/proto] -> (ExposedPorts, PortBindings)."""
    exposed: dict = {}
    bindings: dict = {}
    for spec in specs:
        rest, _, proto = spec.partition("/")
        proto = proto or "tcp"
        parts = rest.rsplit(":", 2) if not rest.startswith("[") else [rest]
        ip = host = ""
        if len(parts) == 3:
            ip, host, cport = parts
        elif len(parts) == 2:
            host, cport = parts
        else:
            cport = parts[0]
        if not re.fullmatch(r"\d+(-\d+)?", cport) or (host and not re.fullmatch(r"\d+(-\d+)?", host)):
            raise UsageError(f'invalid argument "{spec}" for "-p, --publish" flag: invalid port specification')
        key = f"{cport}/{proto}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": host})
    return exposed, bindings


def parse_mount(s: str) -> dict:
    """--mount type=bind|volume|tmpfs,source=,target=,readonly,bind-propagation=,tmpfs-size=,..."""
    fields: dict[str, str] = {}
    for part in s.split(","):
        k, eq, v = part.partition("=")
        k = k.strip().lower()
        fields[k] = v if eq else "true"
    mtype = fields.pop("type", "volume")
    if mtype not in ("bind", "volume", "tmpfs"):
        raise UsageError(f'invalid argument "{s}" for "--mount" flag: mount type {mtype!r} is not supported')
    target = fields.pop("target", None) or fields.pop("destination", None) or fields.pop("dst", None)
    if not target:
        raise UsageError(f'invalid argument "{s}" for "--mount" flag: target is required')
    source = fields.pop("source", None) or fields.pop("src", None) or ""
    m: dict = {"Type": mtype, "Source": source, "Target": target}
    ro = fields.pop("readonly", None) or fields.pop("ro", None)
    if ro is not None:
        m["ReadOnly"] = ro.lower() in ("1", "true", "")
    if mtype == "bind":
        if not source:
            raise UsageError(f'invalid argument "{s}" for "--mount" flag: source is required for bind mounts')
        if "bind-propagation" in fields:
            m["BindOptions"] = {"Propagation": fields.pop("bind-propagation")}
    elif mtype == "volume":
        vo: dict = {}
        if "volume-nocopy" in fields:
            vo["NoCopy"] = fields.pop("volume-nocopy").lower() in ("1", "true")
        labels = {}
        opts = {}
        for k in list(fields):
            if k.startswith("volume-label"):
                lk, _, lv = fields.pop(k).partition("=")
                labels[lk] = lv
            elif k.startswith("volume-opt"):
                ok, _, ov = fields.pop(k).partition("=")
                opts[ok] = ov
        if labels:
            vo["Labels"] = labels
        if opts or "volume-driver" in fields:
            vo["DriverConfig"] = {"Name": fields.pop("volume-driver", "local"), "Options": opts}
        if vo:
            m["VolumeOptions"] = vo
    else:
        to: dict = {}
        if "tmpfs-size" in fields:
            to["SizeBytes"] = ram_bytes(fields.pop("tmpfs-size"), "--mount")
        if "tmpfs-mode" in fields:
            to["Mode"] = int(fields.pop("tmpfs-mode"), 8)
        if to:
            m["TmpfsOptions"] = to
    if fields:
        raise UsageError(f'invalid argument "{s}" for "--mount" flag: unexpected key {next(iter(fields))!r}')
    return m


def parse_volume(s: str) -> tuple[str | None, str | None]:
    """-v: returns (bind string for HostConfig.Binds, anonymous volume path for Config.Volumes)."""
    parts = s.split(":")
    if len(parts) == 1:
        if not parts[0].startswith("/"):
            raise UsageError(f'invalid argument "{s}" for "-v, --volume" flag: invalid volume specification: \'{s}\'')
        return None, parts[0]
    if len(parts) > 3 or not parts[0] or not parts[1].startswith("/"):
        raise UsageError(f'invalid argument "{s}" for "-v, --volume" flag: invalid volume specification: \'{s}\'')
    if len(parts) == 3:
        for opt in parts[2].split(","):
            if opt not in ("ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared",
                           "slave", "rslave", "consistent", "cached", "delegated"):
                raise UsageError(f'invalid argument "{s}" for "-v, --volume" flag: invalid mode: {opt}')
    src = parts[0]
    if not src.startswith("/") and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", src):
        raise UsageError(
            f'invalid argument "{s}" for "-v, --volume" flag: "{src}" includes invalid characters for a local volume '
            "name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed. If you intended to pass a host directory, use absolute path"
        )
    return s, None


# ------------------------------------------------------------------------------ flags


def add_container_flags(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--help", action="help", help="Print usage")
    a("-a", "--attach", action="append", default=[], choices=["stdin", "stdout", "stderr", "STDIN", "STDOUT", "STDERR"],
      help="Attach to STDIN, STDOUT or STDERR")
    a("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    a("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    a("--rm", action="store_true", help="Automatically remove the container when it exits")
    a("--name", default="", help="Assign a name to the container")
    a("-e", "--env", action="append", default=[], help="Set environment variables")
    a("--env-file", action="append", default=[], help="Read in a file of environment variables")
    a("-l", "--label", action="append", default=[], help="Set meta data on a container")
    a("--label-file", action="append", default=[], help="Read in a line delimited file of labels")
    a("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image")
    a("-w", "--workdir", default="", help="Working directory inside the container")
    a("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])")
    a("--group-add", action="append", default=[], help="Add additional groups to join")
    a("-h", "--hostname", default="", help="Container host name")
    a("--domainname", default="", help="Container NIS domain name")
    a("--read-only", action="store_true", help="Mount the container's root filesystem as read only")
    a("--privileged", action="store_true", help="Give extended privileges to this container")
    a("--cap-add", action="append", default=[], help="Add Linux capabilities")
    a("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    a("--security-opt", action="append", default=[], help="Security Options")
    a("--init", action="store_true", default=None, help="Run an init inside the container")
    a("--ulimit", action="append", default=[], help="Ulimit options")
    a("-m", "--memory", default=None, help="Memory limit")
    a("--memory-swap", default=None, help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    a("--memory-reservation", default=None, help="Memory soft limit")
    a("--memory-swappiness", type=int, default=-1, help="Tune container memory swappiness (0 to 100)")
    a("--kernel-memory", default=None, help=argparse.SUPPRESS)
    a("--oom-kill-disable", action="store_true", help="Disable OOM Killer")
    a("--oom-score-adj", type=int, default=0, help="Tune host's OOM preferences (-1000 to 1000)")
    a("--cpus", default=None, help="Number of CPUs")
    a("-c", "--cpu-shares", type=int, default=0, help="CPU shares (relative weight)")
    a("--cpu-period", type=int, default=0, help="Limit CPU CFS (Completely Fair Scheduler) period")
    a("--cpu-quota", type=int, default=0, help="Limit CPU CFS (Completely Fair Scheduler) quota")
    a("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)")
    a("--cpuset-mems", default="", help="MEMs in which to allow execution (0-3, 0,1)")
    a("--pids-limit", type=int, default=None, help="Tune container pids limit (set -1 for unlimited)")
    a("--blkio-weight", type=int, default=0, help="Block IO (relative weight), between 10 and 1000, or 0 to disable")
    a("--device-read-bps", action="append", default=[], help="Limit read rate (bytes per second) from a device")
    a("--device-write-bps", action="append", default=[], help="Limit write rate (bytes per second) to a device")
    a("--device-read-iops", action="append", default=[], help="Limit read rate (IO per second) from a device")
    a("--device-write-iops", action="append", default=[], help="Limit write rate (IO per second) to a device")
    a("--device", action="append", default=[], help="Add a host device to the container")
    a("--device-cgroup-rule", action="append", default=[], help="Add a rule to the cgroup allowed devices list")
    a("--network", "--net", default="default", help="Connect a container to a network")
    a("--network-alias", action="append", default=[], help="Add network-scoped alias for the container")
    a("--dns", action="append", default=[], help="Set custom DNS servers")
    a("--dns-search", action="append", default=[], help="Set custom DNS search domains")
    a("--dns-option", action="append", default=[], help="Set DNS options")
    a("--add-host", action="append", default=[], help="Add a custom host-to-IP mapping (host:ip)")
    a("-p", "--publish", action="append", default=[], help="Publish a container's port(s) to the host")
    a("-P", "--publish-all", action="store_true", help="Publish all exposed ports to random ports")
    a("--expose", action="append", default=[], help="Expose a port or a range of ports")
    a("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    a("--mount", action="append", default=[], help="Attach a filesystem mount to the container")
    a("--tmpfs", action="append", default=[], help="Mount a tmpfs directory")
    a("--volumes-from", action="append", default=[], help="Mount volumes from the specified container(s)")
    a("--restart", default="no", help="Restart policy to apply when a container exits")
    a("--health-cmd", default=None, help="Command to run to check health")
    a("--health-interval", default=None, help="Time between running the check (ms|s|m|h) (default 0s)")
    a("--health-timeout", default=None, help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    a("--health-retries", type=int, default=0, help="Consecutive failures needed to report unhealthy")
    a("--health-start-period", default=None, help="Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
    a("--no-healthcheck", action="store_true", help="Disable any container-specified HEALTHCHECK")
    a("--stop-signal", default="", help="Signal to stop the container")
    a("--stop-timeout", type=int, default=None, help="Timeout (in seconds) to stop a container")
    a("--shm-size", default=None, help="Size of /dev/shm")
    a("--sysctl", action="append", default=[], help="Sysctl options")
    a("--ipc", default="", help="IPC mode to use")
    a("--pid", default="", help="PID namespace to use")
    a("--uts", default="", help="UTS namespace to use")
    a("--userns", default="", help="User namespace to use")
    a("--cgroupns", default="", help="Cgroup namespace to use (host|private)")
    a("--cgroup-parent", default="", help="Optional parent cgroup for the container")
    a("--log-driver", default="", help="Logging driver for the container")
    a("--log-opt", action="append", default=[], help="Log driver options")
    a("--runtime", default="", help="Runtime to use for this container")
    a("--platform", default="", help="Set platform if server is multi-platform capable")
    a("--pull", default="missing", choices=["always", "missing", "never"], help="Pull image before running")
    a("--cidfile", default="", help="Write the container ID to the file")
    a("--detach-keys", default="", help="Override the key sequence for detaching a container")
    a("-q", "--quiet", action="store_true", help="Suppress the pull output")
    a("image", metavar="IMAGE")
    a("command", nargs=argparse.REMAINDER, metavar="[COMMAND] [ARG...]")


def _labels(values: list[str], files: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = list(values)
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                lines += [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
        except OSError as e:
            raise UsageError(f"open {f}: {e.strerror}")
    for v in lines:
        k, _, val = v.partition("=")
        out[k] = val
    return out


def build_create_body(o: argparse.Namespace, console_size: tuple[int, int] | None = None) -> dict:
    """The full create struct docker CLI 28 sends, filled from the flags."""
    env: list[str] = []
    for f in o.env_file:
        env += parse_env_file(f)
    env += env_list(o.env)
    attach = {x.lower() for x in o.attach}
    detach = getattr(o, "detach", False)
    if detach and attach:
        raise UsageError("Conflicting options: -a and -d")
    if not attach and not detach:
        attach = {"stdout", "stderr"} | ({"stdin"} if o.interactive else set())
    binds: list[str] = []
    volumes: dict = {}
    for v in o.volume:
        b, anon = parse_volume(v)
        if b:
            binds.append(b)
        if anon:
            volumes[anon] = {}
    mounts = [parse_mount(m) for m in o.mount]
    tmpfs = {}
    for t in o.tmpfs:
        path, _, opts = t.partition(":")
        if not path.startswith("/"):
            raise UsageError(f'invalid argument "{t}" for "--tmpfs" flag: path must be absolute')
        tmpfs[path] = opts
    exposed, bindings = parse_publish(o.publish)
    for e in o.expose:
        port, _, proto = e.partition("/")
        exposed[f"{port}/{proto or 'tcp'}"] = {}
    nano_cpus = 0
    if o.cpus is not None:
        try:
            nano_cpus = int(round(float(o.cpus) * 1e9))
        except ValueError:
            raise UsageError(f'invalid argument "{o.cpus}" for "--cpus" flag: failed to parse {o.cpus} as a rational number')
    healthcheck = None
    if o.no_healthcheck:
        if o.health_cmd or o.health_interval or o.health_timeout or o.health_retries or o.health_start_period:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        healthcheck = {"Test": ["NONE"]}
    elif o.health_cmd or o.health_interval or o.health_timeout or o.health_retries or o.health_start_period:
        healthcheck = {}
        if o.health_cmd:
            healthcheck["Test"] = ["CMD-SHELL", o.health_cmd]
        if o.health_interval:
            healthcheck["Interval"] = duration_ns(o.health_interval, "--health-interval")
        if o.health_timeout:
            healthcheck["Timeout"] = duration_ns(o.health_timeout, "--health-timeout")
        if o.health_start_period:
            healthcheck["StartPeriod"] = duration_ns(o.health_start_period, "--health-start-period")
        if o.health_retries:
            healthcheck["Retries"] = o.health_retries
        if o.health_retries < 0:
            raise UsageError("--health-retries cannot be negative")
    entrypoint = None
    if o.entrypoint is not None:
        entrypoint = [o.entrypoint] if o.entrypoint else [""]
    cmd = list(o.command) or None
    network = o.network
    restart = parse_restart(o.restart)
    if o.rm and restart["Name"] not in ("no", ""):
        raise UsageError("Conflicting options: --restart and --rm")
    log_config = {"Type": o.log_driver, "Config": dict(x.partition("=")[::2] for x in o.log_opt)}
    host_config = {
        "Binds": binds or None,
        "ContainerIDFile": o.cidfile,
        "LogConfig": log_config,
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": restart,
        "AutoRemove": o.rm,
        "VolumeDriver": "",
        "VolumesFrom": o.volumes_from or None,
        "ConsoleSize": list(console_size) if console_size else [0, 0],
        "CapAdd": o.cap_add or None,
        "CapDrop": o.cap_drop or None,
        "CgroupnsMode": o.cgroupns,
        "Dns": o.dns,
        "DnsOptions": o.dns_option,
        "DnsSearch": o.dns_search,
        "ExtraHosts": o.add_host or None,
        "GroupAdd": o.group_add or None,
        "IpcMode": o.ipc,
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": o.oom_score_adj,
        "PidMode": o.pid,
        "Privileged": o.privileged,
        "PublishAllPorts": o.publish_all,
        "ReadonlyRootfs": o.read_only,
        "SecurityOpt": o.security_opt or None,
        "StorageOpt": None,
        "Tmpfs": tmpfs or None,
        "UTSMode": o.uts,
        "UsernsMode": o.userns,
        "ShmSize": ram_bytes(o.shm_size, "--shm-size") if o.shm_size else 0,
        "Sysctls": dict(x.partition("=")[::2] for x in o.sysctl) or None,
        "Runtime": o.runtime,
        "Isolation": "",
        "CpuShares": o.cpu_shares,
        "Memory": ram_bytes(o.memory, "--memory") if o.memory else 0,
        "NanoCpus": nano_cpus,
        "CgroupParent": o.cgroup_parent,
        "BlkioWeight": o.blkio_weight,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [parse_throttle(x, "--device-read-bps") for x in o.device_read_bps],
        "BlkioDeviceWriteBps": [parse_throttle(x, "--device-write-bps") for x in o.device_write_bps],
        "BlkioDeviceReadIOps": [_iops(x, "--device-read-iops") for x in o.device_read_iops],
        "BlkioDeviceWriteIOps": [_iops(x, "--device-write-iops") for x in o.device_write_iops],
        "CpuPeriod": o.cpu_period,
        "CpuQuota": o.cpu_quota,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": o.cpuset_cpus,
        "CpusetMems": o.cpuset_mems,
        "Devices": [parse_device(d) for d in o.device],
        "DeviceCgroupRules": o.device_cgroup_rule or None,
        "DeviceRequests": None,
        "MemoryReservation": ram_bytes(o.memory_reservation, "--memory-reservation") if o.memory_reservation else 0,
        "MemorySwap": mem_or_unlimited(o.memory_swap, "--memory-swap") if o.memory_swap else 0,
        "MemorySwappiness": o.memory_swappiness,
        "OomKillDisable": o.oom_kill_disable,
        "PidsLimit": o.pids_limit,
        "Ulimits": [parse_ulimit(u) for u in o.ulimit] or None,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "Mounts": mounts or None,
        "MaskedPaths": None,
        "ReadonlyPaths": None,
        "Init": o.init,
    }
    if o.stop_timeout is not None and o.stop_timeout < 0:
        raise UsageError("--stop-timeout cannot be negative")
    endpoint = {"IPAMConfig": None, "Links": None, "Aliases": o.network_alias or None, "MacAddress": "",
                "DriverOpts": None, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
                "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}
    body = {
        "Hostname": o.hostname,
        "Domainname": o.domainname,
        "User": o.user,
        "AttachStdin": "stdin" in attach,
        "AttachStdout": "stdout" in attach,
        "AttachStderr": "stderr" in attach,
        "ExposedPorts": exposed or None,
        "Tty": o.tty,
        "OpenStdin": o.interactive,
        "StdinOnce": o.interactive and "stdin" in attach,
        "Env": env,
        "Cmd": cmd,
        "Image": o.image,
        "Volumes": volumes,
        "WorkingDir": o.workdir,
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": _labels(o.label, o.label_file),
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": {network.split(":", 1)[0] if network.startswith("container:") else network: endpoint}},
    }
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck
    if o.stop_signal:
        body["StopSignal"] = o.stop_signal
    if o.stop_timeout is not None:
        body["StopTimeout"] = o.stop_timeout
    if o.network.startswith("container:"):
        body["NetworkingConfig"] = {"EndpointsConfig": {}}
    return body


def _iops(s: str, flag: str) -> dict:
    path, sep, rate = s.rpartition(":")
    if not sep or not rate.isdigit():
        raise UsageError(f'invalid argument "{s}" for "{flag}" flag: bad format')
    return {"Path": path, "Rate": int(rate)}


def normalize_image(ref: str) -> str:
    """busybox -> busybox:latest (for messages, as the CLI prints them)."""
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:latest"


def split_command(s: str) -> list[str]:
    import shlex

    return shlex.split(s)
