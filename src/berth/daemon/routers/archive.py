"""docker cp (GET/HEAD/PUT /containers/{id}/archive), export and diff, on the container's rootfs."""

from __future__ import annotations

import base64
import json
import os
import stat
import tarfile
import tempfile

from berth import errors
from berth.daemon.container import Container
from berth.daemon.engine import Engine
from berth.daemon.http import Request, Response, Router, Stream, empty, json_response
from berth.daemon.routers.images import file_chunks, spool_body

_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27


def _resolve(rootfs: str, path: str, follow_last: bool = True) -> str:
    """A path inside the container, symlinks resolved within rootfs."""
    try:
        from berth.linux.paths import secure_join
    except ImportError:
        secure_join = None
    path = "/" + path.lstrip("/")
    if not follow_last:
        parent, base = os.path.split(path.rstrip("/") or "/")
        if not base:
            return rootfs
        pp = secure_join(rootfs, parent) if secure_join else os.path.join(rootfs, parent.lstrip("/"))
        return os.path.join(pp, base)
    if secure_join:
        return secure_join(rootfs, path)
    return os.path.join(rootfs, path.lstrip("/"))


def _stat_header(p: str, name: str) -> str:
    st = os.lstat(p)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        mode |= _GO_DIR
    link = ""
    if stat.S_ISLNK(st.st_mode):
        mode |= _GO_SYMLINK
        link = os.readlink(p)
    from datetime import UTC, datetime

    mtime = datetime.fromtimestamp(st.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    obj = {"name": name, "size": st.st_size, "mode": mode, "mtime": mtime, "linkTarget": link}
    return base64.b64encode(json.dumps(obj).encode()).decode()


class _Mounted:
    """The container's rootfs, mounted for the duration of a request (refcounted by the store)."""

    def __init__(self, eng: Engine, c: Container):
        self.eng, self.c = eng, c

    async def __aenter__(self) -> str:
        self.root = await self.eng.to_thread(self.eng.store.mount_container_fs, self.c.id)
        return self.root

    async def __aexit__(self, *exc) -> None:
        try:
            await self.eng.to_thread(self.eng.store.unmount_container_fs, self.c.id)
        except Exception:
            pass


def _volume_path(c: Container, path: str) -> tuple[str, str] | None:
    """(host source, path inside it) when `path` falls in one of the container's mounts."""
    norm = "/" + path.strip("/")
    best = None
    for m in c.mounts:
        d = m["Destination"].rstrip("/")
        if norm == d or norm.startswith(d + "/"):  # noqa: SIM102
            if best is None or len(d) > len(best[0]):
                best = (d, m["Source"])
    if best is None:
        return None
    return best[1], norm[len(best[0]):]


def register(r: Router, eng: Engine) -> None:
    async def head(req: Request):
        c = eng.get(req.params["id"])
        path = req.q("path")
        if not path:
            raise errors.InvalidArgument("path is required")
        async with _Mounted(eng, c) as root:
            base, sub = _volume_path(c, path) or (root, path)
            p = _resolve(base, sub, follow_last=False)
            if not os.path.lexists(p):
                raise errors.NotFound(f"Could not find the file {path} in container {c.name}")
            hdr = _stat_header(p, os.path.basename(path.rstrip("/")) or "/")
        return Response(200, b"", None, [("X-Docker-Container-Path-Stat", hdr)])

    async def get(req: Request):
        c = eng.get(req.params["id"])
        path = req.q("path")
        if not path:
            raise errors.InvalidArgument("path is required")
        tmpdir = os.path.join(eng.cfg.root, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        async with _Mounted(eng, c) as root:
            base, sub = _volume_path(c, path) or (root, path)
            p = _resolve(base, sub, follow_last=not path.endswith("/."))
            if path.endswith("/.") or path.endswith("/"):
                p = _resolve(base, sub.rstrip("/.") or "/")
            if not os.path.lexists(p):
                raise errors.NotFound(f"Could not find the file {path} in container {c.name}")
            name = os.path.basename(path.rstrip("/").rstrip(".").rstrip("/")) or "/"
            hdr = _stat_header(p, name)
            f = tempfile.TemporaryFile(dir=tmpdir)  # noqa: SIM115

            def build():
                with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tf:
                    arc = "." if path.endswith("/.") else name
                    tf.add(p, arcname=arc, recursive=True)
                f.seek(0)

            await eng.to_thread(build)
        return Stream(file_chunks(f), content_type="application/x-tar",
                      headers=[("X-Docker-Container-Path-Stat", hdr)])

    async def put(req: Request):
        c = eng.get(req.params["id"])
        path = req.q("path")
        if not path:
            raise errors.InvalidArgument("path is required")
        if c.host_config.get("ReadonlyRootfs"):
            raise errors.PermissionDenied("container rootfs is marked read-only")
        body = await spool_body(eng, req)
        try:
            async with _Mounted(eng, c) as root:
                base, sub = _volume_path(c, path) or (root, path)
                dest = _resolve(base, sub)
                if not os.path.isdir(dest):
                    raise errors.NotFound(f"Could not find the file {path} in container {c.name}")

                def extract():
                    from berth.layers import apply_layer

                    apply_layer(body, dest, whiteouts="delete")

                try:
                    await eng.to_thread(extract)
                except ImportError:
                    def extract_tar():
                        with tarfile.open(fileobj=body) as tf:
                            tf.extractall(dest, numeric_owner=True, filter="tar")
                    await eng.to_thread(extract_tar)
        finally:
            body.close()
        eng.events.emit("container", "extract-to-dir", c.id, c.event_attrs())
        return empty(200)

    async def export(req: Request):
        c = eng.get(req.params["id"])
        tmpdir = os.path.join(eng.cfg.root, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        f = tempfile.TemporaryFile(dir=tmpdir)  # noqa: SIM115
        await eng.to_thread(eng.store.export_container_fs, c.id, f)
        f.seek(0)
        eng.events.emit("container", "export", c.id, c.event_attrs())
        return Stream(file_chunks(f), content_type="application/octet-stream")

    async def changes(req: Request):
        c = eng.get(req.params["id"])
        res = await eng.to_thread(eng.store.container_changes, c.id)
        kinds = {"C": 0, "A": 1, "D": 2}
        skip = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev", "/proc", "/sys"}
        out = [{"Path": p, "Kind": kinds.get(k, 0)} for k, p in res if p not in skip]
        return json_response(out or None)

    r.add("HEAD", "/containers/{id}/archive", head)
    r.add("GET", "/containers/{id}/archive", get)
    r.add("PUT", "/containers/{id}/archive", put)
    r.add("GET", "/containers/{id}/export", export)
    r.add("GET", "/containers/{id}/changes", changes)
