"""/containers/{id}/exec and /exec/{id}/... routes."""

from __future__ import annotations

import asyncio

from berth import errors
from berth.daemon import bodies, execs, monitorctl
from berth.daemon.engine import Engine
from berth.daemon.http import Hijack, Request, Router, close_hijacked, empty, json_response


def register(r: Router, eng: Engine) -> None:
    def get_exec(eid: str) -> execs.ExecRecord:
        ex = eng.execs.get(eid)
        if ex is None:
            raise errors.NotFound(f"No such exec instance: {eid}")
        return ex

    async def create(req: Request):
        c = eng.get(req.params["id"])
        body = await req.json(bodies.EXEC_CREATE, required=True)
        if isinstance(body, dict):  # what is to run in the container goes on record (audit)
            req.audit_extra["cmd"] = body.get("Cmd")
        ex = execs.create(eng, c, body)
        return json_response({"Id": ex.id}, 201)

    async def start(req: Request):
        ex = get_exec(req.params["id"])
        body = await req.json(bodies.EXEC_START) or {}
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: exec start body must be an object")
        detach = bool(body.get("Detach"))
        tty = bool(body.get("Tty"))  # as dockerd: the start's Tty alone decides the framing
        upgrade = "upgrade" in req.headers.get("connection", "").lower()
        if detach:
            reader, writer = await execs.start(eng, ex, detach=True)
            eng.spawn_bg(execs.drain(eng, ex, reader, writer))
            return empty(200)
        conn = await execs.start(eng, ex, detach=False)
        want_in = bool(ex.config.get("AttachStdin"))
        want_out = ex.config.get("AttachStdout", True) is not False
        want_err = ex.config.get("AttachStderr", True) is not False

        async def run(creader, cwriter, pending: bytes):
            mreader, mwriter = conn

            async def upstream():
                try:
                    if pending and want_in:
                        mwriter.write(pending)
                    while True:
                        data = await creader.read(65536)
                        if not data:
                            break
                        if want_in:
                            mwriter.write(data)
                            await mwriter.drain()
                    if mwriter.can_write_eof():
                        mwriter.write_eof()
                except (ConnectionError, OSError):
                    pass

            async def sink(kind: int, data: bytes):
                if (kind == 1 and not want_out) or (kind == 2 and not want_err):
                    return
                try:
                    cwriter.write(data if tty else monitorctl.frame(kind, data))
                    await cwriter.drain()
                except (ConnectionError, OSError):
                    pass

            up = asyncio.ensure_future(upstream())
            try:
                await execs.drain(eng, ex, mreader, mwriter, sink)
            finally:
                await close_hijacked(cwriter, up)

        if not upgrade:
            # Old-style clients: stream raw on a plain 200 all the same.
            pass
        return Hijack(run)

    async def inspect(req: Request):
        return json_response(get_exec(req.params["id"]).inspect())

    async def resize(req: Request):
        ex = get_exec(req.params["id"])
        if not ex.running:
            raise errors.Conflict(f"Exec {ex.id} is not running")
        try:
            await monitorctl.call(ex.container.sock, {"op": "exec_resize", "id": ex.id, "h": req.qint("h", 0),
                                                      "w": req.qint("w", 0)})
        except errors.Unavailable:
            pass
        return empty(200)

    r.add("POST", "/containers/{id}/exec", create)
    r.add("POST", "/exec/{id}/start", start)
    r.add("GET", "/exec/{id}/json", inspect)
    r.add("POST", "/exec/{id}/resize", resize)
