"""berthd: the engine daemon (Docker Engine API on a unix socket)."""

from __future__ import annotations

import asyncio
import fcntl
import grp
import logging
import os
import signal
import socket
import sys

from berth.daemon.config import DaemonConfig, parse_args

log = logging.getLogger("berthd")


def _listen_unix(path: str, group: str | None) -> socket.socket:
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        s.bind(path)
    finally:
        os.umask(old)
    gid = 0
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid if not group.isdigit() else int(group)
        except KeyError:
            raise SystemExit(f"berthd: group {group!r} (for the socket) does not exist")
    os.chown(path, 0, gid)
    os.chmod(path, 0o660)
    s.listen(1024)
    s.setblocking(False)
    return s


def _listen_tcp(host: str, port: int) -> socket.socket:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host.strip("[]"), port))
    s.listen(1024)
    s.setblocking(False)
    return s


def _lock(cfg: DaemonConfig) -> int:
    fd = os.open(os.path.join(cfg.exec_root, "berthd.pid"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"berthd: another berthd is running with exec-root {cfg.exec_root}")
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _lock_root(cfg: DaemonConfig) -> int:
    """One berthd per --root, whatever its exec-root or socket: an flock on <root>/berthd.lock, held
    for the daemon's life (O_CLOEXEC: the monitor host and runtimes berthd starts do not inherit it,
    so a killed berthd's lock is free at once although its containers run on). Holding it, a starting
    berthd knows that whatever is in flight under the root is a dead daemon's (crash recovery)."""
    os.makedirs(cfg.root, mode=0o711, exist_ok=True)
    path = os.path.join(cfg.root, "berthd.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise SystemExit(f"berthd: another berthd (pid {holder}) is running with root {cfg.root} "
                         f"(it holds {path})")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


async def serve(cfg: DaemonConfig) -> None:
    from berth.daemon.engine import Engine
    from berth.daemon.http import Limits, Server
    from berth.daemon.routers import build_router

    eng = Engine(cfg)
    eng.monitors.mode = cfg.monitor
    # A monitor host left by a previous berthd (containers kept running): tell it we are here. A
    # new one starts with the first container start.
    try:
        await eng.monitors.attach()
    except Exception as e:  # noqa: BLE001 - a new host is started when one is needed
        log.warning("monitor host not reachable: %s", e)
    await eng.restore()

    def audit(req, status, err):
        p = req.params
        obj = p.get("id") or p.get("name") or req.q("name") or req.q("container") or None
        rec = eng.audit.record(uid=req.peer.uid, gid=req.peer.gid, pid=req.peer.pid, method=req.method,
                               path=req.path, obj=obj, status=status, error=err, rid=req.audit_id,
                               query="&".join(f"{k}={v[-1]}" for k, v in req.query.items() if k != "filters"),
                               extra=req.audit_extra if status is not None else None)
        req.audit_id = rec["rid"]

    limits = Limits(header_timeout=cfg.header_timeout, body_timeout=cfg.body_timeout,
                    idle_timeout=cfg.idle_timeout, max_connections=cfg.max_connections,
                    max_json_body=cfg.max_json_body)
    server = Server(build_router(eng), audit=audit, limits=limits)
    for h in cfg.hosts:
        if h.startswith("unix://"):
            server.listen(_listen_unix(h[len("unix://"):], cfg.group))
        elif h.startswith("tcp://"):
            host, _, port = h[len("tcp://"):].rpartition(":")
            log.warning("listening on TCP %s: no TLS, no authentication", h)
            server.listen(_listen_tcp(host or "127.0.0.1", int(port)))
        else:
            raise SystemExit(f"berthd: unsupported host {h!r} (unix://PATH or tcp://HOST:PORT)")
    log.info("berthd listening on %s (root %s, exec-root %s, runtime %s)", ", ".join(cfg.hosts), cfg.root,
             cfg.exec_root, cfg.runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down (containers keep running under their monitor host)")
    server.close()
    for t in list(server.connections):
        t.cancel()
    for t in list(eng.bg):
        t.cancel()
    eng.close()


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    logging.basicConfig(level=getattr(logging, cfg.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        print("berthd: must run as root", file=sys.stderr)
        return 1
    os.makedirs(cfg.exec_root, mode=0o711, exist_ok=True)
    _lock_root(cfg)
    _lock(cfg)
    try:
        asyncio.run(serve(cfg))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
