"""`berth cp`: copy between a container and the host as tar over the archive endpoints."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tarfile
import threading
from collections.abc import Iterator

from berth.cli import format as fmt
from berth.cli.errors import CLIError
from berth.client import APIError, Client

_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27


def add_cp(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output during copy")
    p.add_argument("src", metavar="SRC_PATH")
    p.add_argument("dest", metavar="DEST_PATH")


def _split(arg: str) -> tuple[str | None, str]:
    """`container:path` -> (container, path); a local path (absolute, ./, or without ':') -> (None, path)."""
    if arg == "-" or arg.startswith("/") or arg.startswith(".") or ":" not in arg:
        return None, arg
    c, _, path = arg.partition(":")
    return c, path


def _stat(resp) -> dict:
    raw = resp.header("x-docker-container-path-stat")
    if not raw:
        return {}
    try:
        return json.loads(base64.b64decode(raw))
    except ValueError:
        return {}


def cmd_cp(client: Client, o: argparse.Namespace) -> int:
    sc, sp = _split(o.src)
    dc, dp = _split(o.dest)
    if sc and dc:
        raise CLIError("berth: copying between containers is not supported", 1)
    if not sc and not dc:
        raise CLIError("berth: must specify at least one container source", 1)
    if sc:
        if not sp:
            raise CLIError("berth: source path can not be empty", 1)
        n = copy_from(client, sc, sp, dp)
        if not o.quiet and dp != "-":
            sys.stderr.write(f"Successfully copied {fmt.human_size(n)} to {dp}\n")
    else:
        if not dp:
            raise CLIError("berth: destination path can not be empty", 1)
        n = copy_to(client, sp, dc, dp, o.follow_link)  # type: ignore[arg-type]
        if not o.quiet and sp != "-":
            sys.stderr.write(f"Successfully copied {fmt.human_size(n)} to {dc}:{dp}\n")
    return 0


class _NoChownTar(tarfile.TarFile):
    """Extract like `docker cp`: keep modes and times, never chown on the host."""

    def chown(self, tarinfo, targetpath, numeric_owner):  # type: ignore[override]
        return None


def _safe_member(m: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts or name.startswith("/"):
        raise CLIError(f"berth: refusing to extract {name!r}: the path escapes the destination", 1)
    if m.islnk() and (m.linkname.startswith("/") or ".." in m.linkname.split("/")):
        raise CLIError(f"berth: refusing hard link {name!r} -> {m.linkname!r}", 1)
    m.name = "/".join(parts)
    return m


def copy_from(client: Client, container: str, path: str, dest: str) -> int:
    r = client.request("GET", f"/containers/{container}/archive", {"path": path})
    if dest == "-":
        n = 0
        with os.fdopen(os.dup(1), "wb") as out:
            for chunk in r.iter_raw():
                out.write(chunk)
                n += len(chunk)
        return n
    st = _stat(r)
    src_base = st.get("name") or os.path.basename(path.rstrip("/")) or "."
    src_is_dir = bool(st.get("mode", 0) & _GO_DIR)
    if os.path.isdir(dest):
        target_dir, rename = dest, None
    else:
        if dest.endswith("/"):
            raise CLIError(f"berth: destination directory {dest!r} must exist", 1)
        if os.path.exists(dest) and src_is_dir:
            raise CLIError(f"berth: cannot copy a directory to a file: {dest}", 1)
        parent = os.path.dirname(os.path.abspath(dest))
        if not os.path.isdir(parent):
            raise CLIError(f"berth: destination directory {parent!r} must exist", 1)
        target_dir, rename = parent, os.path.basename(dest)
    reader = _ChunkReader(r.iter_raw())
    with _NoChownTar.open(fileobj=reader, mode="r|") as tf:  # type: ignore[call-overload]
        for m in tf:
            name = m.name
            if rename is not None:
                first, sep, rest = name.partition("/")
                if first == src_base or first in ("", "."):
                    name = rename + (sep + rest if rest else "")
            m = _safe_member(m, name)
            if m.isfile() and os.path.isdir(os.path.join(target_dir, m.name)):
                raise CLIError(f"berth: cannot overwrite directory {os.path.join(target_dir, m.name)!r} with a file", 1)
            tf.extract(m, target_dir, set_attrs=True, numeric_owner=True, **_filter_kw())
    return reader.total


def _filter_kw() -> dict:
    return {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


class _ChunkReader:
    """A file-like over an iterator of byte chunks (for tarfile's stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._it = chunks
        self._buf = b""
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                c = next(self._it)
            except StopIteration:
                break
            self.total += len(c)
            self._buf += c
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _tar_chunks(src: str, arcname: str, follow: bool) -> Iterator[bytes]:
    """A tar of `src` named `arcname`, produced in a thread and read back through a pipe."""
    r, w = os.pipe()
    err: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(w, "wb") as out, tarfile.open(fileobj=out, mode="w|", dereference=follow,
                                                         format=tarfile.PAX_FORMAT) as tf:
                tf.add(src, arcname=arcname, recursive=True)
        except BaseException as e:  # reported by the consumer
            err.append(e)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    with os.fdopen(r, "rb") as inp:
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            yield chunk
    t.join()
    if err:
        raise CLIError(f"berth: {err[0]}", 1)


def copy_to(client: Client, src: str, container: str, dest: str, follow: bool) -> int:
    if src == "-":
        body = iter(lambda: os.read(0, 65536), b"")
        client.request("PUT", f"/containers/{container}/archive", {"noOverwriteDirNonDir": "true", "path": dest},
                       body=body, headers={"Content-Type": "text/plain"}).read()
        return 0
    if not os.path.lexists(src):
        raise CLIError(f"berth: lstat {os.path.abspath(src)}: no such file or directory", 1)
    src_is_dir = os.path.isdir(src)
    target = dest
    arcname = os.path.basename(os.path.normpath(src))
    try:
        st = _stat(client.request("HEAD", f"/containers/{container}/archive", {"path": dest}))
        dest_is_dir = bool(st.get("mode", 0) & _GO_DIR)
        if not dest_is_dir:
            if src_is_dir:
                raise CLIError(f"berth: cannot copy a directory to a file: {dest}", 1)
            target = os.path.dirname(dest.rstrip("/")) or "/"
            arcname = os.path.basename(dest.rstrip("/"))
    except APIError as e:
        if e.status != 404:
            raise
        if dest.endswith("/"):
            raise CLIError(f"Error response from daemon: Could not find the file {dest} in container {container}", 1)
        target = os.path.dirname(dest.rstrip("/")) or "/"
        arcname = os.path.basename(dest.rstrip("/"))
    size = 0
    counted = []

    def body() -> Iterator[bytes]:
        for c in _tar_chunks(src, arcname, follow):
            counted.append(len(c))
            yield c

    client.request("PUT", f"/containers/{container}/archive", {"noOverwriteDirNonDir": "true", "path": target},
                   body=body(), headers={"Content-Type": "text/plain"}).read()
    size = sum(counted)
    return size
