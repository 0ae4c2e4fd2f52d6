"""berthd's settings: flags first, then BERTH_* environment variables, then defaults."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: ["unix:///run/berth/berth.sock"])
    root: str = "/var/lib/berth"
    exec_root: str = "/run/berth"
    group: str | None = None
    storage_driver: str | None = None
    runtime: str = ""  # path of the OCI runtime binary (berth-runtime by default)
    log_level: str = "info"
    log_max_size: int = 10 << 20  # json-file rotation default, per container
    log_max_files: int = 2
    monitor: str = "shared"  # one monitor host for all containers, or "per-container" (isolation)
    audit_log_max_size: int = 10 << 20  # audit.jsonl and events.jsonl rotation (berth.daemon.audit)
    audit_log_max_files: int = 5
    # Hostile or broken clients (berth.daemon.http.Limits): seconds, a count, bytes.
    header_timeout: float = 60.0
    body_timeout: float = 60.0
    idle_timeout: float = 300.0
    max_connections: int = 0  # 0: from the file descriptor limit (default_max_connections)
    max_json_body: int = 32 << 20

    @property
    def runtime_root(self) -> str:
        return os.path.join(self.exec_root, "runtime")


def default_runtime() -> str:
    """berth-runtime beside the berthd launcher (the venv's bin), beside the interpreter, or on PATH."""
    cands = [os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "berth-runtime"),
             os.path.join(os.path.dirname(sys.executable), "berth-runtime"), shutil.which("berth-runtime")]
    for cand in cands:
        if cand and os.path.exists(cand):
            return cand
    return "berth-runtime"


def default_max_connections() -> int:
    """Half the soft file descriptor limit (the rest: containers' logs, monitors, the store), 64 to 10000."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10000
    return max(64, min(10000, soft // 2))


def _number(p: argparse.ArgumentParser, name: str, flag: object, env: str, dflt: float, kind: type) -> float:
    raw = flag if flag is not None else os.environ.get(env)
    if raw is None or raw == "":
        return dflt
    try:
        v = kind(raw)
    except ValueError:
        p.error(f"{name}: {raw!r} is not a number")
    if v < 0 or (kind is float and v == 0):
        p.error(f"{name}: {raw!r} must be positive")
    return v


def parse_args(argv: list[str] | None = None) -> DaemonConfig:
    p = argparse.ArgumentParser(prog="berthd", description="berth's engine daemon (Docker Engine API)")
    p.add_argument("-H", "--host", action="append", default=None,
                   help="socket to listen on: unix://PATH or tcp://HOST:PORT (repeatable)")
    p.add_argument("--root", default=None, help="persistent state (default /var/lib/berth, BERTH_ROOT)")
    p.add_argument("--exec-root", default=None, help="runtime state (default /run/berth)")
    p.add_argument("--group", "-G", default=None, help="group owning the unix socket (mode 0660)")
    p.add_argument("--storage-driver", "-s", default=None, help="overlay, vfs or btrfs (default: detect)")
    p.add_argument("--runtime", default=None, help="OCI runtime binary (default berth-runtime)")
    p.add_argument("--log-level", "-l", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--monitor", default=None, choices=["shared", "per-container"],
                   help="one monitor process for every container (default), or one per container "
                        "(BERTH_MONITOR)")
    p.add_argument("--header-timeout", default=None, metavar="SECONDS",
                   help="close a connection whose request head is not complete after this long (default 60, "
                        "BERTH_HEADER_TIMEOUT)")
    p.add_argument("--body-timeout", default=None, metavar="SECONDS",
                   help="close a connection whose request body stalls this long (default 60, BERTH_BODY_TIMEOUT)")
    p.add_argument("--idle-timeout", default=None, metavar="SECONDS",
                   help="close a keep-alive connection idle this long (default 300, BERTH_IDLE_TIMEOUT)")
    p.add_argument("--max-connections", default=None, metavar="N",
                   help="connections served at once; beyond, accepting pauses (default: half the open file "
                        "limit, at most 10000; BERTH_MAX_CONNECTIONS)")
    p.add_argument("--max-json-body", default=None, metavar="BYTES",
                   help="largest JSON request body (default 32 MiB, BERTH_MAX_JSON_BODY); streamed bodies "
                        "(image load, archive upload) have no limit")
    p.add_argument("--audit-log-max-size", default=None,
                   help="rotate audit.jsonl and events.jsonl at this size (default 10m; k, m, g suffixes)")
    p.add_argument("--audit-log-max-files", type=int, default=None,
                   help="audit/events log files kept, the current one included (default 5)")
    a = p.parse_args(argv)
    env = os.environ
    hosts = a.host or ([env["BERTH_HOST"]] if env.get("BERTH_HOST") else None)
    cfg = DaemonConfig()
    if hosts:
        cfg.hosts = [h if "://" in h else f"unix://{h}" for h in hosts]
    cfg.root = os.path.abspath(a.root or env.get("BERTH_ROOT") or cfg.root)
    cfg.exec_root = os.path.abspath(a.exec_root or env.get("BERTH_EXEC_ROOT") or cfg.exec_root)
    cfg.group = a.group
    cfg.storage_driver = a.storage_driver or env.get("BERTH_STORAGE_DRIVER") or None
    cfg.runtime = a.runtime or env.get("BERTH_RUNTIME") or default_runtime()
    cfg.log_level = a.log_level
    cfg.monitor = a.monitor or env.get("BERTH_MONITOR") or cfg.monitor
    if a.audit_log_max_size:
        v = a.audit_log_max_size.strip().lower().rstrip("b")
        mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(v[-1:], 1)
        try:
            cfg.audit_log_max_size = int(v[:-1] if mult > 1 else v) * mult
        except ValueError:
            p.error(f"--audit-log-max-size: {a.audit_log_max_size!r} is not a size")
    if a.audit_log_max_files is not None:
        if a.audit_log_max_files < 1:
            p.error("--audit-log-max-files must be at least 1")
        cfg.audit_log_max_files = a.audit_log_max_files
    if cfg.monitor not in ("shared", "per-container"):
        p.error(f"BERTH_MONITOR: {cfg.monitor!r} is neither shared nor per-container")
    cfg.header_timeout = _number(p, "--header-timeout", a.header_timeout, "BERTH_HEADER_TIMEOUT",
                                 cfg.header_timeout, float)
    cfg.body_timeout = _number(p, "--body-timeout", a.body_timeout, "BERTH_BODY_TIMEOUT", cfg.body_timeout, float)
    cfg.idle_timeout = _number(p, "--idle-timeout", a.idle_timeout, "BERTH_IDLE_TIMEOUT", cfg.idle_timeout, float)
    cfg.max_connections = int(_number(p, "--max-connections", a.max_connections, "BERTH_MAX_CONNECTIONS", 0, int)) \
        or default_max_connections()
    cfg.max_json_body = int(_number(p, "--max-json-body", a.max_json_body, "BERTH_MAX_JSON_BODY",
                                    cfg.max_json_body, int)) or cfg.max_json_body
    return cfg
