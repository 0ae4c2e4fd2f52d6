"""Docker container config (Config + HostConfig) -> OCI runtime config.json, with Docker's defaults
(capabilities, seccomp, masked/readonly paths, default mounts and devices)."""

from __future__ import annotations

import json
import logging
import os
import stat
from typing import Any

from berth import errors

log = logging.getLogger("berthd.spec")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TINI_CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init")
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"

# Docker's defaults, used when berth.oci.defaults is not there yet.
_DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
_MASKED = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
_ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
# Device cgroup rules Docker allows by default (type, major, minor, access).
_DEFAULT_DEVICE_RULES = [
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 8, "rwm"), ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"), ("c", 5, 1, "rwm"), ("c", 136, None, "rwm"),
    ("c", 5, 2, "rwm"), ("c", 10, 200, "rwm"),
]


def _defaults() -> tuple[list[str], list[str], list[str]]:
    try:
        from berth.oci import defaults as d  # type: ignore[attr-defined]

        caps = list(getattr(d, "DEFAULT_CAPABILITIES", _DEFAULT_CAPS))
        masked = list(getattr(d, "MASKED_PATHS", _MASKED))
        ro = list(getattr(d, "READONLY_PATHS", _READONLY))
        return caps, masked, ro
    except ImportError:
        return list(_DEFAULT_CAPS), list(_MASKED), list(_READONLY)


def _bounding_set() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return None


def all_caps() -> list[str]:
    """Every capability this daemon may grant (--privileged): the known ones in our bounding set."""
    try:
        from berth.oci.defaults import ALL_CAPABILITIES as names
    except ImportError:
        names = tuple(_ALL_CAPS)
    bnd = _bounding_set()
    return [n for i, n in enumerate(names) if bnd is None or bnd >> i & 1]


def _cap_name(n: str) -> str:
    n = n.strip().upper()
    return n if n.startswith("CAP_") else "CAP_" + n


def capabilities(hc: dict) -> list[str]:
    if hc.get("Privileged"):
        return all_caps()
    caps, _, _ = _defaults()
    adds = [_cap_name(c) for c in hc.get("CapAdd") or []]
    drops = [_cap_name(c) for c in hc.get("CapDrop") or []]
    try:
        from berth.oci.defaults import ALL_CAPABILITIES as known_names
    except ImportError:
        known_names = tuple(_ALL_CAPS)
    known = set(known_names)
    for c in adds + drops:
        if c != "CAP_ALL" and c not in known:
            raise errors.InvalidArgument(f"unknown capability: {c!r}")
    if "CAP_ALL" in drops:
        caps = []
    caps = [c for c in caps if c not in drops]
    if "CAP_ALL" in adds:
        caps = all_caps()
    for c in adds:
        if c != "CAP_ALL" and c not in caps:
            caps.append(c)
    bnd = _bounding_set()
    if bnd is not None:
        missing = [c for c in caps if c in known_names and not bnd >> known_names.index(c) & 1]
        if missing:
            raise errors.InvalidArgument(f"capabilities not available on this host: {', '.join(missing)}")
    return caps


def _default_mounts(readonly_sys: bool) -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro" if readonly_sys else "rw"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro" if readonly_sys else "rw"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
    ]


def _read_db(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(rootfs: str, user: str) -> tuple[int, int, list[int], str]:
    """"name|uid[:group|gid]" against the container's /etc/passwd and /etc/group."""
    passwd = _read_db(os.path.join(rootfs, "etc/passwd"))
    groups = _read_db(os.path.join(rootfs, "etc/group"))
    u, _, g = (user or "").partition(":")
    uid, gid, home = 0, 0, "/"
    name = None
    if not u:
        u = "0"
    if u.isdigit():
        uid = int(u)
        for ent in passwd:
            if len(ent) >= 6 and ent[2] == u:
                name, gid, home = ent[0], int(ent[3]), ent[5]
                break
        if name is None and uid == 0:
            home = "/root"
    else:
        for ent in passwd:
            if len(ent) >= 6 and ent[0] == u:
                name, uid, gid, home = u, int(ent[2]), int(ent[3]), ent[5]
                break
        else:
            raise errors.InvalidArgument(f"unable to find user {u}: no matching entries in passwd file")
    if g:
        if g.isdigit():
            gid = int(g)
        else:
            for ent in groups:
                if len(ent) >= 3 and ent[0] == g:
                    gid = int(ent[2])
                    break
            else:
                raise errors.InvalidArgument(f"unable to find group {g}: no matching entries in group file")
    extra = []
    if name:
        for ent in groups:
            if len(ent) >= 4 and name in ent[3].split(",") and ent[2].isdigit() and int(ent[2]) != gid:
                extra.append(int(ent[2]))
    return uid, gid, extra, home


def _device_numbers(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise errors.InvalidArgument(f"error gathering device information for {path!r}: {e.strerror}")
    if stat.S_ISCHR(st.st_mode):
        t = "c"
    elif stat.S_ISBLK(st.st_mode):
        t = "b"
    else:
        raise errors.InvalidArgument(f"{path!r} is not a device node")
    return t, os.major(st.st_rdev), os.minor(st.st_rdev)


def _memsw_supported() -> bool:
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or os.path.exists(
        "/sys/fs/cgroup/cgroup.controllers")


def resources(hc: dict) -> dict:
    """HostConfig resources -> OCI linux.resources (also used by `update`)."""
    r: dict[str, Any] = {}
    mem: dict[str, int] = {}
    if hc.get("Memory"):
        mem["limit"] = int(hc["Memory"])
        swap = int(hc.get("MemorySwap") or 0)
        if _memsw_supported():
            if swap == 0:
                mem["swap"] = 2 * mem["limit"]
            elif swap > 0:
                if swap < mem["limit"]:
                    raise errors.InvalidArgument(
                        "Minimum memoryswap limit should be larger than memory limit, see usage")
                mem["swap"] = swap
            else:
                mem["swap"] = -1
    elif int(hc.get("MemorySwap") or 0) > 0:
        raise errors.InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if hc.get("MemoryReservation"):
        mem["reservation"] = int(hc["MemoryReservation"])
    if hc.get("KernelMemory"):
        mem["kernel"] = int(hc["KernelMemory"])
    sw = hc.get("MemorySwappiness")
    if sw is not None and sw != -1:
        if not 0 <= int(sw) <= 100:
            raise errors.InvalidArgument(f"invalid value: {sw}, valid memory swappiness range is 0-100")
        mem["swappiness"] = int(sw)
    if hc.get("OomKillDisable"):
        r["memory_disable_oom"] = True
    if mem:
        if "limit" in mem and mem["limit"] < 6 * 1024 * 1024:
            raise errors.InvalidArgument("Minimum memory limit allowed is 6MB")
        r["memory"] = mem
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("NanoCpus"):
        if hc.get("CpuQuota") or hc.get("CpuPeriod"):
            raise errors.InvalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
        n = int(hc["NanoCpus"])
        ncpu = os.cpu_count() or 1
        if n < 0 or n > ncpu * 1_000_000_000:
            raise errors.InvalidArgument(
                f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
        cpu["period"] = 100000
        cpu["quota"] = n * 100000 // 1_000_000_000
    if hc.get("CpuQuota"):
        cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpuPeriod"):
        cpu["period"] = int(hc["CpuPeriod"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if cpu:
        r["cpu"] = cpu
    if hc.get("PidsLimit") and int(hc["PidsLimit"]) > 0:
        r["pids"] = {"limit": int(hc["PidsLimit"])}
    blk: dict[str, Any] = {}
    if hc.get("BlkioWeight"):
        w = int(hc["BlkioWeight"])
        if not 10 <= w <= 1000:
            raise errors.InvalidArgument("Range of blkio weight is from 10 to 1000")
        blk["weight"] = w
    weight_devices = []
    for it in hc.get("BlkioWeightDevice") or []:
        _, ma, mi = _device_numbers(it.get("Path", ""))
        w = int(it.get("Weight", 0))
        if not 10 <= w <= 1000:
            raise errors.InvalidArgument(f"invalid weight for device {it.get('Path', '')}: {w} (range 10 to 1000)")
        weight_devices.append({"major": ma, "minor": mi, "weight": w})
    if weight_devices:
        blk["weightDevice"] = weight_devices
    for key, oci in (("BlkioDeviceReadBps", "throttleReadBpsDevice"), ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                     ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                     ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        items = hc.get(key) or []
        out = []
        for it in items:
            _, ma, mi = _device_numbers(it.get("Path", ""))
            out.append({"major": ma, "minor": mi, "rate": int(it.get("Rate", 0))})
        if out:
            blk[oci] = out
    if blk:
        r["blockIO"] = blk
    return r


# dockerd's words for a block I/O setting the host cannot honour (the setting is discarded, the
# container still starts)
_BLKIO_DISCARDED = {
    "weight": "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
    "weight_device": "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. "
                     "Weight-device discarded.",
    "read_bps": "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. "
                "Block I/O BPS read limit discarded.",
    "write_bps": "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. "
                 "Block I/O BPS write limit discarded.",
    "read_iops": "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. "
                 "Block I/O IOPS read limit discarded.",
    "write_iops": "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. "
                  "Block I/O IOPS write limit discarded.",
}


def discard_unsupported_blkio(hc: dict, support: dict[str, bool]) -> list[str]:
    """Drop the block I/O settings the host cannot honour from hc (in place), as dockerd does;
    returns the create/update response's warnings. support: berth.cgroups.support.blkio_support()."""
    from berth.cgroups.support import BLKIO_KNOBS

    warnings = []
    for key, (what, _) in BLKIO_KNOBS.items():
        if hc.get(key) and not support.get(what, False):
            hc[key] = 0 if key == "BlkioWeight" else []
            warnings.append(_BLKIO_DISCARDED[what])
    return warnings


def _parse_bind(spec: str) -> tuple[str, str, list[str]]:
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise errors.InvalidArgument(f"invalid volume specification: {spec!r}")
    src, dst = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) > 2 else []
    if not dst.startswith("/"):
        raise errors.InvalidArgument(f"invalid volume specification: {spec!r}: mount path must be absolute")
    return src, dst, opts


def parse_ulimits(ulimits: list[dict]) -> list[dict]:
    out = []
    for u in ulimits or []:
        name = str(u.get("Name", "")).upper()
        if not name:
            raise errors.InvalidArgument("invalid ulimit: missing Name")
        soft, hard = int(u.get("Soft", 0)), int(u.get("Hard", 0))
        if soft > hard:
            raise errors.InvalidArgument(f"invalid ulimit {name.lower()}: soft limit {soft} is above the hard limit {hard}")
        out.append({"type": "RLIMIT_" + name, "soft": soft, "hard": hard})
    return out


def tini_path() -> str | None:
    for p in TINI_CANDIDATES:
        if os.path.exists(p):
            return p
    return None


def check_sysctls(hc: dict) -> None:
    """HostConfig.Sysctls: only namespaced keys in namespaces the container has to itself (as the runtime
    checks too), refused at create with the key named."""
    sysctls = hc.get("Sysctls") or {}
    if not sysctls:
        return
    from berth.oci.sysctl import check

    own = {t for t, mode in (("network", hc.get("NetworkMode")), ("ipc", hc.get("IpcMode")),
                             ("uts", hc.get("UTSMode"))) if mode != "host"}
    why = check(sysctls, own, hostname_set=True)  # berthd always sets the OCI hostname
    if why:
        raise errors.InvalidArgument(why)


def build(*, cid: str, name: str, config: dict, hc: dict, image_config: dict, rootfs: str,
          mounts: list[dict], netns_path: str | None, files: dict[str, str]) -> dict:
    """Return an OCI config.json. `mounts`: resolved volume/bind mounts (OCI form);
    `files`: container-private files to bind (hostname, hosts, resolv.conf)."""
    privileged = bool(hc.get("Privileged"))
    caps = capabilities(hc)
    _, masked, ro_paths = _defaults()
    entry = config.get("Entrypoint") or []
    cmd = config.get("Cmd") or []
    args = list(entry) + list(cmd)
    if not args:
        raise errors.InvalidArgument("No command specified")
    if hc.get("Init"):
        tini = tini_path()
        if not tini:
            raise errors.Unsupported("--init needs tini (Debian package `tini`: /usr/bin/tini-static)")
        args = [INIT_PATH_IN_CONTAINER, "--", *args]
    env = list(config.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    if "PATH" not in keys:
        env.insert(0, "PATH=" + DEFAULT_PATH)
    hostname = config.get("Hostname") or cid[:12]
    if "HOSTNAME" not in keys:
        env.append("HOSTNAME=" + hostname)
    if config.get("Tty") and "TERM" not in keys:
        env.append("TERM=xterm")
    uid, gid, extra_gids, home = resolve_user(rootfs, config.get("User") or "")
    if "HOME" not in keys:
        env.append("HOME=" + home)
    for g in hc.get("GroupAdd") or []:
        if str(g).isdigit():
            extra_gids.append(int(g))
        else:
            for ent in _read_db(os.path.join(rootfs, "etc/group")):
                if ent and ent[0] == g and len(ent) > 2:
                    extra_gids.append(int(ent[2]))
                    break
            else:
                raise errors.InvalidArgument(f"unable to find group {g}")
    nnp = False
    seccomp: dict | None | str = "default"
    for opt in hc.get("SecurityOpt") or []:
        k, sep, v = opt.partition("=")
        if not sep:
            k, _, v = opt.partition(":")
        k = k.strip()
        if k == "no-new-privileges":
            nnp = v.strip().lower() in ("", "true", "1")
        elif k == "seccomp":
            if v == "unconfined":
                seccomp = None
            elif v.strip().startswith("{"):
                try:
                    seccomp = json.loads(v)
                except ValueError as e:
                    raise errors.InvalidArgument(f"invalid seccomp profile: {e}")
            else:
                try:
                    with open(v) as f:
                        seccomp = json.load(f)
                except (OSError, ValueError) as e:
                    raise errors.InvalidArgument(f"opening seccomp profile ({v}) failed: {e}")
        elif k in ("apparmor", "label", "systempaths"):
            if k == "systempaths" and v == "unconfined":
                masked, ro_paths = [], []
        else:
            raise errors.InvalidArgument(f"invalid --security-opt: {opt!r}")
    if privileged:
        seccomp = None
        masked, ro_paths = [], []
    process: dict[str, Any] = {
        "terminal": bool(config.get("Tty")),
        "user": {"uid": uid, "gid": gid, **({"additionalGids": sorted(set(extra_gids))} if extra_gids else {})},
        "args": args,
        "env": env,
        "cwd": config.get("WorkingDir") or "/",
        "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": nnp,
    }
    if uid == 0:
        process["capabilities"]["inheritable"] = []
    rl = parse_ulimits(hc.get("Ulimits") or [])
    if rl:
        process["rlimits"] = rl
    if hc.get("OomScoreAdj"):
        process["oomScoreAdj"] = int(hc["OomScoreAdj"])
    if config.get("Tty") and hc.get("ConsoleSize") and any(hc["ConsoleSize"]):
        h, w = hc["ConsoleSize"]
        process["consoleSize"] = {"height": int(h), "width": int(w)}

    all_mounts = _default_mounts(readonly_sys=not privileged)
    for dest, src in files.items():
        all_mounts.append({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]})
    if hc.get("Init"):
        all_mounts.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind", "source": tini_path(),
                           "options": ["bind", "ro"]})
    for dst, opts in (hc.get("Tmpfs") or {}).items():
        o = ["nosuid", "nodev", "noexec"] + [x for x in (opts or "").split(",") if x]
        all_mounts.append({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o})
    shm = hc.get("ShmSize")
    if shm:
        for m in all_mounts:
            if m["destination"] == "/dev/shm":
                m["options"] = [o for o in m["options"] if not o.startswith("size=")] + [f"size={int(shm)}"]
    user_dests = {m["destination"] for m in mounts}
    all_mounts = [m for m in all_mounts if m["destination"] not in user_dests] + mounts

    namespaces = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    nm = hc.get("NetworkMode") or "none"
    if nm != "host":
        ns: dict[str, str] = {"type": "network"}
        if netns_path:
            ns["path"] = netns_path
        namespaces.append(ns)
    if hc.get("PidMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "pid"]
    if hc.get("IpcMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "ipc"]
    if hc.get("UTSMode") == "host":
        namespaces = [n for n in namespaces if n["type"] != "uts"]

    res = resources(hc)
    res_oci: dict[str, Any] = {k: v for k, v in res.items() if k != "memory_disable_oom"}
    if res.get("memory_disable_oom"):
        res_oci.setdefault("memory", {})["disableOOMKiller"] = True
    dev_rules: list[dict] = []
    linux_devices: list[dict] = []
    if privileged:
        dev_rules.append({"allow": True, "access": "rwm"})
    else:
        dev_rules.append({"allow": False, "access": "rwm"})
        for t, ma, mi, acc in _DEFAULT_DEVICE_RULES:
            rule: dict[str, Any] = {"allow": True, "type": t, "access": acc}
            if ma is not None:
                rule["major"] = ma
            if mi is not None:
                rule["minor"] = mi
            dev_rules.append(rule)
    for d in hc.get("Devices") or []:
        host = d.get("PathOnHost", "")
        t, ma, mi = _device_numbers(host)
        st = os.stat(host)
        linux_devices.append({"path": d.get("PathInContainer") or host, "type": t, "major": ma, "minor": mi,
                              "fileMode": stat.S_IMODE(st.st_mode), "uid": 0, "gid": 0})
        dev_rules.append({"allow": True, "type": t, "major": ma, "minor": mi,
                          "access": d.get("CgroupPermissions") or "rwm"})
    res_oci["devices"] = dev_rules

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": f"/berth/{cid}",
        "resources": res_oci,
        "maskedPaths": masked,
        "readonlyPaths": ro_paths,
    }
    if linux_devices:
        linux["devices"] = linux_devices
    if seccomp == "default":
        seccomp = _default_seccomp(caps)
    if seccomp:
        linux["seccomp"] = seccomp
    sysctls = hc.get("Sysctls") or {}
    if sysctls:
        linux["sysctl"] = dict(sysctls)
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        "hostname": hostname,
        "mounts": all_mounts,
        "linux": linux,
    }


_seccomp_cache: dict[tuple[str, ...], dict | None] = {}


def _default_seccomp(caps: list[str]) -> dict | None:
    key = tuple(sorted(caps))
    if key not in _seccomp_cache:
        try:
            from berth.seccomp import default_profile

            _seccomp_cache[key] = default_profile(list(caps))
        except Exception as e:  # the seccomp package not landed or broken: say so loudly
            log.warning("no default seccomp profile (%s); containers run without one", e)
            _seccomp_cache[key] = None
    return _seccomp_cache[key]
