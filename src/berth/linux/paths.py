"""Resolve container paths inside a root directory without ever escaping it through symlinks or "..".

secure_join resolves lexically (each symlink re-read and re-rooted), mkdir_in_root creates what is
missing, and open_in_root opens the result with openat2(RESOLVE_IN_ROOT) so that a race between
resolution and use still cannot leave the root: mounts go onto /proc/self/fd/<that fd>.
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


def open_in_root(root_fd: int, rel: str, flags: int = os.O_PATH) -> int:
    """Open rel beneath root_fd, resolving symlinks as if root_fd were "/"."""
    return libc.openat2(root_fd, rel, flags | os.O_CLOEXEC,
                        libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS)
