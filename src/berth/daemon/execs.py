"""Exec instances: created by the API, run by the container's monitor (`runtime exec`)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field

from berth import errors
from berth.daemon import monitorctl, spec
from berth.daemon.container import Container, write_run_file

log = logging.getLogger("berthd.execs")


@dataclass
class ExecRecord:
    id: str
    container: Container
    config: dict
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    adopted: bool = False  # loaded from disk after a restart: no berthd task reads its exit
    gone_since: float = 0.0  # (adopted) when its process was first seen gone
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def path(self) -> str:
        return os.path.join(self.container.dir, f"exec-{self.id}.json")

    def save(self) -> None:
        """Persist the record (tmp + rename) so `GET /exec/{id}/json` answers after a restart. No
        fsync: a killed berthd keeps the page cache, and losing an exec record to a power cut costs
        an inspect, not data; exec latency matters more."""
        tmp = f"{self.path}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump({"ID": self.id, "Config": self.config, "Running": self.running,
                           "ExitCode": self.exit_code, "Pid": self.pid, "Started": self.started}, f)
            os.rename(tmp, self.path)
        except OSError:  # the container is being removed
            pass

    @classmethod
    def load_all(cls, c: Container) -> list[ExecRecord]:
        """The container's saved execs; one still marked running is running only if its process is
        (its exit code went with the berthd that watched it)."""
        out = []
        try:
            names = [n for n in os.listdir(c.dir) if n.startswith("exec-") and n.endswith(".json")]
        except OSError:
            return out
        for n in names:
            try:
                with open(os.path.join(c.dir, n)) as f:
                    d = json.load(f)
                ex = cls(id=d["ID"], container=c, config=d["Config"], running=bool(d.get("Running")),
                         exit_code=d.get("ExitCode"), pid=int(d.get("Pid") or 0), started=bool(d.get("Started")),
                         adopted=True)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if ex.running:
                ex.settle_adopted()
            if ex.started and not ex.running:
                ex.done.set()
            out.append(ex)
        return out

    def settle_adopted(self) -> None:
        """An exec that was running when the previous berthd died: the monitor leaves its exit
        code in exec-<id>.exit when nobody reads it; a vanished process without one has no code."""
        c = self.container
        try:
            with open(os.path.join(c.rundir, f"exec-{self.id[:12]}.exit")) as f:
                self.exit_code = int(json.load(f)["exit"])
        except (OSError, ValueError, KeyError, TypeError):
            if c.running and self.pid and os.path.exists(f"/proc/{self.pid}"):
                return
            # reaped, but the monitor may still be draining its output before it writes the code
            if c.running and self.gone_since == 0.0:
                self.gone_since = time.monotonic()
            if c.running and time.monotonic() - self.gone_since < 2.0:
                return
        self.running = False
        self.done.set()
        self.save()

    def inspect(self) -> dict:
        if self.adopted and self.running:
            self.settle_adopted()
        cfg = self.config
        cmd = cfg.get("Cmd") or []
        pc = {"tty": bool(cfg.get("Tty")), "entrypoint": cmd[0] if cmd else "", "arguments": cmd[1:],
              "privileged": bool(cfg.get("Privileged"))}
        if cfg.get("User"):
            pc["user"] = cfg["User"]
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code, "ProcessConfig": pc,
                "OpenStdin": bool(cfg.get("AttachStdin")), "OpenStderr": bool(cfg.get("AttachStderr")),
                "OpenStdout": bool(cfg.get("AttachStdout")), "CanRemove": False,
                "ContainerID": self.container.id, "DetachKeys": cfg.get("DetachKeys") or "", "Pid": self.pid}


def create(eng, c: Container, body: dict) -> ExecRecord:
    if not isinstance(body, dict):
        raise errors.InvalidArgument("invalid JSON: exec config must be an object")
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not cmd or not isinstance(cmd, list) or not all(isinstance(x, str) for x in cmd):
        raise errors.InvalidArgument("No exec command specified")
    if not c.running:
        raise errors.Conflict(f"Container {c.id} is not running")
    if c.state.get("Paused"):
        raise errors.Conflict(f"Container {c.id} is paused, unpause the container before exec")
    env = body.get("Env") or []
    if not isinstance(env, list):
        raise errors.InvalidArgument("invalid JSON: Env must be a list of strings")
    cfg = dict(body)
    cfg["Cmd"] = cmd
    ex = ExecRecord(id=secrets.token_hex(32), container=c, config=cfg)
    eng.execs[ex.id] = ex
    c.exec_ids.add(ex.id)
    ex.save()
    eng.events.emit("container", "exec_create: " + " ".join(cmd), c.id, c.event_attrs(execID=ex.id))
    return ex


def process_json(c: Container, cfg: dict) -> dict:
    """The OCI process for an exec: the container's process with the exec's overrides."""
    with open(os.path.join(c.rundir, "config.json")) as f:
        base = json.load(f)
    proc = dict(base["process"])
    rootfs = base["root"]["path"]
    proc["args"] = list(cfg["Cmd"])
    proc["terminal"] = bool(cfg.get("Tty"))
    env = list(proc.get("env") or [])
    idx = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
    for e in cfg.get("Env") or []:
        k = e.split("=", 1)[0]
        if k in idx:
            env[idx[k]] = e
        else:
            env.append(e)
    proc["env"] = env
    if cfg.get("WorkingDir"):
        proc["cwd"] = cfg["WorkingDir"]
    if cfg.get("User"):
        uid, gid, extra, _home = spec.resolve_user(rootfs, cfg["User"])
        proc["user"] = {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})}
    if cfg.get("Privileged"):
        caps = spec.all_caps()
        proc["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    proc.pop("consoleSize", None)
    return proc


async def start(eng, ex: ExecRecord, detach: bool):
    """Begin the exec; returns the monitor connection (reader, writer) after its {"ok"} reply."""
    c = ex.container
    if ex.started:
        raise errors.Conflict(f"Error: Exec command {ex.id} has already run")
    if not c.running:
        raise errors.Conflict(f"Container {c.id} is not running")
    ex.started = True
    t0 = time.monotonic()
    proc = process_json(c, ex.config)
    path = os.path.join(c.rundir, f"exec-{ex.id[:12]}.json")
    write_run_file(path, proc)
    req = {"op": "exec", "id": ex.id, "process": path, "tty": bool(ex.config.get("Tty")),
           "stdin": bool(ex.config.get("AttachStdin")) and not detach}
    t_spec = time.monotonic()
    reader, writer = await monitorctl.connect(c.sock, req)
    first = await monitorctl.read_frame(reader)
    log.debug("exec %s in %s: process spec %.1f ms, monitor+runtime exec %.1f ms", ex.id[:12], c.id[:12],
              (t_spec - t0) * 1e3, (time.monotonic() - t_spec) * 1e3)
    if first is None:
        writer.close()
        raise errors.SystemError_("the container monitor closed the exec connection")
    msg = json.loads(first[1]) if first[0] == monitorctl.CONTROL else {}
    if "error" in msg:
        writer.close()
        ex.exit_code = int(msg.get("exit", 126))
        ex.done.set()
        if ex.id in eng.execs:
            ex.save()
        raise errors.SystemError_(f"exec failed: {msg['error']}")
    ex.running = True
    ex.pid = int(msg.get("pid") or 0)
    if ex.id in eng.execs:
        ex.save()
    eng.events.emit("container", "exec_start: " + " ".join(ex.config["Cmd"]), c.id, c.event_attrs(execID=ex.id))
    return reader, writer


def finish(eng, ex: ExecRecord, code: int | None) -> None:
    ex.running = False
    ex.exit_code = 126 if code is None else code
    ex.done.set()
    if ex.id in eng.execs:
        ex.save()
    c = ex.container
    eng.events.emit("container", "exec_die", c.id, c.event_attrs(execID=ex.id, exitCode=str(ex.exit_code)))


async def drain(eng, ex: ExecRecord, reader, writer, sink=None) -> int | None:
    """Read the exec's frames until its exit; `sink(kind, data)` gets the output."""
    code = None
    last_err = b""
    try:
        while True:
            fr = await monitorctl.read_frame(reader)
            if fr is None:
                break
            kind, payload = fr
            if kind == monitorctl.CONTROL:
                msg = json.loads(payload)
                if "exit" in msg:
                    code = int(msg["exit"])
                    break
                continue
            if kind == monitorctl.STDERR:
                last_err = payload[-512:]
            if sink is not None:
                await sink(kind, payload)
        if code in (1, 255) and b"-runtime: exec:" in last_err:
            # The runtime could not start the process: Docker's codes, 127 not found, 126 not executable.
            low = last_err.lower()
            code = 127 if (b"not found" in low or b"no such file" in low) else 126
    finally:
        writer.close()
        finish(eng, ex, code)
    return code
