"""/containers/... routes."""

from __future__ import annotations

import asyncio
import json
import re
import time

from berth import errors
from berth.daemon import bodies, monitorctl
from berth.daemon.container import Container, parse_rfc3339, parse_rfc3339_ns
from berth.daemon.engine import Engine, parse_signal
from berth.daemon.http import Hijack, Request, Router, Stream, close_hijacked, empty, json_response
from berth.daemon.logs import read_logs


def register(r: Router, eng: Engine) -> None:
    async def create(req: Request):
        body = await req.json(bodies.CONTAINER_CREATE, required=True)
        c, warnings = await eng.create(body, req.q("name") or None)
        return json_response({"Id": c.id, "Warnings": warnings}, 201)

    async def list_(req: Request):
        all_ = req.qbool("all")
        limit = req.qint("limit", -1)
        size = req.qbool("size")
        flt = req.filters()
        for k in flt:
            if k not in ("id", "name", "label", "status", "ancestor", "exited", "before", "since", "volume",
                         "network", "health", "isolation", "is-task", "expose", "publish"):
                raise errors.InvalidArgument(f"invalid filter '{k}'")
        for s in flt.get("status", []):
            if s not in ("created", "restarting", "running", "removing", "paused", "exited", "dead"):
                raise errors.InvalidArgument(f"invalid filter 'status={s}'")
        if limit is not None and limit > 0 or "status" in flt or "exited" in flt:
            all_ = True if ("status" in flt or "exited" in flt or (limit or 0) > 0) else all_
        cs = sorted(eng.containers.values(), key=lambda c: c.created, reverse=True)
        out = []
        for c in cs:
            if not all_ and not c.running:
                continue
            if not _match(eng, c, flt):
                continue
            sz = None
            if size:
                sz = (await eng.to_thread(_size, eng, c.id), 0)
            out.append(c.summary(sz))
            if limit is not None and limit > 0 and len(out) >= limit:
                break
        return json_response(out)

    async def inspect(req: Request):
        c = eng.get(req.params["id"])
        size = None
        if req.qbool("size"):
            size = (await eng.to_thread(_size, eng, c.id), 0)
        return json_response(c.inspect(sorted(c.exec_ids), size))

    async def start(req: Request):
        c = eng.get(req.params["id"])
        if req.q("detachKeys"):
            pass
        started = await eng.start(c)
        return empty(204 if started else 304)

    async def stop(req: Request):
        c = eng.get(req.params["id"])
        t = req.qint("t")
        ok = await eng.stop(c, t, req.q("signal"))
        return empty(204 if ok else 304)

    async def restart(req: Request):
        c = eng.get(req.params["id"])
        await eng.restart(c, req.qint("t"), req.q("signal"))
        return empty(204)

    async def kill(req: Request):
        c = eng.get(req.params["id"])
        sig = parse_signal(req.q("signal"), 9)
        await eng.kill(c, sig)
        return empty(204)

    async def pause(req: Request):
        await eng.pause(eng.get(req.params["id"]))
        return empty(204)

    async def unpause(req: Request):
        await eng.unpause(eng.get(req.params["id"]))
        return empty(204)

    async def rename(req: Request):
        await eng.rename(eng.get(req.params["id"]), req.q("name") or "")
        return empty(204)

    async def remove(req: Request):
        c = eng.get(req.params["id"])
        if req.qbool("link"):
            raise errors.InvalidArgument("links are not supported")
        await eng.remove(c, force=req.qbool("force"), volumes=req.qbool("v"))
        return empty(204)

    async def update(req: Request):
        c = eng.get(req.params["id"])
        warnings = await eng.update(c, await req.json(bodies.CONTAINER_UPDATE, required=True))
        return json_response({"Warnings": warnings})

    async def wait(req: Request):
        c = eng.get(req.params["id"])
        cond = req.q("condition") or "not-running"
        if cond not in ("not-running", "next-exit", "removed"):
            raise errors.InvalidArgument(f"invalid condition: {cond!r}")
        fut = eng.wait_future(c, cond)

        async def gen():
            # Headers go out first (the CLI waits for them before it calls start).
            yield b""
            code = await asyncio.shield(fut)
            err = None
            if c.state.get("Error") and cond != "removed":
                err = {"Message": c.state["Error"]}
            yield json.dumps({"Error": err, "StatusCode": code}).encode() + b"\n"

        return Stream(gen())

    async def resize(req: Request):
        c = eng.get(req.params["id"])
        if not c.running:
            raise errors.Conflict(f"Container {c.id} is not running")
        h, w = req.qint("h", 0), req.qint("w", 0)
        try:
            await monitorctl.call(c.sock, {"op": "resize", "h": h, "w": w})
        except errors.Unavailable:
            pass
        return empty(200)

    async def logs(req: Request):
        c = eng.get(req.params["id"])
        stdout, stderr = req.qbool("stdout"), req.qbool("stderr")
        if not stdout and not stderr:
            raise errors.InvalidArgument("Bad parameters: you must choose at least one stream")
        if (c.host_config.get("LogConfig") or {}).get("Type") == "none":
            raise errors.InvalidArgument('configured logging driver does not support reading')
        tail_s = req.q("tail", "all") or "all"
        tail = None if tail_s == "all" else _int(tail_s, "tail")
        since = _ts(req.q("since"))
        until = _ts(req.q("until"))
        follow = req.qbool("follow")
        gen = read_logs(c.log_path, tty=bool(c.config.get("Tty")), stdout=stdout, stderr=stderr,
                        follow=follow, tail=tail, since=since, until=until, timestamps=req.qbool("timestamps"),
                        running=lambda: c.running or bool(c.state.get("Restarting")))
        return Stream(gen, content_type=None)

    async def attach(req: Request):
        c = eng.get(req.params["id"])
        if c.state.get("Paused"):
            raise errors.Conflict("You cannot attach to a paused container, unpause it first")
        want_in = req.qbool("stdin")
        want_out = req.qbool("stdout")
        want_err = req.qbool("stderr")
        tty = bool(c.config.get("Tty"))
        if not req.qbool("stream") and not req.qbool("logs"):
            raise errors.InvalidArgument("Bad parameters: you must choose at least one stream")
        keys = parse_detach_keys(req.q("detachKeys"))
        loop = asyncio.get_running_loop()
        # Register before the 101 goes out: `start` may arrive right after.
        ready = None
        started = None
        if not c.running:
            started = loop.create_future()
            ready = loop.create_future()
            c.start_waiters.append(started)
            c.attach_ready.append(ready)
        eng.events.emit("container", "attach", c.id, c.event_attrs())

        async def run(reader, writer, pending: bytes):
            try:
                if req.qbool("logs"):
                    # The log so far first (docker-py attach(logs=True)), then live output if stream=1.
                    async for chunk in read_logs(c.log_path, tty=tty, stdout=want_out, stderr=want_err,
                                                 follow=False, tail=None, since=0, until=0, timestamps=False,
                                                 running=lambda: False):
                        writer.write(chunk)
                        await writer.drain()
                    # stream=1 goes on as dockerd: before the start too, it waits for the output.
                    if not req.qbool("stream"):
                        if started is not None:
                            started.cancel()
                        return
                if started is not None:  # noqa: SIM102
                    # A half-close is not a goodbye (the CLI half-closes at once without stdin):
                    # just wait for the start.
                    if not await started:
                        return
                await pump(c, reader, writer, pending, want_in, want_out, want_err, tty, ready, keys)
            finally:
                if ready is not None and not ready.done():
                    ready.set_result(False)
                try:
                    writer.close()
                except Exception:
                    pass

        return Hijack(run)

    async def top(req: Request):
        from berth.daemon.inspectors import top as _top

        c = eng.get(req.params["id"])
        if not c.running:
            raise errors.Conflict(f"Container {c.id} is not running")
        return json_response(await _top(c, req.q("ps_args") or "-ef"))

    async def stats(req: Request):
        from berth.daemon.inspectors import stats_stream

        c = eng.get(req.params["id"])
        stream = req.qbool("stream", True)
        one_shot = req.qbool("one-shot")
        gen = stats_stream(c, stream=stream, one_shot=one_shot)
        if not stream:
            body = b""
            async for chunk in gen:
                body = chunk
            from berth.daemon.http import Response

            return Response(200, body, "application/json")
        return Stream(gen, content_type=None)

    async def prune(req: Request):
        flt = req.filters()
        until = flt.get("until", [])
        cutoff = None
        if until:
            try:
                cutoff = float(until[0])
            except ValueError:
                cutoff = parse_rfc3339(until[0])
        deleted, freed = [], 0
        for c in list(eng.containers.values()):
            if c.running or c.state.get("Restarting") or c.removing:
                continue
            if cutoff is not None and parse_rfc3339(c.created) >= cutoff:
                continue
            if not _match(eng, c, {k: v for k, v in flt.items() if k == "label"}):
                continue
            freed += await eng.to_thread(_size, eng, c.id)
            await eng.remove(c, force=False, volumes=False)
            deleted.append(c.id)
        eng.events.emit("container", "prune", "", {"reclaimed": str(freed)})
        return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": freed})

    r.add("POST", "/containers/prune", prune)
    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", list_)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/containers/{id}/start", start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("POST", "/containers/{id}/pause", pause)
    r.add("POST", "/containers/{id}/unpause", unpause)
    r.add("POST", "/containers/{id}/rename", rename)
    r.add("POST", "/containers/{id}/update", update)
    r.add("POST", "/containers/{id}/wait", wait, mutating=False)  # waiting changes nothing
    r.add("POST", "/containers/{id}/resize", resize)
    # Attaching only to read the output is as read-only as GET /logs; input into it is a change.
    r.add("POST", "/containers/{id}/attach", attach, mutating=lambda req: req.qbool("stdin"))
    r.add("GET", "/containers/{id}/logs", logs)
    r.add("GET", "/containers/{id}/top", top)
    r.add("GET", "/containers/{id}/stats", stats)
    r.add("DELETE", "/containers/{id}", remove)


async def pump(c: Container, reader, writer, pending: bytes, want_in: bool, want_out: bool, want_err: bool,
               tty: bool, ready: asyncio.Future | None, detach_keys: bytes = b"\x10\x11") -> None:
    """Connect the hijacked client to the monitor's attach socket until the container's output ends."""
    try:
        mreader, mwriter = await monitorctl.connect(c.sock, {"op": "attach", "stdin": want_in,
                                                              "stdout": want_out, "stderr": want_err})
    except errors.Unavailable:
        return
    if not tty:
        detach_keys = b""  # as dockerd: detach keys only apply to a terminal; raw stdin is data
    first = await monitorctl.read_frame(mreader)  # {"ok": true}: registered with the monitor
    if ready is not None and not ready.done():
        ready.set_result(True)
    if first is None:
        mwriter.close()
        return

    async def upstream():
        try:
            if pending and want_in:
                mwriter.write(pending)
            prev = b""
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if want_in:
                    seq = prev + data
                    cut = seq.find(detach_keys) if detach_keys else -1
                    if cut >= 0:
                        # Docker's detach keys: leave the container running, end this attach.
                        before = seq[:cut][len(prev):] if cut >= len(prev) else b""
                        if before:
                            mwriter.write(before)
                        detached.set()
                        return
                    mwriter.write(data)
                    await mwriter.drain()
                    prev = data[-(len(detach_keys) - 1):] if detach_keys and len(detach_keys) > 1 else b""
            if want_in and mwriter.can_write_eof():
                mwriter.write_eof()
        except (ConnectionError, OSError):
            pass

    detached = asyncio.Event()
    up = asyncio.ensure_future(upstream())
    det = asyncio.ensure_future(detached.wait())
    try:
        while True:
            rd = asyncio.ensure_future(monitorctl.read_frame(mreader))
            done, _ = await asyncio.wait({rd, det}, return_when=asyncio.FIRST_COMPLETED)
            if rd not in done:
                rd.cancel()
                break
            fr = rd.result()
            if fr is None:
                break
            kind, payload = fr
            if kind == monitorctl.CONTROL:
                if b'"exit"' in payload:
                    break
                continue
            writer.write(payload if tty else monitorctl.frame(kind, payload))
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        det.cancel()
        mwriter.close()
        await close_hijacked(writer, up)


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's --detach-keys syntax: comma-separated "ctrl-<x>" or single characters."""
    if spec is None:
        return b"\x10\x11"  # ctrl-p, ctrl-q
    out = bytearray()
    for part in filter(None, spec.split(",")):
        p = part.strip()
        if p.startswith("ctrl-") and len(p) == 6:
            ch = p[5]
            code = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}.get(ch)
            if code is None:
                if not ch.isalpha():
                    raise errors.InvalidArgument(f"Invalid detach keys ({spec}) provided")
                code = ord(ch.lower()) - ord("a") + 1
            out.append(code)
        elif len(p) == 1:
            out.append(ord(p))
        else:
            raise errors.InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


def _match(eng: Engine, c: Container, flt: dict[str, list[str]]) -> bool:
    for k, vals in flt.items():
        if not vals:
            continue
        if k == "id":
            ok = any(c.id.startswith(v) for v in vals)
        elif k == "name":
            import re

            ok = any(re.search(v.lstrip("/") if v.startswith("/") else v, c.name) for v in vals)
        elif k == "status":
            ok = c.state.get("Status") in vals
        elif k == "exited":
            ok = not c.running and c.state.get("StartedAt", "").startswith("0001") is False and str(
                c.state.get("ExitCode")) in vals
        elif k == "label":
            labels = c.labels()
            ok = True
            for v in vals:
                key, eq, val = v.partition("=")
                if key not in labels or (eq and labels[key] != val):
                    ok = False
        elif k == "ancestor":
            ok = False
            for v in vals:
                if v in (c.image_ref, c.image_id) or c.image_id.startswith("sha256:" + v) or c.image_id.startswith(v):
                    ok = True
                else:
                    try:
                        img = eng.store.resolve_image(v)
                        ok = ok or img.id == c.image_id
                    except errors.BerthError:
                        pass
        elif k in ("before", "since"):
            try:
                other = eng.get(vals[0])
            except errors.NotFound:
                raise errors.NotFound(f"No such container: {vals[0]}")
            ok = c.created < other.created if k == "before" else c.created > other.created
        elif k == "volume":
            ok = any(m.get("Name") in vals or m.get("Destination") in vals for m in c.mounts)
        elif k == "health":
            ok = (c.state.get("Health") or {}).get("Status", "none") in vals
        elif k == "network":
            ok = (c.host_config.get("NetworkMode") or "none") in vals
        else:
            ok = True
        if not ok:
            return False
    return True


def _size(eng: Engine, cid: str) -> int:
    try:
        return int(eng.store.container_fs_size(cid))
    except Exception:
        return 0


def _int(v: str, name: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for {name}: {v!r}")


def _ts(v: str | None) -> int:
    """A --since/--until value (unix seconds with up to 9 decimals, as the CLI sends, or RFC3339)
    as unix nanoseconds, exactly."""
    if not v:
        return 0
    m = re.fullmatch(r"(\d+)(?:\.(\d{0,9}))?", v.strip())
    if m:
        return int(m.group(1)) * 1_000_000_000 + int(((m.group(2) or "") + "000000000")[:9])
    try:
        return parse_rfc3339_ns(v)
    except ValueError:
        raise errors.InvalidArgument(f"invalid time value {v!r}")


_ = time
