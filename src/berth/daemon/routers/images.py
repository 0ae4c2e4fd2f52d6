"""/images/... routes, /commit, on the storage core (berth.images.Store)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator

from berth import errors
from berth.daemon import bodies
from berth.daemon.container import parse_rfc3339
from berth.daemon.engine import Engine
from berth.daemon.http import Request, Response, Router, Stream, empty, json_response
from berth.images import crash


def image_summary(img) -> dict:
    cfg = (img.config or {}).get("config") or {}
    created = img.created or (img.config or {}).get("created") or ""
    try:
        created_unix = int(parse_rfc3339(created)) if created else 0
    except ValueError:
        created_unix = 0
    return {"Containers": -1, "Created": created_unix, "Id": img.id, "Labels": cfg.get("Labels") or None,
            "ParentId": getattr(img, "parent", None) or "", "RepoDigests": list(img.repo_digests or []),
            "RepoTags": list(img.repo_tags or []), "SharedSize": -1, "Size": img.size, "VirtualSize": img.size}


async def spool_body(eng: Engine, req: Request) -> tempfile.SpooledTemporaryFile:
    """The request body (chunked or not) in a temp file the store's threads can read."""
    tmpdir = os.path.join(eng.cfg.root, "tmp")
    os.makedirs(tmpdir, exist_ok=True)
    f = tempfile.TemporaryFile(dir=tmpdir)  # noqa: SIM115
    async for chunk in req.stream():
        f.write(chunk)
    f.seek(0)
    return f


async def file_chunks(f) -> AsyncIterator[bytes]:
    try:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return
            yield chunk
    finally:
        f.close()


def _msg(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def register(r: Router, eng: Engine) -> None:
    st = lambda: eng.store  # noqa: E731

    async def list_(req: Request):
        flt = req.filters()
        if req.q("filter"):
            flt.setdefault("reference", []).append(req.q("filter"))
        try:
            images = await eng.to_thread(st().list_images, flt or None)
        except TypeError:
            images = await eng.to_thread(st().list_images)
        out = []
        show_all = req.qbool("all")
        for img in images:
            s = image_summary(img)
            if req.qbool("shared-size"):
                s["SharedSize"] = 0
            if not show_all and not img.repo_tags and getattr(img, "children", None):
                continue
            out.append(s)
        return json_response(out)

    async def inspect(req: Request):
        name = req.params["name"]
        if hasattr(st(), "inspect_image"):
            return json_response(await eng.to_thread(st().inspect_image, name))
        img = await eng.to_thread(st().resolve_image, name)
        return json_response({"Id": img.id, "RepoTags": img.repo_tags, "RepoDigests": img.repo_digests,
                              "Config": (img.config or {}).get("config") or {}, "Size": img.size})

    async def history(req: Request):
        return json_response(await eng.to_thread(st().history, req.params["name"]))

    async def tag(req: Request):
        name = req.params["name"]
        repo = req.q("repo") or ""
        if not repo:
            raise errors.InvalidArgument("repository name must have at least one component")
        t = req.q("tag") or ""
        ref = f"{repo}:{t}" if t else repo
        img = await eng.to_thread(st().resolve_image, name)
        await eng.to_thread(st().tag, img.id, ref)
        eng.events.emit("image", "tag", img.id, {"name": ref})
        return empty(201)

    async def remove(req: Request):
        name = req.params["name"]
        force = req.qbool("force")
        img = await eng.to_thread(st().resolve_image, name)
        users = [c for c in eng.containers.values() if c.image_id == img.id]
        running = [c for c in users if c.running]
        if running and force and len(img.repo_tags) <= 1:
            raise errors.Conflict(
                f"conflict: unable to delete {img.id[7:19]} (cannot be forced) - image is being used by running "
                f"container {running[0].id[:12]}")
        res = await eng.to_thread(st().remove_image, name, force)
        for item in res:
            for k, v in item.items():
                eng.events.emit("image", "untag" if k == "Untagged" else "delete", img.id if k == "Untagged" else v,
                                {"name": v if k == "Untagged" else name})
        return json_response(res)

    async def create(req: Request):
        src = req.q("fromSrc")
        if src is None:
            image = req.q("fromImage") or ""
            tag = req.q("tag") or ""
            ref = f"{image}:{tag}" if tag and "@" not in image else image
            try:
                from berth.distribution import pull  # type: ignore[attr-defined]  # noqa: F401
            except ImportError:
                raise errors.NotFound(
                    f"No such image: {ref} (berthd cannot pull from registries yet: load or import the image)")
            raise errors.Unsupported("pull is not wired into berthd yet")
        if src != "-":
            raise errors.Unsupported("import from a URL is not supported: send the tar as the request body (fromSrc=-)")
        repo = req.q("repo") or ""
        tag = req.q("tag") or ""
        ref = (f"{repo}:{tag}" if tag else repo) or None
        changes = req.qlist("changes")
        message = req.q("message") or ""
        f = await spool_body(eng, req)
        try:
            img = await eng.to_thread(st().import_rootfs_tar, f, ref, changes, message)
        finally:
            f.close()
        eng.events.emit("image", "import", img.id, {"name": ref or img.id})

        async def gen():
            yield _msg({"status": img.id})

        return Stream(gen())

    async def load(req: Request):
        f = await spool_body(eng, req)
        try:
            loaded = await eng.to_thread(st().load_archive, f)
        finally:
            f.close()
        for name in loaded:
            eng.events.emit("image", "load", name, {"name": name})

        async def gen():
            for name in loaded:
                if name.startswith("sha256:"):
                    line = f"Loaded image ID: {name}\n"
                else:
                    line = f"Loaded image: {name}\n"
                yield _msg({"stream": line})

        return Stream(gen())

    async def save(req: Request):
        names = req.qlist("names")
        return await _save(names)

    async def save_one(req: Request):
        return await _save([req.params["name"]])

    async def _save(names: list[str]):
        if not names:
            raise errors.InvalidArgument("no image names given")
        for n in names:
            await eng.to_thread(st().resolve_image, n)
        tmpdir = os.path.join(eng.cfg.root, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        f = tempfile.TemporaryFile(dir=tmpdir)  # noqa: SIM115
        await eng.to_thread(st().save_archive, names, f)
        f.seek(0)
        for n in names:
            eng.events.emit("image", "save", n, {"name": n})
        return Stream(file_chunks(f), content_type="application/x-tar")

    async def prune(req: Request):
        flt = req.filters()
        dangling = True
        for v in flt.get("dangling", []):
            dangling = v.lower() in ("true", "1")
        res = await eng.to_thread(st().prune_images, dangling)
        eng.events.emit("image", "prune", "", {"reclaimed": str(res.get("SpaceReclaimed", 0))})
        return json_response(res)

    async def commit(req: Request):
        c = eng.get(req.q("container") or "")
        body = await req.json(bodies.COMMIT) or {}
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: commit config must be an object")
        repo = req.q("repo") or ""
        tag = req.q("tag") or ""
        ref = (f"{repo}:{tag}" if tag else repo) or None
        pause = req.qbool("pause", True)
        cfg = dict(c.config)
        cfg.update({k: v for k, v in body.items() if v not in (None, "", [], {})})
        changes = req.qlist("changes")
        paused_here = False
        if pause and c.running and not c.state.get("Paused"):
            c.commit_pause = True
            c.save()  # before the freeze: a restart after a crash mid-commit resumes the container
            try:
                await eng.pause(c)
                paused_here = True
            except errors.BerthError:
                c.commit_pause = False
        crash.point("daemon-commit-paused")
        try:
            img = await eng.to_thread(st().commit_container, c.id, cfg, ref, req.q("comment") or "",
                                      req.q("author") or "", changes)
        finally:
            if paused_here:
                c.commit_pause = False
                await eng.unpause(c)
        eng.events.emit("container", "commit", c.id, c.event_attrs(comment=req.q("comment") or ""))
        return json_response({"Id": img.id}, 201)

    async def search(req: Request):
        raise errors.Unsupported("image search needs a registry client, which berthd does not have yet")

    async def push(req: Request):
        raise errors.Unsupported("push needs a registry client, which berthd does not have yet")

    r.add("GET", "/images/json", list_)
    r.add("POST", "/images/create", create)
    r.add("POST", "/images/load", load)
    r.add("GET", "/images/get", save)
    r.add("POST", "/images/prune", prune)
    r.add("GET", "/images/search", search)
    r.add("POST", "/commit", commit)
    r.add("GET", "/images/{name:.+}/json", inspect)
    r.add("GET", "/images/{name:.+}/history", history)
    r.add("GET", "/images/{name:.+}/get", save_one)
    r.add("POST", "/images/{name:.+}/tag", tag)
    r.add("POST", "/images/{name:.+}/push", push)
    r.add("DELETE", "/images/{name:.+}", remove)
    _ = Response
