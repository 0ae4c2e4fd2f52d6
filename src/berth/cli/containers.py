"""Container commands that do not stream stdio: ps, lifecycle verbs, logs, inspect, top, stats, ..."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from berth.cli import format as fmt
from berth.cli.errors import CLIError
from berth.client import APIError, Client, filters_param


def _err(msg: str) -> None:
    sys.stderr.write(msg.rstrip("\n") + "\n")


def _each(client: Client, names: list[str], action) -> int:
    """Run action(name) for every name; print the name on success, the error otherwise (docker style)."""
    failed = False
    for n in names:
        try:
            action(n)
            print(n)
        except APIError as e:
            _err(str(e))
            failed = True
    sys.stdout.flush()
    return 1 if failed else 0


# ------------------------------------------------------------------------------ ps


class ContainerRow:
    """The fields `ps --format` offers, computed from a /containers/json item."""

    HEADERS = {
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES", "Label": "LABEL",
    }
    FIELDS = ("Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks",
              "Ports", "RunningFor", "Size", "State", "Status")

    def __init__(self, c: dict, trunc: bool = True) -> None:
        self._c = c
        self._trunc = trunc

    @property
    def ID(self) -> str:
        return fmt.short_id(self._c.get("Id", "")) if self._trunc else self._c.get("Id", "")

    @property
    def Image(self) -> str:
        img = self._c.get("Image", "")
        if self._trunc and img.startswith("sha256:"):
            return fmt.short_id(img)
        return img

    @property
    def Command(self) -> str:
        cmd = self._c.get("Command", "")
        if self._trunc:
            cmd = fmt.ellipsis(cmd, 20)
        return json.dumps(cmd, ensure_ascii=False)

    @property
    def CreatedAt(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(self._c.get("Created", 0)))

    @property
    def RunningFor(self) -> str:
        return fmt.since(self._c.get("Created", 0))

    @property
    def Ports(self) -> str:
        return format_ports(self._c.get("Ports") or [])

    @property
    def State(self) -> str:
        return self._c.get("State", "")

    @property
    def Status(self) -> str:
        return self._c.get("Status", "")

    @property
    def Size(self) -> str:
        rw = self._c.get("SizeRw", 0) or 0
        rootfs = self._c.get("SizeRootFs", 0) or 0
        s = fmt.human_size(rw)
        if rootfs:
            s += f" (virtual {fmt.human_size(rootfs)})"
        return s

    @property
    def Names(self) -> str:
        names = [n.lstrip("/") for n in self._c.get("Names") or []]
        if self._trunc:
            names = [n for n in names if "/" not in n][:1] or names[:1]
        return ",".join(names)

    @property
    def Labels(self) -> str:
        labels = self._c.get("Labels") or {}
        return ",".join(f"{k}={v}" for k, v in labels.items())

    def Label(self, name: str) -> str:
        return (self._c.get("Labels") or {}).get(name, "")

    @property
    def Mounts(self) -> str:
        out = []
        for m in self._c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source", "")
            if self._trunc and m.get("Type") == "volume" and len(name) > 15:
                name = fmt.ellipsis(name, 15)
            out.append(name)
        return ",".join(out)

    @property
    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self._c.get("Mounts") or [] if m.get("Driver", "local") == "local" and m.get("Type") == "volume"))

    @property
    def Networks(self) -> str:
        nets = ((self._c.get("NetworkSettings") or {}).get("Networks")) or {}
        return ",".join(sorted(nets))

    def __template_json__(self) -> dict:
        d = {f: getattr(self, f) for f in self.FIELDS}
        d["Platform"] = None  # docker 28's key (the daemon reports no per-container platform)
        return dict(sorted(d.items()))  # docker builds this as a map: sorted keys


def format_ports(ports: list[dict]) -> str:
    out = []
    for p in sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("Type", ""), p.get("IP", ""))):
        proto = p.get("Type", "tcp")
        if p.get("PublicPort"):
            ip = p.get("IP") or "0.0.0.0"
            host = f"[{ip}]" if ":" in ip else ip
            out.append(f"{host}:{p['PublicPort']}->{p.get('PrivatePort')}/{proto}")
        else:
            out.append(f"{p.get('PrivatePort')}/{proto}")
    return ", ".join(out)


PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def add_ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container (includes all states)")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")


def cmd_ps(client: Client, o: argparse.Namespace) -> int:
    limit = 1 if o.latest else o.last
    filters = filters_param(o.filter)
    # like docker: a status filter looks beyond running containers (limit implies it daemon-side)
    show_all = o.all or bool(filters and "status" in filters)
    params = {"all": show_all, "limit": limit if limit > 0 else None, "size": o.size, "filters": filters}
    items = client.get_json("/containers/json", params) or []
    rows = [ContainerRow(c, not o.no_trunc) for c in items]
    f = o.format
    if o.quiet and not f:
        f = "{{.ID}}"
    table = PS_TABLE + ("\t{{.Size}}" if o.size else "")
    sys.stdout.write(fmt.render(f, rows, ContainerRow.HEADERS, table))
    return 0


# ------------------------------------------------------------------------------ lifecycle


def add_stop(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="", help="Signal to send to the container")
    p.add_argument("-t", "--time", "--timeout", type=int, default=None, dest="time", help="Seconds to wait before killing the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_stop(client: Client, o: argparse.Namespace) -> int:
    params = {"t": o.time, "signal": o.signal or None}
    return _each(client, o.containers, lambda n: client.request("POST", f"/containers/{n}/stop", params).read())


def add_restart(p: argparse.ArgumentParser) -> None:
    add_stop(p)


def cmd_restart(client: Client, o: argparse.Namespace) -> int:
    params = {"t": o.time, "signal": o.signal or None}
    return _each(client, o.containers, lambda n: client.request("POST", f"/containers/{n}/restart", params).read())


def add_kill(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="", help="Signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_kill(client: Client, o: argparse.Namespace) -> int:
    params = {"signal": o.signal or None}
    return _each(client, o.containers, lambda n: client.request("POST", f"/containers/{n}/kill", params).read())


def add_pause(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_pause(client: Client, o: argparse.Namespace) -> int:
    return _each(client, o.containers, lambda n: client.request("POST", f"/containers/{n}/pause").read())


add_unpause = add_pause


def cmd_unpause(client: Client, o: argparse.Namespace) -> int:
    return _each(client, o.containers, lambda n: client.request("POST", f"/containers/{n}/unpause").read())


def add_rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container (uses SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes associated with the container")
    p.add_argument("-l", "--link", action="store_true", help="Remove the specified link")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_rm(client: Client, o: argparse.Namespace) -> int:
    params = {"force": o.force, "v": o.volumes, "link": o.link}
    return _each(client, o.containers, lambda n: client.request("DELETE", f"/containers/{n}", params).read())


def add_rename(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")


def cmd_rename(client: Client, o: argparse.Namespace) -> int:
    if not o.new_name.strip():
        raise CLIError("Error: Neither old nor new names may be empty", 1)
    try:
        client.request("POST", f"/containers/{o.container}/rename", {"name": o.new_name}).read()
    except APIError as e:
        raise CLIError(f"{e}\nError: failed to rename container named {o.container}", 1)
    return 0


def add_container_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. 'until=<timestamp>')")


def confirm(message: str) -> bool:
    sys.stdout.write(f"{message}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    line = sys.stdin.readline().strip().lower()
    return line in ("y", "yes")


def cmd_container_prune(client: Client, o: argparse.Namespace) -> int:
    if not o.force and not confirm("WARNING! This will remove all stopped containers."):
        return 0
    res = client.post_json("/containers/prune", params={"filters": filters_param(o.filter)}) or {}
    deleted = res.get("ContainersDeleted") or []
    if deleted:
        print("Deleted Containers:")
        for d in deleted:
            print(d)
        print()
    print(f"Total reclaimed space: {fmt.human_size(res.get('SpaceReclaimed', 0))}")
    return 0


# ------------------------------------------------------------------------------ logs


def parse_timestamp(value: str, now: float | None = None) -> str:
    """--since/--until: a Go duration (relative), a unix time or an RFC 3339 date -> unix seconds."""
    from berth.cli.options import UsageError, duration_ns

    now = time.time() if now is None else now
    v = value.strip()
    if not v:
        return ""
    try:
        float(v)
        return v
    except ValueError:
        pass
    try:
        return str(int(now - duration_ns(v) / 1e9))
    except UsageError:
        pass
    try:
        if len(v) == 10:
            v += "T00:00:00Z"
        elif "Z" not in v and "+" not in v[10:] and "-" not in v[10:]:
            v += "Z"
        return f"{fmt.parse_rfc3339(v):.9f}"
    except ValueError:
        raise CLIError(f'invalid value for "since": failed to parse value as time or duration: "{value}"', 1)


def add_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("--since", default="", help="Show logs since timestamp or relative (e.g. 42m for 42 minutes)")
    p.add_argument("--until", default="", help="Show logs before a timestamp or relative")
    p.add_argument("-n", "--tail", default="all", help='Number of lines to show from the end of the logs (default "all")')
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--details", action="store_true", help="Show extra details provided to logs")
    p.add_argument("container", metavar="CONTAINER")


def cmd_logs(client: Client, o: argparse.Namespace) -> int:
    from berth.client.stream import Demuxer

    info = client.get_json(f"/containers/{o.container}/json")
    tty = bool((info.get("Config") or {}).get("Tty"))
    params = {
        "details": o.details, "follow": o.follow, "since": parse_timestamp(o.since) or None,
        "stderr": True, "stdout": True, "tail": o.tail, "timestamps": o.timestamps,
        "until": parse_timestamp(o.until) or None,
    }
    r = client.request("GET", f"/containers/{info['Id']}/logs", params)
    demux = None if tty else Demuxer()
    for data in r.iter_raw():
        if demux is None:
            os.write(1, data)
        else:
            for stream, payload in demux.feed(data):
                os.write(2 if stream == 2 else 1, payload)
    return 0


# ------------------------------------------------------------------------------ inspect


def dump_json(items: list, sort_keys: bool = False) -> str:
    s = json.dumps(items, indent=4, ensure_ascii=False, sort_keys=sort_keys)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def inspect_output(items: list, template: str, sort_keys: bool = False) -> str:
    """`sort_keys`: the CLI re-encodes volumes from a struct (fields in alphabetical order)."""
    if not template:
        return dump_json(items, sort_keys)
    from berth.cli import template as tpl

    if template == "json":
        return "".join(tpl.go_json(i) + "\n" for i in items)
    t = tpl.Template(fmt.expand_format(template))
    return "".join(t.render(i) + "\n" for i in items)


def add_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", help="Format output using a custom template")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes if the type is container")
    p.add_argument("--type", default="", choices=["", "container", "image", "volume", "network"],
                   help="Only inspect objects of the given type")
    p.add_argument("names", nargs="+", metavar="NAME|ID")


_KINDS = {
    "container": lambda c, n, size: c.get_json(f"/containers/{n}/json", {"size": size}),
    "image": lambda c, n, size: c.get_json(f"/images/{Client.q(n)}/json"),
    "network": lambda c, n, size: c.get_json(f"/networks/{n}"),
    "volume": lambda c, n, size: c.get_json(f"/volumes/{n}"),
}


def run_inspect(client: Client, names: list[str], kinds: list[str], template: str, size: bool, label: str) -> int:
    from berth.cli import template as tpl

    found = []
    errors = []
    for n in names:
        last_err = ""
        for kind in kinds:
            try:
                found.append(_KINDS[kind](client, n, size))
                break
            except APIError as e:
                last_err = str(e)
                if e.status != 404:
                    errors.append(last_err)
                    break
        else:
            errors.append(f"Error: No such {label}: {n}" if label == "object" else last_err)
    if template and template != "json":
        tpl.Template(fmt.expand_format(template))  # a malformed template fails before any output
    sys.stdout.write(inspect_output(found, template, sort_keys=kinds == ["volume"]))
    sys.stdout.flush()
    for e in errors:
        _err(e)
    return 1 if errors else 0


def cmd_inspect(client: Client, o: argparse.Namespace) -> int:
    kinds = [o.type] if o.type else ["container", "image", "network", "volume"]
    return run_inspect(client, o.names, kinds, o.format, o.size, o.type or "object")


def add_container_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", help="Format output using a custom template")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    p.add_argument("names", nargs="+", metavar="CONTAINER")


def cmd_container_inspect(client: Client, o: argparse.Namespace) -> int:
    return run_inspect(client, o.names, ["container"], o.format, o.size, "container")


# ------------------------------------------------------------------------------ top / port / diff


def add_top(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]")


def cmd_top(client: Client, o: argparse.Namespace) -> int:
    params = {"ps_args": " ".join(o.ps_args) or None}
    res = client.get_json(f"/containers/{o.container}/top", params) or {}
    lines = ["\t".join(res.get("Titles") or [])]
    lines += ["\t".join(str(x) for x in proc) for proc in res.get("Processes") or []]
    sys.stdout.write(fmt.tabwrite(lines, minwidth=20, padding=3))
    return 0


def add_port(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


def cmd_port(client: Client, o: argparse.Namespace) -> int:
    info = client.get_json(f"/containers/{o.container}/json")
    ports = ((info.get("NetworkSettings") or {}).get("Ports")) or {}
    if o.private_port:
        port, _, proto = o.private_port.partition("/")
        key = f"{port}/{proto or 'tcp'}"
        binds = ports.get(key)
        if not binds:
            raise CLIError(f"Error: No public port '{o.private_port}' published for {o.container}", 1)
        for b in binds:
            print(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}")
        return 0
    for key in sorted(ports, key=lambda k: (int(k.split("/")[0].split("-")[0]), k)):
        for b in ports[key] or []:
            print(f"{key} -> {b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}")
    return 0


def add_diff(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")


def cmd_diff(client: Client, o: argparse.Namespace) -> int:
    kinds = {0: "C", 1: "A", 2: "D"}
    for ch in client.get_json(f"/containers/{o.container}/changes") or []:
        print(f"{kinds.get(ch.get('Kind'), '?')} {ch.get('Path')}")
    return 0


# ------------------------------------------------------------------------------ commit / export / update


def add_commit(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--author", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", help="Commit message")
    p.add_argument("-p", "--pause", default="true", choices=["true", "false"], help="Pause container during commit")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", default="", metavar="[REPOSITORY[:TAG]]")


def cmd_commit(client: Client, o: argparse.Namespace) -> int:
    from berth.cli.run import split_ref

    repo = tag = ""
    if o.repository:
        repo, tag = split_ref(o.repository)
    params = {"author": o.author, "changes": o.change or None, "comment": o.message, "container": o.container,
              "pause": None if o.pause == "true" else "0", "repo": repo, "tag": tag}
    res = client.post_json("/commit", params=params) or {}
    print(res.get("Id", ""))
    return 0


def _output_stream(path: str, what: str):
    if path:
        return open(path, "wb")  # noqa: SIM115 - closed by the caller
    if os.isatty(1):
        raise CLIError(f"Cowardly refusing to save to a terminal. Use the -o flag or redirect{what}", 1)
    return os.fdopen(os.dup(1), "wb")


def copy_to_output(resp, path: str) -> None:
    """Stream a body into -o PATH (written to a temp file, then renamed) or stdout."""
    if not path:
        out = _output_stream("", "")
        with out:
            for chunk in resp.iter_raw():
                out.write(chunk)
        return
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as out:
            for chunk in resp.iter_raw():
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")
    p.add_argument("container", metavar="CONTAINER")


def cmd_export(client: Client, o: argparse.Namespace) -> int:
    if not o.output and os.isatty(1):
        raise CLIError("Cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    copy_to_output(client.request("GET", f"/containers/{o.container}/export"), o.output)
    return 0


def add_update(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--blkio-weight", type=int, default=None, help="Block IO (relative weight), between 10 and 1000, or 0 to disable")
    a("--cpu-period", type=int, default=None, help="Limit CPU CFS (Completely Fair Scheduler) period")
    a("--cpu-quota", type=int, default=None, help="Limit CPU CFS (Completely Fair Scheduler) quota")
    a("--cpus", default=None, help="Number of CPUs")
    a("-c", "--cpu-shares", type=int, default=None, help="CPU shares (relative weight)")
    a("--cpuset-cpus", default=None, help="CPUs in which to allow execution (0-3, 0,1)")
    a("--cpuset-mems", default=None, help="MEMs in which to allow execution (0-3, 0,1)")
    a("-m", "--memory", default=None, help="Memory limit")
    a("--memory-reservation", default=None, help="Memory soft limit")
    a("--memory-swap", default=None, help="Swap limit equal to memory plus swap: -1 to enable unlimited swap")
    a("--pids-limit", type=int, default=None, help="Tune container pids limit (set -1 for unlimited)")
    a("--restart", default=None, help="Restart policy to apply when a container exits")
    a("containers", nargs="+", metavar="CONTAINER")


def cmd_update(client: Client, o: argparse.Namespace) -> int:
    from berth.cli.options import UsageError, mem_or_unlimited, parse_restart, ram_bytes

    try:
        body: dict = {}
        if o.blkio_weight is not None:
            body["BlkioWeight"] = o.blkio_weight
        if o.cpu_period is not None:
            body["CpuPeriod"] = o.cpu_period
        if o.cpu_quota is not None:
            body["CpuQuota"] = o.cpu_quota
        if o.cpus is not None:
            body["NanoCpus"] = int(round(float(o.cpus) * 1e9))
        if o.cpu_shares is not None:
            body["CpuShares"] = o.cpu_shares
        if o.cpuset_cpus is not None:
            body["CpusetCpus"] = o.cpuset_cpus
        if o.cpuset_mems is not None:
            body["CpusetMems"] = o.cpuset_mems
        if o.memory is not None:
            body["Memory"] = ram_bytes(o.memory, "--memory")
        if o.memory_reservation is not None:
            body["MemoryReservation"] = ram_bytes(o.memory_reservation, "--memory-reservation")
        if o.memory_swap is not None:
            body["MemorySwap"] = mem_or_unlimited(o.memory_swap, "--memory-swap")
        if o.pids_limit is not None:
            body["PidsLimit"] = o.pids_limit
        if o.restart is not None:
            body["RestartPolicy"] = parse_restart(o.restart)
    except (UsageError, ValueError) as e:
        raise CLIError(f"berth: {e}\nSee 'berth update --help'.", 125)
    if not body:
        raise CLIError("berth: you must provide one or more flags when using this command\nSee 'berth update --help'.", 1)

    def upd(n: str) -> None:
        res = client.post_json(f"/containers/{n}/update", body) or {}
        for w in res.get("Warnings") or []:
            _err(f"WARNING: {w}")

    return _each(client, o.containers, upd)


# ------------------------------------------------------------------------------ stats


class StatsRow:
    HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
               "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
               "PIDs": "PIDS"}
    FIELDS = ("BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs")

    def __init__(self, key: str, s: dict | None, trunc: bool = True) -> None:
        s = s or {}
        self.Container = key
        ident = s.get("id", "") or key
        self.ID = fmt.short_id(ident) if trunc else ident
        self.Name = (s.get("name") or "--").lstrip("/")
        cpu = s.get("cpu_stats") or {}
        pre = s.get("precpu_stats") or {}
        cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage", 0) or 0) - ((pre.get("cpu_usage") or {}).get("total_usage", 0) or 0)
        sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
        ncpu = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
        cpu_pct = cpu_delta / sys_delta * ncpu * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
        mem = s.get("memory_stats") or {}
        mstats = mem.get("stats") or {}
        usage = mem.get("usage", 0) or 0
        if "total_inactive_file" in mstats:
            usage -= min(usage, mstats["total_inactive_file"])
        elif "inactive_file" in mstats:
            usage -= min(usage, mstats["inactive_file"])
        limit = mem.get("limit", 0) or 0
        rx = sum((n.get("rx_bytes", 0) or 0) for n in (s.get("networks") or {}).values())
        tx = sum((n.get("tx_bytes", 0) or 0) for n in (s.get("networks") or {}).values())
        rd = wr = 0
        for e in ((s.get("blkio_stats") or {}).get("io_service_bytes_recursive")) or []:
            op = (e.get("op") or "").lower()
            if op == "read":
                rd += e.get("value", 0) or 0
            elif op == "write":
                wr += e.get("value", 0) or 0
        have = bool(s)
        self.CPUPerc = f"{cpu_pct:.2f}%" if have else "--"
        self.MemUsage = f"{fmt.bytes_size(usage)} / {fmt.bytes_size(limit)}" if have else "-- / --"
        self.MemPerc = f"{(usage / limit * 100.0) if limit else 0.0:.2f}%" if have else "--"
        self.NetIO = f"{fmt.human_size(rx)} / {fmt.human_size(tx)}" if have else "--"
        self.BlockIO = f"{fmt.human_size(rd)} / {fmt.human_size(wr)}" if have else "--"
        self.PIDs = str((s.get("pids_stats") or {}).get("current", 0)) if have else "--"

    def __template_json__(self) -> dict:
        return {f: getattr(self, f) for f in self.FIELDS}


STATS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"


def add_stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("--no-stream", action="store_true", help="Disable streaming stats and only pull the first result")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def _stats_once(client: Client, key: str) -> dict | None:
    try:
        return client.get_json(f"/containers/{key}/stats", {"stream": "0"})
    except APIError:
        return None


def cmd_stats(client: Client, o: argparse.Namespace) -> int:
    def keys() -> list[str]:
        if o.containers:
            return list(o.containers)
        items = client.get_json("/containers/json", {"all": o.all}) or []
        return [fmt.short_id(c["Id"]) for c in items]

    def draw(rows: list[StatsRow], clear: bool) -> None:
        text = fmt.render(o.format, rows, StatsRow.HEADERS, STATS_TABLE)
        if clear:
            text = "\033[2J\033[H" + text
        sys.stdout.write(text)
        sys.stdout.flush()

    if o.no_stream:
        rows = []
        failed = []
        for k in keys():
            s = _stats_once(client, k)
            if s is None and o.containers:
                failed.append(k)
                continue
            rows.append(StatsRow(k, s, not o.no_trunc))
        if failed:  # like docker: the errors alone, no table
            for k in failed:
                _err(f"Error response from daemon: No such container: {k}")
            return 1
        draw(rows, False)
        return 0
    if len(o.containers) == 1:
        from berth.client.stream import json_messages

        r = client.request("GET", f"/containers/{o.containers[0]}/stats", {"stream": "1"})
        for msg in json_messages(r.iter_raw()):
            draw([StatsRow(o.containers[0], msg if isinstance(msg, dict) else None, not o.no_trunc)], os.isatty(1))
        return 0
    while True:
        draw([StatsRow(k, _stats_once(client, k), not o.no_trunc) for k in keys()], os.isatty(1))
        time.sleep(1)
