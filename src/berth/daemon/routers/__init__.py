"""Route tables, one module per API area."""

from __future__ import annotations

from berth.daemon.engine import Engine
from berth.daemon.http import Router


def build_router(eng: Engine) -> Router:
    from berth.daemon.routers import containers, system

    r = Router()
    system.register(r, eng)
    containers.register(r, eng)
    for mod in ("execs", "images", "volumes", "archive", "networks"):
        try:
            m = __import__(f"berth.daemon.routers.{mod}", fromlist=["register"])
        except ImportError:
            continue
        m.register(r, eng)
    return r
