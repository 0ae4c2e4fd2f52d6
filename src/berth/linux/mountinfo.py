"""/proc/<pid>/mountinfo: which mounts exist, where, of what type. Standard library only: start path.

A line is `id parent major:minor root mountpoint options [optional fields...] - fstype source superoptions`;
root and mount point octal-escape space, tab, newline and backslash (\\040 ...).
"""

import os


def unescape(field: str) -> str:
    """A root or mount point field as the path it names."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse(text: str) -> list[list[str]]:
    """The fields of every line, root (field 3) and mount point (field 4) unescaped; the fields after
    the optional ones start after the "-" field (fields[fields.index("-") + 1] is the fstype)."""
    out = []
    for line in text.splitlines():
        f = line.split(" ")
        if len(f) > 4:
            f[3], f[4] = unescape(f[3]), unescape(f[4])
            out.append(f)
    return out


def read(pid: int | str = "self") -> list[list[str]]:
    """parse() of /proc/<pid>/mountinfo."""
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return parse(f.read())


def mounts_under(prefix: str) -> list[tuple[str, str]]:
    """(mount point, fstype) of every mount at or below prefix, deepest first (the order to unmount)."""
    prefix = os.path.realpath(prefix).rstrip("/")
    found = [(f[4], f[f.index("-") + 1]) for f in read()
             if f[4] == prefix or f[4].startswith(prefix + "/")]
    found.sort(key=lambda m: m[0].count("/"), reverse=True)
    return found


def is_mountpoint(path: str) -> bool:
    """Is something mounted on path itself (not just somewhere below)?"""
    path = os.path.realpath(path)
    return any(f[4] == path for f in read())
