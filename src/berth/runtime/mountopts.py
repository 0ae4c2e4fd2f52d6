"""OCI mount options -> mount(2) flags, propagation flags and filesystem data."""

from berth.linux import libc as L

# name -> (clear?, flag)
FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, L.MS_RDONLY), "rw": (True, L.MS_RDONLY),
    "nosuid": (False, L.MS_NOSUID), "suid": (True, L.MS_NOSUID),
    "nodev": (False, L.MS_NODEV), "dev": (True, L.MS_NODEV),
    "noexec": (False, L.MS_NOEXEC), "exec": (True, L.MS_NOEXEC),
    "sync": (False, L.MS_SYNCHRONOUS), "async": (True, L.MS_SYNCHRONOUS),
    "dirsync": (False, L.MS_DIRSYNC),
    "remount": (False, L.MS_REMOUNT),
    "mand": (False, L.MS_MANDLOCK), "nomand": (True, L.MS_MANDLOCK),
    "noatime": (False, L.MS_NOATIME), "atime": (True, L.MS_NOATIME),
    "nodiratime": (False, L.MS_NODIRATIME), "diratime": (True, L.MS_NODIRATIME),
    "bind": (False, L.MS_BIND), "rbind": (False, L.MS_BIND | L.MS_REC),
    "relatime": (False, L.MS_RELATIME), "norelatime": (True, L.MS_RELATIME),
    "strictatime": (False, L.MS_STRICTATIME), "nostrictatime": (True, L.MS_STRICTATIME),
    "lazytime": (False, L.MS_LAZYTIME), "nolazytime": (True, L.MS_LAZYTIME),
    "silent": (False, L.MS_SILENT), "loud": (True, L.MS_SILENT),
    "nosymfollow": (False, L.MS_NOSYMFOLLOW), "symfollow": (True, L.MS_NOSYMFOLLOW),
    "iversion": (False, 1 << 23), "noiversion": (True, 1 << 23),
}
PROPAGATION: dict[str, int] = {
    "private": L.MS_PRIVATE, "rprivate": L.MS_PRIVATE | L.MS_REC,
    "shared": L.MS_SHARED, "rshared": L.MS_SHARED | L.MS_REC,
    "slave": L.MS_SLAVE, "rslave": L.MS_SLAVE | L.MS_REC,
    "unbindable": L.MS_UNBINDABLE, "runbindable": L.MS_UNBINDABLE | L.MS_REC,
}
# Recursive attribute options (mount_setattr in runc); applied here as their plain counterparts.
RECURSIVE = {"rro": "ro", "rrw": "rw", "rnosuid": "nosuid", "rsuid": "suid", "rnodev": "nodev", "rdev": "dev",
             "rnoexec": "noexec", "rexec": "exec", "rnoatime": "noatime", "ratime": "atime",
             "rnodiratime": "nodiratime", "rdiratime": "diratime", "rrelatime": "relatime",
             "rnorelatime": "norelatime", "rstrictatime": "strictatime", "rnostrictatime": "nostrictatime",
             "rnosymfollow": "nosymfollow", "rsymfollow": "symfollow"}
EXTRA = ("tmpcopyup", "acl", "noacl")


def parse(options: list[str]) -> tuple[int, list[int], str, set[str]]:
    """-> (flags, propagation flags in order, data string, extra options seen)."""
    flags = 0
    props: list[int] = []
    data: list[str] = []
    extra: set[str] = set()
    for o in options or ():
        o = RECURSIVE.get(o, o)
        if o in FLAGS:
            clear, f = FLAGS[o]
            flags = (flags & ~f) if clear else (flags | f)
        elif o in PROPAGATION:
            props.append(PROPAGATION[o])
        elif o in EXTRA:
            extra.add(o)
        else:
            data.append(o)
    return flags, props, ",".join(data), extra


def supported() -> list[str]:
    return sorted(set(FLAGS) | set(PROPAGATION) | set(RECURSIVE) | set(EXTRA))
