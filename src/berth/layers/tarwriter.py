"""Deterministic layer tars: sorted entries, numeric owners only, PAX, SOURCE_DATE_EPOCH clamp.

The same files (content, modes, owners, xattrs, mtimes) always give the same bytes, hence the same
digest: no user/group names, no atime/ctime, whole-second mtimes, xattrs in name order.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from berth.errors import InvalidArgument

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SKIP_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.", "security.selinux")


def source_date_epoch(value: int | None = None) -> int | None:
    """The clamp to use: the argument, else $SOURCE_DATE_EPOCH, else None (no clamping)."""
    if value is not None:
        return int(value)
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env is None or env.strip() == "":
        return None
    try:
        return int(env)
    except ValueError:
        raise InvalidArgument(f"SOURCE_DATE_EPOCH={env!r} is not an integer number of seconds")


def sort_key(name: str) -> bytes:
    return os.fsencode(name)


def scan(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    """Entries of a directory fd, sorted by their byte names, with lstat results."""
    with os.scandir(dir_fd) as it:
        entries = [(e.name, e.stat(follow_symlinks=False)) for e in it]
    entries.sort(key=lambda x: sort_key(x[0]))
    return entries


def read_xattrs(dir_fd: int, name: str) -> list[tuple[str, bytes]]:
    path = f"/proc/self/fd/{dir_fd}/{name}"
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
    out = []
    for k in sorted(keys):
        if k.startswith(_SKIP_XATTR_PREFIXES):
            continue
        try:
            out.append((k, os.getxattr(path, k, follow_symlinks=False)))
        except OSError:
            continue
    return out


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


RECORD = 10240  # tar tools pad archives to 20 blocks
_BUF = 1 << 20


def _octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def header(name: bytes, typeflag: bytes, *, mode: int, uid: int, gid: int, size: int = 0, mtime: int = 0,
           linkname: bytes = b"", devmajor: int = 0, devminor: int = 0,
           xattrs: list[tuple[str, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    """One member's header blocks: a PAX extended header first when ustar cannot hold it all."""
    pax: list[tuple[str, bytes]] = []
    prefix = b""
    if len(name) > 100 or not name.isascii():
        i = name.rfind(b"/", 0, min(156, len(name) - 1))  # never the trailing slash of a directory
        if name.isascii() and i > 0 and len(name) - i - 1 <= 100:
            prefix, name = name[:i], name[i + 1:]
        else:
            pax.append(("path", name))
            name = name[:100].decode("ascii", "replace").encode("ascii", "replace")[:100]
    if len(linkname) > 100 or not linkname.isascii():
        pax.append(("linkpath", linkname))
        linkname = b""
    fields = {}
    for key, val, width in (("uid", uid, 8), ("gid", gid, 8), ("size", size, 12), ("mtime", mtime, 12)):
        if 0 <= val < 8 ** (width - 1):
            fields[key] = _octal(val, width)
        else:
            pax.append((key, str(val).encode()))
            fields[key] = _octal(0, width)
    for k, v in xattrs:
        pax.append(("SCHILY.xattr." + k, v))
    out = b""
    if pax:
        recs = b"".join(_pax_record(k, v) for k, v in pax)
        if not all(_is_utf8(v) for _, v in pax):
            recs = _pax_record("hdrcharset", b"BINARY") + recs
        out = _block(b"././@PaxHeader", b"x", mode=0o644, uid=b"0000000\0", gid=b"0000000\0",
                     size=_octal(len(recs), 12), mtime=_octal(0, 12), linkname=b"", prefix=b"",
                     devmajor=0, devminor=0)
        out += recs + bytes(-len(recs) % 512)
    return out + _block(name, typeflag, mode=mode, uid=fields["uid"], gid=fields["gid"], size=fields["size"],
                        mtime=fields["mtime"], linkname=linkname, prefix=prefix, devmajor=devmajor,
                        devminor=devminor)


def _block(name: bytes, typeflag: bytes, *, mode: int, uid: bytes, gid: bytes, size: bytes, mtime: bytes,
           linkname: bytes, prefix: bytes, devmajor: int, devminor: int) -> bytes:
    b = bytearray(512)
    b[0:len(name)] = name
    b[100:108] = _octal(mode & 0o7777, 8)
    b[108:116] = uid
    b[116:124] = gid
    b[124:136] = size
    b[136:148] = mtime
    b[148:156] = b"        "
    b[156:157] = typeflag
    b[157:157 + len(linkname)] = linkname
    b[257:265] = b"ustar\x0000"
    b[329:337] = _octal(devmajor, 8)
    b[337:345] = _octal(devminor, 8)
    b[345:345 + len(prefix)] = prefix
    b[148:156] = b"%06o\0 " % sum(b)
    return bytes(b)


class LayerWriter:
    """Writes entries as a PAX tar stream in the order given (callers walk in sorted order)."""

    def __init__(self, out: BinaryIO, source_date_epoch_: int | None = None) -> None:
        self.epoch = source_date_epoch(source_date_epoch_)
        self._out = out
        self._buf = bytearray()
        self._written = 0
        self._links: dict[tuple[int, int], bytes] = {}

    def _emit(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= _BUF:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._out.write(bytes(self._buf))
            self._written += len(self._buf)
            self._buf = bytearray()

    def _mtime(self, st: os.stat_result) -> int:
        t = int(st.st_mtime)
        return min(t, self.epoch) if self.epoch is not None else t

    def add(self, dir_fd: int, name: str, arcname: str, st: os.stat_result) -> bool:
        """Add the filesystem entry name (in dir_fd) as arcname; False for what tar cannot hold."""
        mode = st.st_mode
        arc = os.fsencode(arcname)
        kw = {"mode": stat.S_IMODE(mode), "uid": st.st_uid, "gid": st.st_gid, "mtime": self._mtime(st)}
        fd = -1
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._links:
                t, kw["linkname"] = b"1", self._links[key]
            else:
                if st.st_nlink > 1:
                    self._links[key] = arc
                t, kw["size"] = b"0", st.st_size
                fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
        elif stat.S_ISDIR(mode):
            t, arc = b"5", arc + b"/"
        elif stat.S_ISLNK(mode):
            t, kw["linkname"] = b"2", os.fsencode(os.readlink(name, dir_fd=dir_fd))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            t = b"3" if stat.S_ISCHR(mode) else b"4"
            kw["devmajor"], kw["devminor"] = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            t = b"6"
        else:
            return False  # sockets: tar has no type for them
        try:
            self._emit(header(arc, t, xattrs=read_xattrs(dir_fd, name), **kw))
            if fd >= 0:
                self._copy(fd, st.st_size)
        finally:
            if fd >= 0:
                os.close(fd)
        return True

    def _copy(self, fd: int, size: int) -> None:
        """Exactly size bytes: a file that changed while being read is cut or zero-padded, so the
        archive stays well-formed (like GNU tar's "file changed as we read it")."""
        left = size
        while left:
            chunk = os.read(fd, min(left, _BUF))
            if not chunk:
                self._emit(bytes(min(left, _BUF)))
                left -= min(left, _BUF)
                continue
            left -= len(chunk)
            if len(chunk) >= 65536:
                self._flush()
                self._out.write(chunk)
                self._written += len(chunk)
            else:
                self._emit(chunk)
        self._emit(bytes(-size % 512))

    def add_marker(self, arcname: str, st: os.stat_result) -> None:
        """An empty regular file (whiteout / opaque marker) owned like st, with st's mtime."""
        self._emit(header(os.fsencode(arcname), b"0", mode=0o600, uid=st.st_uid, gid=st.st_gid,
                          mtime=self._mtime(st)))

    def close(self) -> None:
        total = self._written + len(self._buf) + 1024
        self._emit(bytes(1024 + (-total % RECORD)))
        self._flush()

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()


def walk(root_fd: int, prefix: str = "") -> Iterator[tuple[int, str, str, os.stat_result]]:
    """Depth-first, sorted: (dir_fd, name, arcname, lstat) for everything below root_fd."""
    for name, st in scan(root_fd):
        arc = prefix + name
        yield root_fd, name, arc, st
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
            try:
                yield from walk(fd, arc + "/")
            finally:
                os.close(fd)


def tar_directory(root: str, out: BinaryIO, *, source_date_epoch: int | None = None) -> None:
    """A flattened, deterministic tar of everything below root (root itself is not an entry)."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        with LayerWriter(out, source_date_epoch) as w:
            for dfd, name, arc, st in walk(fd):
                w.add(dfd, name, arc, st)
    finally:
        os.close(fd)
