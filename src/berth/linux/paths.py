"""Resolve container paths inside a root directory without ever escaping it through symlinks or "..".

secure_join resolves lexically (each symlink re-read and re-rooted), mkdir_in_root creates what is
missing, and open_in_root opens the result with openat2(RESOLVE_IN_ROOT) so that a race between
resolution and use still cannot leave the root: mounts go onto /proc/self/fd/<that fd>.

open_in_root and mkdirs_in_root are the one way the host touches files of a running container
(docker cp / the archive endpoints, volume fill): they hand back fds, and callers work relative to
those fds (berth.linux.rootcopy), never through a path string checked earlier.
"""

import os

from berth.linux import libc

_MAX_LINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    """root + unsafe with every symlink resolved as if root were "/" (never a path outside root)."""
    root = root.rstrip("/") or "/"
    todo = [c for c in unsafe.split("/") if c]
    done: list[str] = []
    links = 0
    while todo:
        comp = todo.pop(0)
        if comp == ".":
            continue
        if comp == "..":
            if done:
                done.pop()
            continue
        cand = root + "/" + "/".join(done + [comp])
        try:
            target = os.readlink(cand)
        except OSError:  # not a symlink, or missing: take it literally
            done.append(comp)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(40, f"too many symlinks resolving {unsafe} in {root}")
        if target.startswith("/"):
            done = []
        todo[:0] = [c for c in target.split("/") if c]
    return root + ("/" + "/".join(done) if done else "")


def mkdir_in_root(root: str, unsafe: str, is_dir: bool = True, mode: int = 0o755) -> str:
    """Create unsafe (a dir, or an empty file when is_dir is False) inside root; return the safe path."""
    path = secure_join(root, unsafe)
    rel = path[len(root.rstrip("/")):].strip("/")
    cur = root.rstrip("/")
    parts = rel.split("/") if rel else []
    for i, comp in enumerate(parts):
        cur = cur + "/" + comp
        last = i == len(parts) - 1
        if os.path.lexists(cur):
            continue
        if last and not is_dir:
            fd = os.open(cur, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            os.close(fd)
        else:
            os.mkdir(cur, mode)
    return path


_openat2_ok = True  # cleared when the kernel has no openat2 (< 5.6): then walk component by component
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def open_in_root(root: int | str, rel: str, flags: int = os.O_PATH, *, follow: bool = True,
                 mode: int = 0) -> int:
    """Open rel beneath root (a dir fd, or a trusted host path), resolving symlinks and ".." as if root
    were "/": nothing outside root is ever opened, however the tree changes meanwhile. follow=False
    leaves a final symlink unfollowed (O_PATH gets the link itself; other flags give ELOOP).
    Magic links (/proc/<pid>/fd/..., /proc/self/root) are refused with ELOOP."""
    global _openat2_ok
    if not follow:
        flags |= os.O_NOFOLLOW
    rfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if isinstance(root, str) else root
    try:
        rel = rel.lstrip("/") or "."
        if _openat2_ok:
            try:
                return libc.openat2(rfd, rel, flags | os.O_CLOEXEC,
                                    libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS, mode)
            except OSError as e:
                if e.errno != 38:  # ENOSYS
                    raise
                _openat2_ok = False
        return _walk_open(rfd, rel, flags | os.O_CLOEXEC, mode)
    finally:
        if rfd is not root:
            os.close(rfd)


def _walk_open(root_fd: int, rel: str, flags: int, mode: int) -> int:
    """openat2(RESOLVE_IN_ROOT) by hand: one O_NOFOLLOW open per component, each symlink read and its
    target walked from the fds already held ("/" = root_fd, ".." = the previous fd, never the kernel's)."""
    follow_last = not flags & os.O_NOFOLLOW
    stack: list[int] = []  # fds below root_fd, innermost last
    todo = [c for c in rel.split("/") if c not in ("", ".")]
    links = 0
    try:
        while True:
            cur = stack[-1] if stack else root_fd
            if not todo:
                return os.open(".", flags & ~os.O_CREAT, mode, dir_fd=cur)
            comp = todo.pop(0)
            if comp == "..":
                if stack:
                    os.close(stack.pop())
                continue
            last = not todo
            if not last or follow_last:
                try:
                    target = os.readlink(comp, dir_fd=cur)
                except OSError:
                    target = None
                if target is not None:
                    links += 1
                    if links > _MAX_LINKS:
                        raise OSError(40, f"too many symlinks resolving {rel}")
                    if target.startswith("/"):
                        while stack:
                            os.close(stack.pop())
                    todo[:0] = [c for c in target.split("/") if c not in ("", ".")]
                    if not todo:  # a link to "/" or "." as the last component
                        todo = ["."]
                    continue
            if last:
                return os.open(comp, flags | os.O_NOFOLLOW, mode, dir_fd=cur)
            stack.append(os.open(comp, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur))
    finally:
        for fd in stack:
            os.close(fd)


def mkdirs_in_root(root: int | str, rel: str, mode: int = 0o755) -> int:
    """The directory rel inside root, creating what is missing (mkdirat in the fd of the parent just
    resolved, never by path); returns an O_RDONLY directory fd (for os.scandir and dir_fd=)."""
    comps = [c for c in rel.split("/") if c not in ("", ".")]
    for i in range(1, len(comps) + 1):
        try:
            os.close(open_in_root(root, "/".join(comps[:i]), _DIR))
            continue
        except FileNotFoundError:
            pass
        parent = open_in_root(root, "/".join(comps[:i - 1]), _DIR)
        try:
            os.mkdir(comps[i - 1], mode, dir_fd=parent)
        except FileExistsError:
            pass  # made meanwhile, or a dangling symlink (the final open says ENOENT)
        finally:
            os.close(parent)
    return open_in_root(root, "/".join(comps), _DIR)
