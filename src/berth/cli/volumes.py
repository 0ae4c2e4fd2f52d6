"""volume create / ls / inspect / rm / prune."""

from __future__ import annotations

import argparse
import sys

from berth.cli import format as fmt
from berth.cli.containers import confirm, run_inspect
from berth.client import APIError, Client, filters_param


class VolumeRow:
    HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
               "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "CreatedAt": "CREATED AT"}
    FIELDS = ("Availability", "Driver", "Group", "Labels", "Links", "Mountpoint", "Name", "Scope", "Size", "Status")

    def __init__(self, v: dict) -> None:
        self._v = v
        self.Name = v.get("Name", "")
        self.Driver = v.get("Driver", "")
        self.Scope = v.get("Scope", "")
        self.Mountpoint = v.get("Mountpoint", "")
        self.CreatedAt = v.get("CreatedAt", "")
        self.Availability = "N/A"
        self.Group = "N/A"
        self.Status = "N/A"

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in (self._v.get("Labels") or {}).items())

    def Label(self, name: str) -> str:
        return (self._v.get("Labels") or {}).get(name, "")

    @property
    def Links(self) -> str:
        u = self._v.get("UsageData")
        return "N/A" if not u or u.get("RefCount", -1) < 0 else str(u["RefCount"])

    @property
    def Size(self) -> str:
        u = self._v.get("UsageData")
        return "N/A" if not u or u.get("Size", -1) < 0 else fmt.human_size(u["Size"], 4)

    def __template_json__(self) -> dict:
        return {f: getattr(self, f) for f in self.FIELDS}


def add_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--driver", default="local", help="Specify volume driver name")
    p.add_argument("--label", action="append", default=[], help="Set metadata for a volume")
    p.add_argument("-o", "--opt", action="append", default=[], help="Set driver specific options")
    p.add_argument("--name", default="", help=argparse.SUPPRESS)
    p.add_argument("vol_name", nargs="?", default="", metavar="VOLUME")


def cmd_create(client: Client, o: argparse.Namespace) -> int:
    from berth.cli.errors import CLIError

    if o.name and o.vol_name and o.name != o.vol_name:
        raise CLIError("conflicting options: either specify --name or provide positional arg, not both", 1)
    body: dict = {"Driver": o.driver}
    name = o.vol_name or o.name
    if name:
        body["Name"] = name
    if o.opt:
        body["DriverOpts"] = dict(x.partition("=")[::2] for x in o.opt)
    if o.label:
        body["Labels"] = dict(x.partition("=")[::2] for x in o.label)
    res = client.post_json("/volumes/create", body) or {}
    print(res.get("Name", ""))
    return 0


def add_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filter", action="append", default=[], help="Provide filter values (e.g. 'dangling=true')")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")


def cmd_ls(client: Client, o: argparse.Namespace) -> int:
    res = client.get_json("/volumes", {"filters": filters_param(o.filter)}) or {}
    rows = sorted((VolumeRow(v) for v in res.get("Volumes") or []), key=lambda r: r.Name)
    for w in res.get("Warnings") or []:
        sys.stderr.write(f"{w}\n")
    f = o.format or ("{{.Name}}" if o.quiet else "")
    sys.stdout.write(fmt.render(f, rows, VolumeRow.HEADERS, "table {{.Driver}}\t{{.Name}}"))
    return 0


def add_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", help="Format output using a custom template")
    p.add_argument("names", nargs="+", metavar="VOLUME")


def cmd_inspect(client: Client, o: argparse.Namespace) -> int:
    return run_inspect(client, o.names, ["volume"], o.format, False, "volume")


def add_rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of one or more volumes")
    p.add_argument("names", nargs="+", metavar="VOLUME")


def cmd_rm(client: Client, o: argparse.Namespace) -> int:
    failed = False
    for n in o.names:
        try:
            client.request("DELETE", f"/volumes/{n}", {"force": o.force}).read()
            print(n)
        except APIError as e:
            sys.stderr.write(f"{e}\n")
            failed = True
    return 1 if failed else 0


def add_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused volumes, not just anonymous ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. 'label=<label>')")


def cmd_prune(client: Client, o: argparse.Namespace) -> int:
    if not o.force and not confirm("WARNING! This will remove anonymous local volumes not used by at least one container."
                                   if not o.all else "WARNING! This will remove all local volumes not used by at least one container."):
        return 0
    filters = filters_param(o.filter) or {}
    if o.all:  # named volumes too (the API >= 1.42 meaning of a bare prune is anonymous ones only)
        filters["all"] = {"true": True}
    res = client.post_json("/volumes/prune", params={"filters": filters or None}) or {}
    deleted = res.get("VolumesDeleted") or []
    if deleted:
        print("Deleted Volumes:")
        for d in deleted:
            print(d)
        print()
    print(f"Total reclaimed space: {fmt.human_size(res.get('SpaceReclaimed', 0) or 0, 4)}")
    return 0
