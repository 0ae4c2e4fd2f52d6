"""/volumes/... routes on the storage core's VolumeStore."""

from __future__ import annotations

from berth import errors
from berth.daemon import bodies
from berth.daemon.engine import Engine
from berth.daemon.http import Request, Router, empty, json_response


def volume_json(v) -> dict:
    if hasattr(v, "inspect"):
        return v.inspect()
    return {"Name": v.name, "Driver": "local", "Mountpoint": v.mountpoint, "CreatedAt": v.created_at,
            "Labels": dict(v.labels or {}), "Options": dict(v.options or {}), "Scope": "local"}


def register(r: Router, eng: Engine) -> None:
    def vs():
        v = getattr(eng.store, "volumes", None)
        if v is None:
            raise errors.Unsupported("volumes need the storage core (berth.images.Store)")
        return v

    async def create(req: Request):
        body = await req.json(bodies.VOLUME_CREATE) or {}
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: volume config must be an object")
        name = body.get("Name") or None
        if name is not None and not isinstance(name, str):
            raise errors.InvalidArgument("invalid JSON: Name must be a string")
        try:
            existing = await eng.to_thread(vs().get, name) if name else None
        except errors.NotFound:
            existing = None
        if existing is not None:
            return json_response(volume_json(existing), 201)
        v = await eng.to_thread(vs().create, name, body.get("Driver") or "local", body.get("Labels") or {},
                                body.get("DriverOpts") or {})
        eng.events.emit("volume", "create", v.name, {"driver": "local"})
        return json_response(volume_json(v), 201)

    async def list_(req: Request):
        flt = req.filters()
        try:
            vols = await eng.to_thread(vs().list, flt or None)
        except TypeError:
            vols = await eng.to_thread(vs().list)
        return json_response({"Volumes": [volume_json(v) for v in vols], "Warnings": None})

    async def inspect(req: Request):
        return json_response(volume_json(await eng.to_thread(vs().get, req.params["name"])))

    async def remove(req: Request):
        name = req.params["name"]
        users = [c for c in eng.containers.values() for m in c.mounts if m.get("Name") == name]
        if users and not req.qbool("force"):
            raise errors.Conflict(f"remove {name}: volume is in use - [{users[0].id}]")
        await eng.to_thread(vs().remove, name, req.qbool("force"))
        eng.events.emit("volume", "destroy", name, {"driver": "local"})
        return empty(204)

    async def prune(req: Request):
        flt = req.filters()
        if _api_before(req.api_version, (1, 42)):
            # API <= 1.41 (dockerd 20.10): every unused volume; the `all` filter came with 1.42.
            flt.pop("all", None)
            all_ = True
        else:
            all_ = False  # 1.42+: anonymous volumes only, unless the `all` filter (parsed by the store)
        try:
            names, freed = await eng.to_thread(vs().prune, flt or None, all_)
        except TypeError:
            names, freed = await eng.to_thread(vs().prune)
        eng.events.emit("volume", "prune", "", {"reclaimed": str(freed)})
        return json_response({"VolumesDeleted": names or None, "SpaceReclaimed": freed})

    r.add("POST", "/volumes/create", create)
    r.add("GET", "/volumes", list_)
    r.add("POST", "/volumes/prune", prune)
    r.add("GET", "/volumes/{name}", inspect)
    r.add("DELETE", "/volumes/{name}", remove)


def _api_before(version: str, ref: tuple[int, int]) -> bool:
    """Whether the request's API version ("1.41") is older than `ref`."""
    try:
        major, minor = (int(x) for x in version.split(".", 1))
    except ValueError:
        return False
    return (major, minor) < ref
