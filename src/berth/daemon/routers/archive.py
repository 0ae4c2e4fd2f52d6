"""docker cp (GET/HEAD/PUT /containers/{id}/archive), export and diff, on the container's rootfs."""

from __future__ import annotations

import base64
import errno
import io
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


def _split(path: str) -> tuple[str, str | None]:
    """(directory to resolve fully, last component to take unfollowed) as dockerd does; None when the
    path ends in "/", "/." or names a directory itself ("..", "/"): then it is resolved fully."""
    path = "/" + path.lstrip("/")
    parent, base = path.rsplit("/", 1)
    if base in ("", ".", ".."):
        return path, None
    return parent or "/", base


class _Target:
    """The entry a copy names, held as fds: parent (an O_RDONLY dir fd) and name in it, or, for a
    fully resolved directory, fd alone (name None). Every later access is relative to these fds."""

    def __init__(self, root: str, path: str) -> None:
        from berth.linux.paths import open_in_root

        d, self.name = _split(path)
        try:
            self.fd = open_in_root(root, d, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            raise errors.NotFound(f"Could not find the file {path} in container")
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise errors.NotFound(f"Could not find the file {path} in container")
            raise
        try:
            self.st = os.lstat(self.name, dir_fd=self.fd) if self.name else os.fstat(self.fd)
        except (FileNotFoundError, NotADirectoryError):
            os.close(self.fd)
            raise errors.NotFound(f"Could not find the file {path} in container")

    def close(self) -> None:
        os.close(self.fd)

    def header(self, name: str) -> str:
        st = self.st
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            mode |= _GO_DIR
        link = ""
        if stat.S_ISLNK(st.st_mode):
            mode |= _GO_SYMLINK
            link = os.readlink(self.name, dir_fd=self.fd)
        from datetime import UTC, datetime

        mtime = datetime.fromtimestamp(st.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        obj = {"name": name, "size": st.st_size, "mode": mode, "mtime": mtime, "linkTarget": link}
        return base64.b64encode(json.dumps(obj).encode()).decode()


class _Zeros(io.RawIOBase):
    """A file read through its fd, cut or zero-padded to the size in its header (it may change)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = os.readv(self.fd, [b])
        if n == 0:
            b[:] = bytes(len(b))
            return len(b)
        return n


def _tar_entry(tf: tarfile.TarFile, dfd: int, name: str | None, arc: str,
               links: dict[tuple[int, int], str]) -> None:
    """Add one entry (name in dfd, or dfd itself) and, for a directory, everything below it."""
    from berth.linux.rootcopy import Changed, open_checked

    st = os.fstat(dfd) if name is None else os.lstat(name, dir_fd=dfd)
    ti = tarfile.TarInfo(arc)
    ti.mode, ti.uid, ti.gid, ti.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        sub = os.dup(dfd) if name is None else open_checked(dfd, name, stat.S_IFDIR, os.O_RDONLY | os.O_DIRECTORY)
        try:
            ti.type = tarfile.DIRTYPE
            tf.addfile(ti)
            with os.scandir(sub) as it:
                children = sorted(e.name for e in it)
            for child in children:
                try:
                    _tar_entry(tf, sub, child, f"{arc.rstrip('/')}/{child}" if arc != "." else f"./{child}", links)
                except (FileNotFoundError, NotADirectoryError, Changed):
                    continue  # removed or replaced while being read: as tar, leave it out
        finally:
            os.close(sub)
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            ti.type, ti.linkname = tarfile.LNKTYPE, links[key]
            tf.addfile(ti)
            return
        fd = open_checked(dfd, name, stat.S_IFREG) if name is not None else os.dup(dfd)
        try:
            ti.size = st.st_size
            if st.st_nlink > 1:
                links[key] = arc
            tf.addfile(ti, io.BufferedReader(_Zeros(fd)))
        finally:
            os.close(fd)
    elif stat.S_ISLNK(st.st_mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dfd)
        tf.addfile(ti)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tf.addfile(ti)
    elif stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
        tf.addfile(ti)


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
    def _base(c: Container, root: str, path: str) -> tuple[str, str]:
        return _volume_path(c, path) or (root, path)

    def _name(path: str) -> str:
        return os.path.basename(path.rstrip("/").rstrip(".").rstrip("/")) or "/"

    async def head(req: Request):
        c = eng.get(req.params["id"])
        path = req.q("path")
        if not path:
            raise errors.InvalidArgument("path is required")
        async with _Mounted(eng, c) as root:
            def stat_it() -> str:
                t = _Target(*_base(c, root, path))
                try:
                    return t.header(_name(path))
                finally:
                    t.close()
            hdr = await eng.to_thread(stat_it)
        return Response(200, b"", None, [("X-Docker-Container-Path-Stat", hdr)])

    async def get(req: Request):
        c = eng.get(req.params["id"])
        path = req.q("path")
        if not path:
            raise errors.InvalidArgument("path is required")
        tmpdir = os.path.join(eng.cfg.root, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        async with _Mounted(eng, c) as root:
            f = tempfile.TemporaryFile(dir=tmpdir)  # noqa: SIM115

            def build() -> str:
                # the tar is made from fds opened inside the container's root: a symlink or a rename
                # inside the container while this runs can never make it read a host file
                t = _Target(*_base(c, root, path))
                try:
                    name = _name(path)
                    hdr = t.header(name)
                    arc = "." if path.endswith("/.") or name == "/" else name
                    with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tf:
                        _tar_entry(tf, t.fd, t.name, arc, {})
                finally:
                    t.close()
                f.seek(0)
                return hdr

            try:
                hdr = await eng.to_thread(build)
            except BaseException:
                f.close()
                raise
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
        tmpdir = os.path.join(eng.cfg.root, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        try:
            async with _Mounted(eng, c) as root:
                def extract() -> None:
                    from berth.layers import apply_layer, remove_tree
                    from berth.linux.paths import open_in_root
                    from berth.linux.rootcopy import copy_tree

                    base, sub = _base(c, root, path)
                    try:
                        dest = open_in_root(base, sub, os.O_RDONLY | os.O_DIRECTORY)
                    except OSError as e:
                        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                            raise errors.NotFound(f"Could not find the file {path} in container {c.name}")
                        raise
                    # the whole tar is checked and unpacked in a staging dir the container cannot see
                    # (a bad tar leaves the container untouched), then copied in through dest's fd
                    stage = tempfile.mkdtemp(prefix="cp-", dir=tmpdir)
                    try:
                        apply_layer(body, os.path.join(stage, "t"), whiteouts="delete")
                        sfd = os.open(os.path.join(stage, "t"), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                        try:
                            copy_tree(sfd, dest)
                        except OSError as e:  # the container moved things under the copy: undone
                            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ESTALE, errno.EISDIR):
                                raise errors.InvalidArgument(f"copying to {path}: the destination changed "
                                                             f"during the copy ({e.strerror})")
                            raise
                        finally:
                            os.close(sfd)
                    finally:
                        os.close(dest)
                        remove_tree(stage)

                await eng.to_thread(extract)
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
        # the mount points berthd itself provides (its hosts, hostname and resolv.conf, /dev, /proc,
        # /sys) are not the container's changes; nor is a directory changed only by them (/etc)
        skip = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev", "/proc", "/sys"}
        kept = [(k, p) for k, p in res if p not in skip]
        hidden_dirs = {os.path.dirname(p) for _, p in res if p in skip} - {"/"}
        kept = [(k, p) for k, p in kept if not (k == "C" and p in hidden_dirs and
                                                  not any(q.startswith(p + "/") for _, q in kept))]
        out = [{"Path": p, "Kind": kinds.get(k, 0)} for k, p in kept]
        return json_response(out or None)

    r.add("HEAD", "/containers/{id}/archive", head)
    r.add("GET", "/containers/{id}/archive", get)
    r.add("PUT", "/containers/{id}/archive", put)
    r.add("GET", "/containers/{id}/export", export)
    r.add("GET", "/containers/{id}/changes", changes)
