"""Validation of an OCI runtime-spec config.json (plain dicts, no I/O).

validate() raises errors.InvalidArgument naming the offending field ("linux.namespaces[2].type: ...")
so the runtime can refuse bad bundles before it creates anything.
"""

from berth.errors import InvalidArgument

NAMESPACES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
PROPAGATIONS = ("", "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable")
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
DEVICE_TYPES = ("c", "b", "u", "p")


def _bad(field: str, msg: str) -> InvalidArgument:
    return InvalidArgument(f"config.json: {field}: {msg}")


def _obj(v, field: str, required: bool = False) -> dict:
    if v is None:
        if required:
            raise _bad(field, "is required")
        return {}
    if not isinstance(v, dict):
        raise _bad(field, f"must be an object, not {type(v).__name__}")
    return v


def _list(v, field: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _bad(field, f"must be an array, not {type(v).__name__}")
    return v


def _str(v, field: str, required: bool = False, absolute: bool = False) -> str | None:
    if v is None:
        if required:
            raise _bad(field, "is required")
        return None
    if not isinstance(v, str):
        raise _bad(field, f"must be a string, not {type(v).__name__}")
    if required and not v:
        raise _bad(field, "must not be empty")
    if absolute and not v.startswith("/"):
        raise _bad(field, f"must be an absolute path, not {v!r}")
    return v


def _strs(v, field: str) -> list[str]:
    items = _list(v, field)
    for i, s in enumerate(items):
        _str(s, f"{field}[{i}]")
    return items


def _int(v, field: str, required: bool = False, minimum: int | None = None) -> int | None:
    if v is None:
        if required:
            raise _bad(field, "is required")
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(field, f"must be an integer, not {type(v).__name__}")
    if minimum is not None and v < minimum:
        raise _bad(field, f"must be >= {minimum}, not {v}")
    return v


def _bool(v, field: str) -> None:
    if v is not None and not isinstance(v, bool):
        raise _bad(field, f"must be true or false, not {v!r}")


def validate(config, need_process: bool = True) -> dict:
    """Check the shape of a config.json; return it unchanged. Raises InvalidArgument naming the field."""
    if not isinstance(config, dict):
        raise InvalidArgument("config.json: must be a JSON object")
    _str(config.get("ociVersion"), "ociVersion", required=True)
    root = _obj(config.get("root"), "root", required=True)
    _str(root.get("path"), "root.path", required=True)
    _bool(root.get("readonly"), "root.readonly")
    _str(config.get("hostname"), "hostname")
    _str(config.get("domainname"), "domainname")
    ann = _obj(config.get("annotations"), "annotations")
    for k, v in ann.items():
        _str(v, f"annotations[{k!r}]")
    if need_process or config.get("process") is not None:
        validate_process(config.get("process"), "process")
    for i, m in enumerate(_list(config.get("mounts"), "mounts")):
        f = f"mounts[{i}]"
        m = _obj(m, f, required=True)
        _str(m.get("destination"), f + ".destination", required=True)
        _str(m.get("type"), f + ".type")
        _str(m.get("source"), f + ".source")
        _strs(m.get("options"), f + ".options")
        for k in ("uidMappings", "gidMappings"):
            _mappings(m.get(k), f"{f}.{k}")
    hooks = _obj(config.get("hooks"), "hooks")
    for kind, hs in hooks.items():
        if kind not in HOOK_KINDS:
            raise _bad(f"hooks.{kind}", f"unknown hook kind (known: {', '.join(HOOK_KINDS)})")
        for i, h in enumerate(_list(hs, f"hooks.{kind}")):
            f = f"hooks.{kind}[{i}]"
            h = _obj(h, f, required=True)
            _str(h.get("path"), f + ".path", required=True, absolute=True)
            _strs(h.get("args"), f + ".args")
            _strs(h.get("env"), f + ".env")
            _int(h.get("timeout"), f + ".timeout", minimum=1)
    _validate_linux(config)
    return config


def validate_process(p, field: str = "process") -> dict:
    p = _obj(p, field, required=True)
    args = p.get("args")
    if not isinstance(args, list) or not args:
        raise _bad(f"{field}.args", "must be a non-empty array of strings")
    _strs(args, f"{field}.args")
    _str(p.get("cwd"), f"{field}.cwd", required=True, absolute=True)
    for i, e in enumerate(_strs(p.get("env"), f"{field}.env")):
        if "=" not in e:
            raise _bad(f"{field}.env[{i}]", f"must be NAME=VALUE, not {e!r}")
    _bool(p.get("terminal"), f"{field}.terminal")
    _bool(p.get("noNewPrivileges"), f"{field}.noNewPrivileges")
    _int(p.get("oomScoreAdj"), f"{field}.oomScoreAdj", minimum=-1000)
    user = _obj(p.get("user"), f"{field}.user")
    _int(user.get("uid"), f"{field}.user.uid", minimum=0)
    _int(user.get("gid"), f"{field}.user.gid", minimum=0)
    _int(user.get("umask"), f"{field}.user.umask", minimum=0)
    for i, g in enumerate(_list(user.get("additionalGids"), f"{field}.user.additionalGids")):
        _int(g, f"{field}.user.additionalGids[{i}]", required=True, minimum=0)
    caps = _obj(p.get("capabilities"), f"{field}.capabilities")
    from berth.linux.caps import BY_NAME
    for k, names in caps.items():
        if k not in CAP_SETS:
            raise _bad(f"{field}.capabilities.{k}", f"unknown capability set (known: {', '.join(CAP_SETS)})")
        for i, n in enumerate(_strs(names, f"{field}.capabilities.{k}")):
            if n.upper() not in BY_NAME:
                raise _bad(f"{field}.capabilities.{k}[{i}]", f"unknown capability {n!r}")
    seen = set()
    for i, r in enumerate(_list(p.get("rlimits"), f"{field}.rlimits")):
        f = f"{field}.rlimits[{i}]"
        r = _obj(r, f, required=True)
        t = _str(r.get("type"), f + ".type", required=True)
        if t not in RLIMITS:
            raise _bad(f + ".type", f"unknown rlimit {t!r}")
        if t in seen:
            raise _bad(f + ".type", f"duplicate rlimit {t}")
        seen.add(t)
        soft = _int(r.get("soft"), f + ".soft", required=True, minimum=0)
        hard = _int(r.get("hard"), f + ".hard", required=True, minimum=0)
        if soft > hard:
            raise _bad(f, f"soft limit {soft} exceeds hard limit {hard}")
    cs = p.get("consoleSize")
    if cs is not None:
        cs = _obj(cs, f"{field}.consoleSize")
        _int(cs.get("height"), f"{field}.consoleSize.height", minimum=0)
        _int(cs.get("width"), f"{field}.consoleSize.width", minimum=0)
    return p


def _mappings(v, field: str) -> list:
    ms = _list(v, field)
    for i, m in enumerate(ms):
        m = _obj(m, f"{field}[{i}]", required=True)
        for k in ("containerID", "hostID", "size"):
            _int(m.get(k), f"{field}[{i}].{k}", required=True, minimum=0)
    return ms


def _validate_linux(config: dict) -> None:
    linux = _obj(config.get("linux"), "linux")
    types = {}
    for i, ns in enumerate(_list(linux.get("namespaces"), "linux.namespaces")):
        f = f"linux.namespaces[{i}]"
        ns = _obj(ns, f, required=True)
        t = _str(ns.get("type"), f + ".type", required=True)
        if t not in NAMESPACES:
            raise _bad(f + ".type", f"unknown namespace type {t!r} (known: {', '.join(NAMESPACES)})")
        if t in types:
            raise _bad(f + ".type", f"namespace {t!r} listed twice")
        types[t] = _str(ns.get("path"), f + ".path", absolute=True) if ns.get("path") is not None else None
    uidm = _mappings(linux.get("uidMappings"), "linux.uidMappings")
    gidm = _mappings(linux.get("gidMappings"), "linux.gidMappings")
    if "user" in types and types["user"] is None and not (uidm and gidm):
        raise _bad("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")
    if (uidm or gidm) and "user" not in types:
        raise _bad("linux.uidMappings", "mappings are given but there is no user namespace")
    if config.get("hostname") and "uts" not in types:
        raise _bad("hostname", "cannot set a hostname without a private uts namespace")
    if config.get("domainname") and "uts" not in types:
        raise _bad("domainname", "cannot set a domainname without a private uts namespace")
    for i, d in enumerate(_list(linux.get("devices"), "linux.devices")):
        f = f"linux.devices[{i}]"
        d = _obj(d, f, required=True)
        _str(d.get("path"), f + ".path", required=True, absolute=True)
        t = _str(d.get("type"), f + ".type", required=True)
        if t not in DEVICE_TYPES:
            raise _bad(f + ".type", f"unknown device type {t!r} (c, b, u or p)")
        if t != "p":
            _int(d.get("major"), f + ".major", required=True, minimum=0)
            _int(d.get("minor"), f + ".minor", required=True, minimum=0)
        for k in ("fileMode", "uid", "gid"):
            _int(d.get(k), f"{f}.{k}", minimum=0)
    sysctl = _obj(linux.get("sysctl"), "linux.sysctl")
    for k, v in sysctl.items():
        _str(v, f"linux.sysctl[{k!r}]")
        if "/" in k or ".." in k:
            raise _bad(f"linux.sysctl[{k!r}]", "invalid sysctl name")
    _strs(linux.get("maskedPaths"), "linux.maskedPaths")
    _strs(linux.get("readonlyPaths"), "linux.readonlyPaths")
    prop = _str(linux.get("rootfsPropagation"), "linux.rootfsPropagation")
    if prop is not None and prop not in PROPAGATIONS:
        raise _bad("linux.rootfsPropagation", f"unknown propagation {prop!r}")
    _str(linux.get("cgroupsPath"), "linux.cgroupsPath")
    validate_resources(linux.get("resources"), "linux.resources")
    _obj(linux.get("seccomp"), "linux.seccomp")
    _str(linux.get("mountLabel"), "linux.mountLabel")
    offs = _obj(linux.get("timeOffsets"), "linux.timeOffsets")
    for k, v in offs.items():
        if k not in ("monotonic", "boottime"):
            raise _bad(f"linux.timeOffsets.{k}", "unknown clock (monotonic or boottime)")
        v = _obj(v, f"linux.timeOffsets.{k}")
        _int(v.get("secs"), f"linux.timeOffsets.{k}.secs")
        _int(v.get("nanosecs"), f"linux.timeOffsets.{k}.nanosecs", minimum=0)
    if offs and "time" not in types:
        raise _bad("linux.timeOffsets", "time offsets need a time namespace")


# linux.resources: each section's integer fields (runc rejects a string or a fraction where the spec
# says integer; accepting "1g" would silently apply some other limit).
_RESOURCE_INTS = {
    "memory": ("limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness"),
    "cpu": ("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod"),
    "pids": ("limit",),
    "blockIO": ("weight", "leafWeight"),
    "network": ("classID",),
}
_THROTTLES = ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
              "throttleWriteIOPSDevice")


def validate_resources(res, field: str = "linux.resources") -> dict:
    """Check the types in an OCI linux.resources object (also what `update -r FILE` reads)."""
    res = _obj(res, field)
    for section, keys in _RESOURCE_INTS.items():
        sec = _obj(res.get(section), f"{field}.{section}")
        for k in keys:
            _int(sec.get(k), f"{field}.{section}.{k}")
    mem = _obj(res.get("memory"), f"{field}.memory")
    _bool(mem.get("disableOOMKiller"), f"{field}.memory.disableOOMKiller")
    _bool(mem.get("useHierarchy"), f"{field}.memory.useHierarchy")
    cpu = _obj(res.get("cpu"), f"{field}.cpu")
    _str(cpu.get("cpus"), f"{field}.cpu.cpus")
    _str(cpu.get("mems"), f"{field}.cpu.mems")
    _int(cpu.get("idle"), f"{field}.cpu.idle")
    blkio = _obj(res.get("blockIO"), f"{field}.blockIO")
    for key in ("weightDevice", *_THROTTLES):
        for i, d in enumerate(_list(blkio.get(key), f"{field}.blockIO.{key}")):
            f = f"{field}.blockIO.{key}[{i}]"
            d = _obj(d, f, required=True)
            _int(d.get("major"), f + ".major", required=True, minimum=0)
            _int(d.get("minor"), f + ".minor", required=True, minimum=0)
            for k in ("rate", "weight", "leafWeight"):
                _int(d.get(k), f"{f}.{k}", minimum=0)
    for i, d in enumerate(_list(res.get("devices"), f"{field}.devices")):
        f = f"{field}.devices[{i}]"
        d = _obj(d, f, required=True)
        if not isinstance(d.get("allow"), bool):
            raise _bad(f + ".allow", "is required and must be true or false")
        t = _str(d.get("type"), f + ".type")
        if t is not None and t not in ("a", "c", "b"):
            raise _bad(f + ".type", f"unknown device type {t!r} (a, c or b)")
        _int(d.get("major"), f + ".major")
        _int(d.get("minor"), f + ".minor")
        _str(d.get("access"), f + ".access")
    for i, h in enumerate(_list(res.get("hugepageLimits"), f"{field}.hugepageLimits")):
        f = f"{field}.hugepageLimits[{i}]"
        h = _obj(h, f, required=True)
        _str(h.get("pageSize"), f + ".pageSize", required=True)
        _int(h.get("limit"), f + ".limit", required=True)
    for k, v in _obj(res.get("unified"), f"{field}.unified").items():
        _str(v, f"{field}.unified[{k!r}]")
    return res
