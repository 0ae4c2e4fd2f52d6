"""info, version, events, audit, system df (and `berth daemon`, dispatched in main)."""

from __future__ import annotations

import argparse
import platform
import sys
import time

from berth.cli import format as fmt
from berth.cli.errors import CLIError
from berth.client import Client, ClientError, filters_param

CLIENT_VERSION = "0.1.0"


def _template_out(template: str, data) -> None:
    from berth.cli import template as tpl

    if template == "json":
        template = "{{json .}}"
    sys.stdout.write(tpl.Template(fmt.expand_format(template)).render(data) + "\n")


# ------------------------------------------------------------------------------ info


def add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", help="Format output using a custom template")


def cmd_info(client: Client, o: argparse.Namespace) -> int:
    info = client.get_json("/info") or {}
    if o.format:
        _template_out(o.format, info)
        return 0
    g = info.get
    lines = [
        "Client:",
        f" Version:    {CLIENT_VERSION}",
        " Context:    default",
        f" Debug Mode: {'true' if o.debug else 'false'}",
        "",
        "Server:",
        f" Containers: {g('Containers', 0)}",
        f"  Running: {g('ContainersRunning', 0)}",
        f"  Paused: {g('ContainersPaused', 0)}",
        f"  Stopped: {g('ContainersStopped', 0)}",
        f" Images: {g('Images', 0)}",
        f" Server Version: {g('ServerVersion', '')}",
        f" Storage Driver: {g('Driver', '')}",
    ]
    for k, v in g("DriverStatus") or []:
        lines.append(f"  {k}: {v}")
    log_driver = g("LoggingDriver")
    if log_driver:
        lines.append(f" Logging Driver: {log_driver}")
    lines.append(f" Cgroup Driver: {g('CgroupDriver', '')}")
    lines.append(f" Cgroup Version: {g('CgroupVersion', '')}")
    plugins = g("Plugins") or {}
    if plugins:
        lines.append(" Plugins:")
        for kind in ("Volume", "Network", "Log"):
            if plugins.get(kind):
                lines.append(f"  {kind}: {' '.join(plugins[kind])}")
    runtimes = g("Runtimes") or {}
    if runtimes:
        lines.append(f" Runtimes: {' '.join(sorted(runtimes))}")
        lines.append(f" Default Runtime: {g('DefaultRuntime', '')}")
    sec = g("SecurityOptions") or []
    if sec:
        lines.append(" Security Options:")
        for s in sec:
            parts = dict(p.partition("=")[::2] for p in s.split(","))
            lines.append(f"  {parts.pop('name', s)}")
            for k, v in parts.items():
                lines.append(f"   {k.capitalize()}: {v}")
    lines += [
        f" Kernel Version: {g('KernelVersion', '')}",
        f" Operating System: {g('OperatingSystem', '')}",
        f" OSType: {g('OSType', '')}",
        f" Architecture: {g('Architecture', '')}",
        f" CPUs: {g('NCPU', 0)}",
        f" Total Memory: {fmt.bytes_size(g('MemTotal', 0) or 0)}",
        f" Name: {g('Name', '')}",
        f" ID: {g('ID', '')}",
        f" Berth Root Dir: {g('DockerRootDir', '')}",
        f" Debug Mode: {'true' if g('Debug') else 'false'}",
    ]
    if g("Labels"):
        lines.append(" Labels:")
        lines += [f"  {x}" for x in g("Labels")]
    lines.append(f" Experimental: {'true' if g('ExperimentalBuild') else 'false'}")
    lines.append(f" Live Restore Enabled: {'true' if g('LiveRestoreEnabled') else 'false'}")
    lines.append("")
    sys.stdout.write("\n".join(lines) + "\n")
    for w in g("Warnings") or []:
        sys.stderr.write(w + "\n")
    return 0


# ------------------------------------------------------------------------------ version


def add_version(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", help="Format output using a custom template")


def cmd_version(client: Client, o: argparse.Namespace) -> int:
    from berth.client.api import MAX_API_VERSION

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    client_info = {"Version": CLIENT_VERSION, "ApiVersion": MAX_API_VERSION, "DefaultAPIVersion": MAX_API_VERSION,
                   "PythonVersion": platform.python_version(), "Os": "linux", "Arch": arch, "Context": "default"}
    server = None
    err = None
    try:
        server = client.get_json("/version")
    except ClientError as e:
        err = e
    if o.format:
        _template_out(o.format, {"Client": client_info, "Server": server})
        if err:
            raise CLIError(str(err), 1)
        return 0
    api = client.api_version or MAX_API_VERSION
    down = f" (downgraded from {MAX_API_VERSION})" if api != MAX_API_VERSION else ""
    out = [
        "Client:",
        f" Version:           {CLIENT_VERSION}",
        f" API version:       {api}{down}",
        f" Python version:    {platform.python_version()}",
        f" OS/Arch:           linux/{arch}",
        " Context:           default",
    ]
    if server:
        name = (server.get("Platform") or {}).get("Name", "berth")
        out += ["", f"Server: {name}".rstrip()]
        for comp in server.get("Components") or []:
            out.append(f" {comp.get('Name')}:")
            out.append(f"  Version:          {comp.get('Version')}")
            details = comp.get("Details") or {}
            if comp.get("Name") == "Engine":
                out.append(f"  API version:      {details.get('ApiVersion', server.get('ApiVersion'))} "
                           f"(minimum version {details.get('MinAPIVersion', server.get('MinAPIVersion'))})")
                for k, label in (("GoVersion", "Go version"), ("GitCommit", "Git commit"), ("BuildTime", "Built")):
                    if details.get(k) or server.get(k):
                        out.append(f"  {label + ':':<18}{details.get(k) or server.get(k)}")
                out.append(f"  OS/Arch:          {details.get('Os', server.get('Os'))}/{details.get('Arch', server.get('Arch'))}")
                if details.get("KernelVersion") or server.get("KernelVersion"):
                    out.append(f"  Kernel version:   {details.get('KernelVersion') or server.get('KernelVersion')}")
                out.append(f"  Experimental:     {details.get('Experimental', 'false')}")
            else:
                for k, v in details.items():
                    out.append(f"  {k + ':':<18}{v}")
    sys.stdout.write("\n".join(out) + "\n")
    if err:
        raise CLIError(str(err), 1)
    return 0


# ------------------------------------------------------------------------------ events


def _rfc3339nano(time_nano: int) -> str:
    """RFC 3339 with all nine fraction digits (docker's RFC3339NanoFixed)."""
    secs, nanos = divmod(int(time_nano), 1_000_000_000)
    t = time.localtime(secs)
    off = time.strftime("%z", t)
    tz = "Z" if off == "+0000" else f"{off[:3]}:{off[3:]}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{nanos:09d}" + tz  # fixed width, as docker prints


def format_event(ev: dict) -> str:
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    tn = ev.get("timeNano") or int(ev.get("time", 0)) * 1_000_000_000
    s = f"{_rfc3339nano(tn)} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    if attrs:
        s += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return s


def add_events(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("--since", default="", help="Show all events created since timestamp")
    p.add_argument("--until", default="", help="Stream events until this timestamp")


def cmd_events(client: Client, o: argparse.Namespace) -> int:
    from berth.cli import template as tpl
    from berth.cli.containers import parse_timestamp
    from berth.client.stream import json_messages

    params = {"filters": filters_param(o.filter), "since": parse_timestamp(o.since) or None,
              "until": parse_timestamp(o.until) or None}
    t = None
    if o.format:
        f = "{{json .}}" if o.format == "json" else o.format
        t = tpl.Template(fmt.expand_format(f))
    r = client.request("GET", "/events", params)
    for ev in json_messages(r.iter_raw()):
        if not isinstance(ev, dict):
            continue
        # the Go struct omits these when empty (omitempty); so does `{{json .}}` in docker
        ev = {k: v for k, v in ev.items() if not (k in ("status", "id", "from") and v == "")}
        line = t.render(ev) if t else format_event(ev)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------ audit


class AuditRow:
    HEADERS = {"Time": "TIME", "UID": "UID", "GID": "GID", "PID": "PID", "Method": "METHOD", "Path": "PATH",
               "Object": "OBJECT", "Status": "STATUS", "Error": "ERROR", "Query": "QUERY", "RID": "RID"}
    FIELDS = ("Error", "GID", "Method", "Object", "PID", "Path", "Query", "RID", "Status", "Time", "UID")

    def __init__(self, rec: dict) -> None:
        self._r = rec
        self.Time = rec.get("time", "")
        self.UID = _cell(rec.get("uid"))
        self.GID = _cell(rec.get("gid"))
        self.PID = _cell(rec.get("pid"))
        self.Method = rec.get("method", "")
        self.Path = rec.get("path", "")
        self.Query = rec.get("query", "") or ""
        self.Object = rec.get("object") or ""
        self.RID = _cell(rec.get("rid"))
        # null: berthd died while answering it (error says so), or it is still in flight
        self.Status = _cell(rec.get("status"))
        self.Error = " ".join(str(rec.get("error") or "").split())  # one line per record

    def __template_json__(self) -> dict:
        return self._r


def _cell(v: object) -> str:
    """A table cell: "-" for a missing or null value (never "None")."""
    return "-" if v is None or v == "" else str(v)


def add_audit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="", help="Only records since this time (timestamp or relative, e.g. 10m)")
    p.add_argument("--until", default="", help="Only records until this time")
    p.add_argument("--uid", type=int, default=None, help="Only records of requests made by this uid")
    p.add_argument("--object", default="", help="Only records naming this container/image/volume (id prefix or name)")
    p.add_argument("-n", "--limit", type=int, default=None, help="Only the last N records")
    p.add_argument("--format", default="", help="Format output using a custom template ('json' for JSON lines)")


def cmd_audit(client: Client, o: argparse.Namespace) -> int:
    from berth.cli.containers import parse_timestamp

    params = {"since": parse_timestamp(o.since) or None, "until": parse_timestamp(o.until) or None,
              "uid": o.uid, "object": o.object or None, "limit": o.limit}
    res = client.get_json("/berth/audit", params)
    if isinstance(res, dict):
        res = res.get("Records") or res.get("records") or []
    rows = [AuditRow(r) for r in res or []]
    table = "table {{.Time}}\t{{.UID}}\t{{.PID}}\t{{.Method}}\t{{.Path}}\t{{.Status}}\t{{.Error}}"
    sys.stdout.write(fmt.render(o.format, rows, AuditRow.HEADERS, table))
    return 0


# ------------------------------------------------------------------------------ system df


def add_df(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="Show detailed information on space usage")
    p.add_argument("--format", default="", help="Format output using a custom template")


def _reclaim(reclaimable: int, size: int, pct: bool = True) -> str:
    s = fmt.human_size(reclaimable, 4)
    if pct and size > 0:
        s += f" ({int(100 * reclaimable / size)}%)"
    return s


def cmd_df(client: Client, o: argparse.Namespace) -> int:
    from berth.cli.containers import ContainerRow
    from berth.cli.images import ImageRow, image_rows
    from berth.cli.volumes import VolumeRow

    df = client.get_json("/system/df") or {}
    images = df.get("Images") or []
    containers = df.get("Containers") or []
    volumes = df.get("Volumes") or []
    layers = df.get("LayersSize", 0) or 0
    # as docker: images whose Size or SharedSize is unknown (-1) do not count as used
    used = sum(i["Size"] - i["SharedSize"] for i in images
               if (i.get("Containers") or 0) > 0 and i.get("Size", -1) != -1 and i.get("SharedSize", -1) != -1)
    img_active = sum(1 for i in images if (i.get("Containers") or 0) > 0)
    c_size = sum(c.get("SizeRw", 0) or 0 for c in containers)
    c_reclaim = sum(c.get("SizeRw", 0) or 0 for c in containers if c.get("State") != "running")
    c_active = sum(1 for c in containers if c.get("State") == "running")
    v_sizes = [((v.get("UsageData") or {}).get("Size", -1), (v.get("UsageData") or {}).get("RefCount", -1)) for v in volumes]
    v_size = sum(s for s, _ in v_sizes if s > 0)
    v_reclaim = sum(s for s, r in v_sizes if s > 0 and r == 0)
    v_active = sum(1 for _, r in v_sizes if r > 0)
    bc = df.get("BuilderSize", 0) or 0
    summary = [
        {"Type": "Images", "TotalCount": str(len(images)), "Active": str(img_active), "Size": fmt.human_size(layers, 4),
         "Reclaimable": _reclaim(max(0, layers - used), layers)},
        {"Type": "Containers", "TotalCount": str(len(containers)), "Active": str(c_active),
         "Size": fmt.human_size(c_size, 4), "Reclaimable": _reclaim(c_reclaim, c_size)},
        {"Type": "Local Volumes", "TotalCount": str(len(volumes)), "Active": str(v_active),
         "Size": fmt.human_size(v_size, 4), "Reclaimable": _reclaim(v_reclaim, v_size)},
        {"Type": "Build Cache", "TotalCount": str(len(df.get("BuildCache") or [])), "Active": "0",
         "Size": fmt.human_size(bc, 4), "Reclaimable": fmt.human_size(bc, 4)},
    ]
    headers = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
    if not o.verbose:
        sys.stdout.write(fmt.render(o.format, summary, headers,
                                    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"))
        return 0
    out = ["Images space usage:\n"]
    first_tag_only = [{**i, "RepoTags": (i.get("RepoTags") or [])[:1]} for i in images]  # docker shows one row each
    out.append(fmt.render("", image_rows(first_tag_only, True, False), ImageRow.HEADERS,
                          "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"))
    out.append("\nContainers space usage:\n\n")
    out.append(fmt.render("", [ContainerRow(c) for c in containers], ContainerRow.HEADERS,
                          "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"))
    out.append("\nLocal Volumes space usage:\n\n")
    out.append(fmt.render("", [VolumeRow(v) for v in volumes], VolumeRow.HEADERS, "table {{.Name}}\t{{.Links}}\t{{.Size}}"))
    out.append(f"\nBuild cache usage: {fmt.human_size(bc, 4)}\n\n")
    out.append(fmt.tabwrite(["CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED"]))
    out[0] = "Images space usage:\n\n"
    sys.stdout.write("".join(out))
    return 0


def add_daemon(p: argparse.ArgumentParser) -> None:  # only for --help: main() dispatches `daemon` itself
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to berthd")


def cmd_daemon(client: Client, o: argparse.Namespace) -> int:
    from berth.daemon.main import main as daemon_main

    return daemon_main(list(o.args)) or 0
