"""Image commands: images, rmi, tag, history, save, load, import, pull, image inspect/prune/bootstrap."""

from __future__ import annotations

import argparse
import os
import sys
import time

from berth.cli import format as fmt
from berth.cli.containers import confirm, copy_to_output, run_inspect
from berth.cli.errors import CLIError
from berth.client import APIError, Client, StreamError, filters_param


def _err(msg: str) -> None:
    sys.stderr.write(msg.rstrip("\n") + "\n")


def _check_stream(msg) -> dict:
    if not isinstance(msg, dict):
        return {}
    if msg.get("error") or msg.get("errorDetail"):
        d = msg.get("errorDetail") or {}
        raise StreamError(d.get("message") or msg.get("error") or "unknown error", d.get("code"))
    return msg


# ------------------------------------------------------------------------------ images


class ImageRow:
    HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
               "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "SharedSize": "SHARED SIZE",
               "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE", "Containers": "CONTAINERS"}
    FIELDS = ("Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository", "SharedSize", "Size",
              "Tag", "UniqueSize", "VirtualSize")

    def __init__(self, img: dict, repo: str, tag: str, digest: str, trunc: bool) -> None:
        self._i = img
        self.Repository = repo
        self.Tag = tag
        self.Digest = digest
        ident = img.get("Id", "")
        self.ID = fmt.short_id(ident) if trunc else ident

    @property
    def CreatedSince(self) -> str:
        return fmt.since(self._i.get("Created", 0))

    @property
    def CreatedAt(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(self._i.get("Created", 0)))

    @property
    def Size(self) -> str:
        return fmt.human_size(self._i.get("Size", 0) or 0)

    @property
    def VirtualSize(self) -> str:
        return fmt.human_size(self._i.get("VirtualSize", self._i.get("Size", 0)) or 0, 4)

    @property
    def SharedSize(self) -> str:
        s = self._i.get("SharedSize", -1)
        return "N/A" if s is None or s < 0 else fmt.human_size(s, 4)

    @property
    def UniqueSize(self) -> str:
        s = self._i.get("SharedSize", -1)
        return "N/A" if s is None or s < 0 else fmt.human_size((self._i.get("Size", 0) or 0) - s, 4)

    @property
    def Containers(self) -> str:
        c = self._i.get("Containers", -1)
        return "N/A" if c is None or c < 0 else str(c)

    def __template_json__(self) -> dict:
        return {f: getattr(self, f) for f in self.FIELDS}


def image_rows(items: list[dict], trunc: bool, digests: bool) -> list[ImageRow]:
    rows = []
    for img in items:
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        dig = [d for d in img.get("RepoDigests") or [] if d != "<none>@<none>"]
        by_repo = {}
        for d in dig:
            repo, _, h = d.partition("@")
            by_repo.setdefault(repo, h)
        if not tags:
            if dig and digests:
                for d in dig:
                    repo, _, h = d.partition("@")
                    rows.append(ImageRow(img, repo, "<none>", h, trunc))
            else:
                rows.append(ImageRow(img, (dig[0].partition("@")[0] if dig else "<none>"), "<none>",
                                     (dig[0].partition("@")[2] if dig else "<none>"), trunc))
            continue
        for t in tags:
            slash, colon = t.rfind("/"), t.rfind(":")
            repo, tag = (t[:colon], t[colon + 1:]) if colon > slash else (t, "<none>")
            rows.append(ImageRow(img, repo, tag, by_repo.get(repo, "<none>"), trunc))
    return rows


def _ref_matches(pattern: str, repo: str, tag: str) -> bool:
    from fnmatch import fnmatchcase

    if ":" in pattern.rsplit("/", 1)[-1]:
        return fnmatchcase(f"{repo}:{tag}", pattern)
    return fnmatchcase(repo, pattern)


def add_images(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all images (default hides intermediate images)")
    p.add_argument("--digests", action="store_true", help="Show digests")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("reference", nargs="?", default="", metavar="[REPOSITORY[:TAG]]")


def cmd_images(client: Client, o: argparse.Namespace) -> int:
    filters = filters_param(o.filter) or {}
    if o.reference:
        filters.setdefault("reference", {})[o.reference] = True
    items = client.get_json("/images/json", {"all": o.all, "filters": filters or None}) or []
    rows = image_rows(items, not o.no_trunc, o.digests)
    if o.reference:  # show only the matching tags of a multi-tagged image (as dockerd's filter does)
        rows = [r for r in rows if _ref_matches(o.reference, r.Repository, r.Tag)]
    f = o.format
    if o.quiet and not f:
        f = "{{.ID}}"  # one line per row, repeated ids included, as docker prints them
    table = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}" if o.digests
             else "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}")
    sys.stdout.write(fmt.render(f, rows, ImageRow.HEADERS, table))
    return 0


# ------------------------------------------------------------------------------ rmi / tag


def add_rmi(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_rmi(client: Client, o: argparse.Namespace) -> int:
    failed = False
    for ref in o.images:
        try:
            res = client.delete(f"/images/{Client.q(ref)}", {"force": o.force, "noprune": o.no_prune}) or []
        except APIError as e:
            _err(str(e))
            failed = True
            continue
        for item in res:
            if item.get("Untagged"):
                print(f"Untagged: {item['Untagged']}")
            if item.get("Deleted"):
                print(f"Deleted: {item['Deleted']}")
    return 1 if failed else 0


def add_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def cmd_tag(client: Client, o: argparse.Namespace) -> int:
    from berth.cli.run import split_ref

    repo, tag = split_ref(o.target)
    client.request("POST", f"/images/{Client.q(o.source)}/tag", {"repo": repo, "tag": tag}).read()
    return 0


# ------------------------------------------------------------------------------ history


class HistoryRow:
    HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
               "Size": "SIZE", "Comment": "COMMENT"}
    FIELDS = ("Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size")

    def __init__(self, h: dict, trunc: bool, human: bool) -> None:
        ident = h.get("Id", "")
        self.ID = ident if ident == "<missing>" or not trunc else fmt.short_id(ident)
        created = h.get("Created", 0)
        self.CreatedSince = fmt.since(created) if human else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        self.CreatedAt = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        by = (h.get("CreatedBy") or "").replace("\t", " ")
        self.CreatedBy = fmt.ellipsis(by, 45) if trunc else by
        size = h.get("Size", 0) or 0
        self.Size = fmt.human_size(size) if human else str(size)
        self.Comment = h.get("Comment", "")

    def __template_json__(self) -> dict:
        return {f: getattr(self, f) for f in self.FIELDS}


def add_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("-H", "--human", default="true", choices=["true", "false"], help="Print sizes and dates in human readable format")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("image", metavar="IMAGE")


def cmd_history(client: Client, o: argparse.Namespace) -> int:
    items = client.get_json(f"/images/{Client.q(o.image)}/history") or []
    rows = [HistoryRow(h, not o.no_trunc, o.human == "true") for h in items]
    f = o.format or ("{{.ID}}" if o.quiet else "")
    table = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    sys.stdout.write(fmt.render(f, rows, HistoryRow.HEADERS, table))
    return 0


# ------------------------------------------------------------------------------ save / load / import / pull


def add_save(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_save(client: Client, o: argparse.Namespace) -> int:
    if not o.output and os.isatty(1):
        raise CLIError("Cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    copy_to_output(client.request("GET", "/images/get", {"names": list(o.images)}), o.output)
    return 0


def _file_chunks(f) -> object:
    return iter(lambda: f.read(65536), b"")


def add_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", default="", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")


def cmd_load(client: Client, o: argparse.Namespace) -> int:
    if o.input:
        try:
            f = open(o.input, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise CLIError(f"open {o.input}: {(e.strerror or str(e)).lower()}", 1)
    else:
        if os.isatty(0):
            raise CLIError("requested load from stdin, but stdin is empty", 1)
        f = os.fdopen(os.dup(0), "rb")
    quiet = o.quiet or not os.isatty(1)
    with f:
        for msg in client.stream_json("POST", "/images/load", {"quiet": quiet}, body=_file_chunks(f),
                                      headers={"Content-Type": "application/x-tar"}):
            m = _check_stream(msg)
            if m.get("stream"):
                sys.stdout.write(m["stream"])
            elif m.get("status") and not o.quiet:
                sys.stdout.write(m["status"] + "\n")
    return 0


def add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", help="Set commit message for imported image")
    p.add_argument("--platform", default="", help="Set platform if server is multi-platform capable")
    p.add_argument("file", metavar="file|URL|-")
    p.add_argument("reference", nargs="?", default="", metavar="[REPOSITORY[:TAG]]")


def import_stream(client: Client, chunks, repo: str, changes: list[str], message: str) -> str:
    """`POST /images/create?fromSrc=-` with a chunked rootfs tar; returns the new image id."""
    params = {"changes": changes or None, "fromSrc": "-", "message": message or None, "repo": repo or None}
    image_id = ""
    for msg in client.stream_json("POST", "/images/create", params, body=chunks, headers={"Content-Type": "text/plain"}):
        m = _check_stream(msg)
        if m.get("status"):
            image_id = m["status"]
    return image_id


def cmd_import(client: Client, o: argparse.Namespace) -> int:
    if o.file == "-":
        f = os.fdopen(os.dup(0), "rb")
    elif "://" in o.file:  # the daemon fetches it (docker's fromSrc=URL)
        params = {"changes": o.change or None, "fromSrc": o.file, "message": o.message or None,
                  "repo": o.reference or None}
        image_id = ""
        for msg in client.stream_json("POST", "/images/create", params):
            m = _check_stream(msg)
            if m.get("status"):
                image_id = m["status"]
        print(image_id)
        return 0
    else:
        try:
            f = open(o.file, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise CLIError(f"open {o.file}: {(e.strerror or str(e)).lower()}", 1)
    with f:
        print(import_stream(client, _file_chunks(f), o.reference, o.change, o.message))
    return 0


def add_pull(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("-a", "--all-tags", action="store_true", help="Download all tagged images in the repository")
    p.add_argument("--platform", default="", help="Set platform if server is multi-platform capable")
    p.add_argument("image", metavar="NAME[:TAG|@DIGEST]")


def cmd_pull(client: Client, o: argparse.Namespace) -> int:
    from berth.cli.options import normalize_image
    from berth.cli.run import pull_image

    pull_image(client, o.image, o.quiet, out=sys.stdout)
    print(normalize_image(o.image))
    return 0


# ------------------------------------------------------------------------------ image inspect / prune


def add_image_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", help="Format output using a custom template")
    p.add_argument("names", nargs="+", metavar="IMAGE")


def cmd_image_inspect(client: Client, o: argparse.Namespace) -> int:
    return run_inspect(client, o.names, ["image"], o.format, False, "image")


def add_image_prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. 'until=<timestamp>')")


def cmd_image_prune(client: Client, o: argparse.Namespace) -> int:
    warn = ("WARNING! This will remove all images without at least one container associated to them." if o.all
            else "WARNING! This will remove all dangling images.")
    if not o.force and not confirm(warn):
        return 0
    filters = filters_param(o.filter) or {}
    filters["dangling"] = {"false" if o.all else "true": True}
    res = client.post_json("/images/prune", params={"filters": filters}) or {}
    deleted = res.get("ImagesDeleted") or []
    if deleted:
        print("Deleted Images:")
        for d in deleted:
            if d.get("Untagged"):
                print(f"untagged: {d['Untagged']}")
            if d.get("Deleted"):
                print(f"deleted: {d['Deleted']}")
        print()
    print(f"Total reclaimed space: {fmt.human_size(res.get('SpaceReclaimed', 0) or 0)}")
    return 0


# ------------------------------------------------------------------------------ bootstrap


def add_bootstrap(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", default="busybox:latest", metavar="[NAME[:TAG]]")


def _add_sorted(tf, path: str, arcname: str, flt) -> None:
    """tarfile.add, recursing in sorted order (add() itself sorts too; explicit for clarity)."""
    tf.add(path, arcname=arcname, recursive=False, filter=flt)
    if os.path.isdir(path) and not os.path.islink(path):
        for name in sorted(os.listdir(path)):
            _add_sorted(tf, os.path.join(path, name), f"{arcname}/{name}", flt)


def rootfs_tar_chunks(root: str):
    """A deterministic-enough uncompressed tar of `root` owned by 0:0, streamed through a pipe."""
    import tarfile
    import threading

    r, w = os.pipe()
    err: list[BaseException] = []

    # every entry gets busybox's own mtime: the same busybox gives the same layer (diff id) each time
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or os.stat(os.path.join(root, "bin", "busybox")).st_mtime)

    def owner0(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.mtime = epoch
        return ti

    def produce() -> None:
        try:
            with os.fdopen(w, "wb") as out, tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                for entry in sorted(os.listdir(root)):
                    _add_sorted(tf, os.path.join(root, entry), entry, owner0)
        except BaseException as e:
            err.append(e)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    with os.fdopen(r, "rb") as inp:
        yield from iter(lambda: inp.read(65536), b"")
    t.join()
    if err:
        raise CLIError(f"berth: building the busybox root filesystem tar failed: {err[0]}", 1)


def cmd_bootstrap(client: Client, o: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from berth.bootstrap import make_rootfs
    from berth.cli.options import normalize_image

    client.negotiate()  # fail fast (and clearly) before building anything
    tmp = tempfile.mkdtemp(prefix="berth-bootstrap-")
    try:
        try:
            make_rootfs(os.path.join(tmp, "rootfs"))
        except (OSError, FileNotFoundError) as e:
            raise CLIError(f"berth: cannot build the busybox root filesystem: {e}", 1)
        image_id = import_stream(client, rootfs_tar_chunks(os.path.join(tmp, "rootfs")), normalize_image(o.name),
                                 ['CMD ["sh"]'], "berth image bootstrap (Debian busybox-static)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(image_id)
    return 0
