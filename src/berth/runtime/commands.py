"""One function per berth-runtime verb: parse its flags into calls on berth.runtime.container."""

import _signal as signal  # the C module: `signal` imports enum (5 ms)
import os
import sys

from berth.errors import InvalidArgument, Unsupported
from berth.runtime import container as C
from berth.runtime import hooks, jsonio, state


def _opts(g: dict, f: dict, log) -> "C.Options":
    hooks.warn = log.warn  # poststart/poststop hook failures are logged, not fatal
    return C.Options(root=g.get("root") or state.DEFAULT_ROOT, bundle=f.get("bundle"),
                     console_socket=f.get("console-socket"), pid_file=f.get("pid-file"),
                     no_pivot=f.get("no-pivot", False), no_new_keyring=f.get("no-new-keyring", False),
                     preserve_fds=f.get("preserve-fds", 0) or 0,
                     detach=f.get("detach", False), keep=f.get("keep", False), config=f.get("config"),
                     systemd_cgroup=g.get("systemd-cgroup", False) or g.get("cgroup-manager") == "systemd", warn=log.warn)


def _id(pos: list[str], cmd: str, extra_ok: bool = False) -> str:
    if not pos:
        raise InvalidArgument(f"{cmd}: a container id is required")
    if len(pos) > 1 and not extra_ok:
        raise InvalidArgument(f"{cmd}: unexpected arguments {pos[1:]}")
    return state.check_id(pos[0])


def _print_json(o, indent: int | None = 2) -> None:
    sys.stdout.write(jsonio.dumps(o, indent) + "\n")
    sys.stdout.flush()


def cmd_create(g, f, pos, log) -> int:
    C.create(_id(pos, "create"), _opts(g, f, log))
    return 0


def cmd_start(g, f, pos, log) -> int:
    C.start(_id(pos, "start"), _opts(g, f, log))
    return 0


def cmd_run(g, f, pos, log) -> int:
    return C.run(_id(pos, "run"), _opts(g, f, log))


def cmd_state(g, f, pos, log) -> int:
    st, stat = C.load_with_status(g.get("root") or state.DEFAULT_ROOT, _id(pos, "state"))
    _print_json(state.oci_state(st, stat))
    return 0


def parse_signal(s: str) -> int:
    s = s.strip()
    if s.isdigit():
        n = int(s)
        if 0 < n < signal.NSIG:
            return n
    else:
        name = s.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        sig = getattr(signal, name, None) if name.isalnum() else None
        if isinstance(sig, int) and not name.startswith("SIG_"):
            return sig
    raise InvalidArgument(f"invalid signal {s!r}")


def cmd_kill(g, f, pos, log) -> int:
    cid = _id(pos[:1], "kill")
    if len(pos) > 2:
        raise InvalidArgument(f"kill: unexpected arguments {pos[2:]}")
    sig = parse_signal(pos[1]) if len(pos) > 1 else signal.SIGTERM
    C.kill(cid, _opts(g, f, log), sig, f.get("all", False))
    return 0


def cmd_delete(g, f, pos, log) -> int:
    if not pos:
        raise InvalidArgument("delete: a container id is required")
    for cid in pos:
        C.delete(state.check_id(cid), _opts(g, f, log), f.get("force", False))
    return 0


def cmd_list(g, f, pos, log) -> int:
    root = g.get("root") or state.DEFAULT_ROOT
    rows = []
    for cid in state.list_ids(root):
        try:
            st, stat = C.load_with_status(root, cid)
        except Exception:
            continue
        rows.append(state.oci_state(st, stat))
    if f.get("quiet"):
        for r in rows:
            print(r["id"])
        return 0
    fmt = f.get("format", "table")
    if fmt == "json":
        _print_json(rows, None)
        return 0
    if fmt != "table":
        raise InvalidArgument(f"list: --format {fmt!r}: use table or json")
    table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for r in rows:
        table.append((r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], _owner(root, r["id"])))
    widths = [max(len(row[i]) for row in table) for i in range(6)]
    for row in table:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _owner(root: str, cid: str) -> str:
    try:
        uid = os.stat(os.path.join(root, cid)).st_uid
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, OSError, ImportError):
        return "#"


def cmd_ps(g, f, pos, log) -> int:
    cid = _id(pos[:1], "ps")
    st, stat = C.load_with_status(g.get("root") or state.DEFAULT_ROOT, cid)
    pids = C.pids(st) if stat != "stopped" else []
    if f.get("format", "table") == "json":
        _print_json(pids, None)
        return 0
    import subprocess

    out = subprocess.run(["ps"] + (pos[1:] or ["-ef"]), capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    col = header.index("PID") if "PID" in header else 0
    print(lines[0])
    want = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in want:
            print(line)
    return 0


def cmd_pause(g, f, pos, log) -> int:
    C.pause(_id(pos, "pause"), _opts(g, f, log))
    return 0


def cmd_resume(g, f, pos, log) -> int:
    C.resume(_id(pos, "resume"), _opts(g, f, log))
    return 0


def _duration(s: str) -> float:
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for u, mult in units:
        if s.endswith(u) and s[: -len(u)].replace(".", "", 1).isdigit():
            return float(s[: -len(u)]) * mult
    if s.replace(".", "", 1).isdigit():
        return float(s)
    raise InvalidArgument(f"invalid duration {s!r} (e.g. 5s, 500ms)")


def cmd_events(g, f, pos, log) -> int:
    import time

    from berth.runtime import cgroup

    root = g.get("root") or state.DEFAULT_ROOT
    cid = _id(pos, "events")
    interval = _duration(f.get("interval", "5s"))
    if interval <= 0:
        raise InvalidArgument("events: --interval must be positive")
    st, stat = C.load_with_status(root, cid)
    if stat == "stopped":
        raise InvalidArgument(f"container not running: {cid}")
    mgr = cgroup.need(st, "events")
    if f.get("stats"):
        _print_json({"type": "stats", "id": cid, "data": mgr.stats()}, None)
        return 0
    ooms = mgr.oom_kill_count()
    import gc

    gc.enable()  # a long-running loop
    while True:
        n = mgr.oom_kill_count()
        if n > ooms:
            _print_json({"type": "oom", "id": cid}, None)
            ooms = n
        if state.status(root, st) == "stopped":
            return 0
        _print_json({"type": "stats", "id": cid, "data": mgr.stats()}, None)
        time.sleep(interval)


_SIZE = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3,
         "t": 1024**4, "tb": 1024**4}


def _size(s: str, flag: str) -> int:
    t = s.strip().lower()
    if t == "-1":
        return -1
    num = t.rstrip("bkmgt")
    unit = t[len(num):]
    try:
        if unit not in _SIZE:
            raise ValueError
        return int(float(num) * _SIZE[unit])
    except ValueError:
        raise InvalidArgument(f"update: --{flag} {s!r}: not a size (e.g. 512m)") from None


def _int(s: str, flag: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise InvalidArgument(f"update: --{flag} {s!r}: not an integer") from None


def cmd_update(g, f, pos, log) -> int:
    from berth.runtime import cgroup

    root = g.get("root") or state.DEFAULT_ROOT
    cid = _id(pos, "update")
    st, stat = C.load_with_status(root, cid)
    if stat == "stopped":
        raise InvalidArgument(f"container not running: {cid}")
    if f.get("resources"):
        src = f["resources"]
        if src == "-":
            data = sys.stdin.read()
        else:
            with open(src) as fh:
                data = fh.read()
        try:
            res = jsonio.loads(data)
        except ValueError as e:
            raise InvalidArgument(f"update: --resources {src}: malformed JSON: {e}") from None
        if not isinstance(res, dict):
            raise InvalidArgument(f"update: --resources {src}: must be a JSON object (linux.resources)")
    else:
        res = {}
        mem, cpu, pids, blk = {}, {}, {}, {}
        for flag, (sect, key, conv) in {
            "memory": (mem, "limit", _size), "memory-reservation": (mem, "reservation", _size),
            "memory-swap": (mem, "swap", _size), "kernel-memory": (mem, "kernel", _size),
            "kernel-memory-tcp": (mem, "kernelTCP", _size),
            "cpu-share": (cpu, "shares", _int), "cpu-quota": (cpu, "quota", _int),
            "cpu-period": (cpu, "period", _int), "cpu-rt-period": (cpu, "realtimePeriod", _int),
            "cpu-rt-runtime": (cpu, "realtimeRuntime", _int),
            "cpuset-cpus": (cpu, "cpus", None), "cpuset-mems": (cpu, "mems", None),
            "pids-limit": (pids, "limit", _int), "blkio-weight": (blk, "weight", _int),
        }.items():
            if flag in f:
                sect[key] = conv(f[flag], flag) if conv else f[flag]
        for name, sect in (("memory", mem), ("cpu", cpu), ("pids", pids), ("blockIO", blk)):
            if sect:
                res[name] = sect
        if f.get("l3-cache-schema") or f.get("mem-bw-schema"):
            raise Unsupported("update: Intel RDT is not supported")
    if not res:
        raise InvalidArgument("update: nothing to update (give flags or --resources FILE)")
    cgroup.need(st, "update").set(res)
    cfg = st.setdefault("config", {})
    cur = cfg.setdefault("linux", {}).setdefault("resources", {})
    for k, v in res.items():
        if isinstance(v, dict) and isinstance(cur.get(k), dict):
            cur[k].update(v)
        else:
            cur[k] = v
    state.save(root, cid, st)
    return 0


def cmd_exec(g, f, pos, log) -> int:
    root = g.get("root") or state.DEFAULT_ROOT
    cid = _id(pos[:1], "exec")
    if f.get("process"):
        try:
            proc = jsonio.load_file(f["process"])
        except ValueError as e:
            raise InvalidArgument(f"exec: --process {f['process']}: malformed JSON: {e}") from None
        if len(pos) > 1:
            raise InvalidArgument("exec: give either --process or a command, not both")
    else:
        if len(pos) < 2:
            raise InvalidArgument("exec: a command is required (or --process FILE)")
        st = state.load(root, cid)
        base = (st.get("config") or {}).get("process") or {}
        proc = {k: v for k, v in base.items() if k not in ("args", "terminal", "consoleSize")}
        proc["args"] = pos[1:]
        proc["terminal"] = bool(f.get("tty"))
        if f.get("env"):
            env = list(proc.get("env") or [])
            for e in f["env"]:
                k = e.split("=", 1)[0]
                env = [x for x in env if x.split("=", 1)[0] != k] + [e]
            proc["env"] = env
        if f.get("cwd"):
            proc["cwd"] = f["cwd"]
        if f.get("user"):
            u, _, gr = f["user"].partition(":")
            try:
                user = {"uid": int(u), "gid": int(gr) if gr else 0}
            except ValueError:
                raise InvalidArgument(f"exec: --user {f['user']!r}: use numeric UID[:GID]") from None
            proc["user"] = user
        if f.get("additional-gids"):
            proc.setdefault("user", {})["additionalGids"] = [int(x) for x in f["additional-gids"]]
        if f.get("no-new-privs"):
            proc["noNewPrivileges"] = True
        if f.get("cap"):
            caps = {k: list(v) for k, v in (proc.get("capabilities") or {}).items()}
            for c in f["cap"]:
                for k in ("bounding", "effective", "permitted", "ambient"):
                    caps.setdefault(k, [])
                    if c not in caps[k]:
                        caps[k].append(c)
            proc["capabilities"] = caps
    if f.get("tty") and f.get("process"):
        proc["terminal"] = True
    return C.exec_(cid, _opts(g, f, log), proc, f.get("ignore-paused", False))


def cmd_spec(g, f, pos, log) -> int:
    from berth.runtime.spec import default_spec

    bundle = f.get("bundle") or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise InvalidArgument(f"{path} exists already: remove it first")
    data = jsonio.dumps(default_spec(rootless=f.get("rootless", False)), 2) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(data)
    os.rename(tmp, path)
    return 0


def cmd_features(g, f, pos, log) -> int:
    from berth.runtime.features import features

    _print_json(features(), 4)
    return 0


def cmd_checkpoint(g, f, pos, log) -> int:
    raise Unsupported("checkpoint is not supported")


def cmd_restore(g, f, pos, log) -> int:
    raise Unsupported("restore is not supported")
