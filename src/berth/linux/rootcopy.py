"""Copy a directory tree between directory fds, for trees a container may be changing meanwhile.

Everything goes through fds: entries are listed with os.scandir(fd), opened with O_NOFOLLOW relative
to their parent's fd, and metadata is set on fds of the very inode that was checked (an O_PATH fd
reopened through /proc/self/fd), so a rename, a swap or a symlink put in place during the copy can
only move the copy around inside the destination, never make it read or write a host file. New
entries are written under a temporary name and renamed into place relative to the parent fd.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_SKIP_XATTRS = ("trusted.overlay.", "user.overlay.")
_MAX_LINK_FDS = 256  # hardlinked files kept open to link their copies to; beyond that they are copied


class Changed(OSError):
    """An entry changed type while it was being copied (a race with the tree's owner)."""


def reopen(fd: int, flags: int) -> int:
    """A new open of the inode behind fd (an O_PATH fd), not of whatever its name points to now."""
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)


def open_checked(dir_fd: int, name: str, fmt: int, flags: int = os.O_RDONLY) -> int:
    """Open name (no symlink followed) for reading only if it is of type fmt (S_IFREG, S_IFDIR...):
    the type is checked on an O_PATH fd first, so no device or fifo is ever opened by mistake."""
    pfd = os.open(name, _PATH, dir_fd=dir_fd)
    try:
        if stat.S_IFMT(os.fstat(pfd).st_mode) != fmt:
            raise Changed(errno.ESTALE, f"{name!r} changed while being copied")
        return reopen(pfd, flags | os.O_NOCTTY)
    finally:
        os.close(pfd)


def _xattrs(fd_or_path: int | str) -> list[tuple[str, bytes]]:
    try:
        keys = os.listxattr(fd_or_path)
    except OSError:
        return []
    out = []
    for k in keys:
        if not k.startswith(_SKIP_XATTRS):
            with contextlib.suppress(OSError):
                out.append((k, os.getxattr(fd_or_path, k)))
    return out


def _set_xattrs(target: int | str, xs: list[tuple[str, bytes]]) -> None:
    for k, v in xs:
        with contextlib.suppress(OSError):  # a filesystem without that namespace keeps the data
            os.setxattr(target, k, v)


def _meta(fd: int, st: os.stat_result, xs: list[tuple[str, bytes]]) -> None:
    """Owner, then mode (chown clears setuid), then xattrs (chown clears capabilities), then times."""
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    _set_xattrs(fd, xs)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _tmp_name(name: str) -> str:
    return f".berth-cp-{secrets.token_hex(4)}-{name[:200]}"


def remove_entry(dir_fd: int, name: str) -> None:
    """Remove name (a file, a symlink or a whole tree) below dir_fd without following anything."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based on Linux: never follows a symlink
    else:
        os.unlink(name, dir_fd=dir_fd)


class _Copier:
    def __init__(self) -> None:
        self.links: dict[tuple[int, int], int] = {}  # (dev, ino) of a source -> O_PATH fd of its copy
        self.created: list[tuple[int, str]] = []     # (dup of parent fd, name) of new top-most entries

    def close(self) -> None:
        for fd in self.links.values():
            os.close(fd)
        for fd, _ in self.created:
            os.close(fd)
        self.links, self.created = {}, []

    def undo(self) -> None:
        for fd, name in reversed(self.created):
            with contextlib.suppress(OSError):
                remove_entry(fd, name)

    def _place(self, dfd: int, tmp: str, name: str, existed: bool, track: bool) -> None:
        """Rename tmp over name (in dfd); a directory in the way is removed first."""
        try:
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as e:
            if e.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            remove_entry(dfd, name)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        if track and not existed:
            self.created.append((os.dup(dfd), name))

    def tree(self, sfd: int, dfd: int, track: bool) -> None:
        """Copy sfd's entries into dfd (merging into directories that exist)."""
        with os.scandir(sfd) as it:
            names = sorted(e.name for e in it)
        for name in names:
            try:
                st = os.lstat(name, dir_fd=sfd)
            except FileNotFoundError:
                continue  # gone meanwhile
            try:
                dst = os.lstat(name, dir_fd=dfd)
            except FileNotFoundError:
                dst = None
            tmp = _tmp_name(name)
            try:
                if stat.S_ISDIR(st.st_mode):
                    self._dir(sfd, dfd, name, tmp, st, dst, track)
                else:
                    self._leaf(sfd, dfd, name, tmp, st, dst is not None, track)
            except BaseException:
                with contextlib.suppress(OSError):
                    remove_entry(dfd, tmp)
                raise

    def _dir(self, sfd: int, dfd: int, name: str, tmp: str, st: os.stat_result,
             dst: os.stat_result | None, track: bool) -> None:
        src = os.open(name, _DIR, dir_fd=sfd)
        try:
            if dst is not None and stat.S_ISDIR(dst.st_mode):
                sub = os.open(name, _DIR, dir_fd=dfd)  # ELOOP/ENOTDIR if swapped meanwhile: refused
                inner_track = track
            else:
                os.mkdir(tmp, 0o700, dir_fd=dfd)
                sub = os.open(tmp, _DIR, dir_fd=dfd)
                inner_track = False  # everything inside a new directory goes with it
            try:
                self.tree(src, sub, inner_track)
                _meta(sub, st, _xattrs(src))
            finally:
                os.close(sub)
            if dst is None or not stat.S_ISDIR(dst.st_mode):
                self._place(dfd, tmp, name, dst is not None, track)
        finally:
            os.close(src)

    def _leaf(self, sfd: int, dfd: int, name: str, tmp: str, st: os.stat_result, existed: bool,
              track: bool) -> None:
        mode = st.st_mode
        key = (st.st_dev, st.st_ino)
        if stat.S_ISREG(mode) and st.st_nlink > 1 and key in self.links:
            os.link(f"/proc/self/fd/{self.links[key]}", tmp, dst_dir_fd=dfd, follow_symlinks=True)
        elif stat.S_ISREG(mode):
            src = open_checked(sfd, name, stat.S_IFREG)
            try:
                out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                              0o600, dir_fd=dfd)
                try:
                    while os.sendfile(out, src, None, 1 << 20) > 0:
                        pass
                    _meta(out, st, _xattrs(src))
                    if st.st_nlink > 1 and len(self.links) < _MAX_LINK_FDS:
                        self.links[key] = os.open(f"/proc/self/fd/{out}", os.O_PATH | os.O_CLOEXEC)
                finally:
                    os.close(out)
            finally:
                os.close(src)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=sfd), tmp, dir_fd=dfd)
            os.chown(tmp, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(tmp, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dfd)
            node = os.open(tmp, _PATH, dir_fd=dfd)
            try:
                # metadata through the O_PATH fd of the node just made, checked: never through a name
                if stat.S_IFMT(os.fstat(node).st_mode) != stat.S_IFMT(mode):
                    raise Changed(errno.ESTALE, f"{name!r} changed while being copied")
                p = f"/proc/self/fd/{node}"
                os.chown(p, st.st_uid, st.st_gid)
                os.chmod(p, stat.S_IMODE(mode))
                os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(node)
        else:
            return  # sockets: nothing to copy
        self._place(dfd, tmp, name, existed, track)


def copy_meta(src_fd: int, dst_fd: int) -> None:
    """Owner, mode, xattrs and times of directory src_fd onto directory dst_fd."""
    _meta(dst_fd, os.fstat(src_fd), _xattrs(src_fd))


def copy_tree(src_fd: int, dst_fd: int, *, undo_on_error: bool = True) -> None:
    """Copy the content of directory src_fd into directory dst_fd, keeping owners, modes, times,
    xattrs, hardlinks, symlinks (as symlinks, never followed), devices and fifos. Existing entries are
    replaced; existing directories are merged into. On error, what this call created is removed."""
    c = _Copier()
    try:
        c.tree(src_fd, dst_fd, undo_on_error)
    except BaseException:
        if undo_on_error:
            c.undo()
        raise
    finally:
        c.close()
