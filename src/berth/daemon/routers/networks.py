"""/networks: only the built-in host and none networks until bridge networking lands."""

from __future__ import annotations

from berth import errors
from berth.daemon import bodies
from berth.daemon.engine import Engine
from berth.daemon.http import Request, Router, json_response

_BUILTIN = {"host": "host", "none": "null"}


def _net(name: str) -> dict:
    return {"Name": name, "Id": name.ljust(64, "0")[:64] if False else _id(name), "Created": "0001-01-01T00:00:00Z",
            "Scope": "local", "Driver": _BUILTIN[name], "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []}, "Internal": False, "Attachable": False,
            "Ingress": False, "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {}, "Options": {},
            "Labels": {}}


def _id(name: str) -> str:
    import hashlib

    return hashlib.sha256(f"berth-network-{name}".encode()).hexdigest()


def register(r: Router, eng: Engine) -> None:
    def find(ref: str) -> str:
        for n in _BUILTIN:
            if ref == n or (len(ref) >= 3 and _id(n).startswith(ref)):
                return n
        raise errors.NotFound(f"network {ref} not found")

    async def list_(req: Request):
        return json_response([_net(n) for n in _BUILTIN])

    async def inspect(req: Request):
        return json_response(_net(find(req.params["id"])))

    async def create(req: Request):
        await req.json(bodies.NETWORK_CREATE, required=True)  # a malformed body is a 400 even here
        raise errors.Unsupported("creating networks needs bridge networking, which berth does not implement yet")

    async def prune(req: Request):
        return json_response({"NetworksDeleted": None})

    async def build_prune(req: Request):
        return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})

    r.add("POST", "/networks/prune", prune)
    r.add("POST", "/build/prune", build_prune)
    r.add("GET", "/networks", list_)
    r.add("GET", "/networks/{id}", inspect)
    r.add("POST", "/networks/create", create)
