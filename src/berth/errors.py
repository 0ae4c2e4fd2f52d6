"""One error taxonomy for all of berth.

Library code raises these; only the edges (the runtime CLI, the daemon's HTTP layer, the berth CLI)
turn them into exit codes, HTTP statuses or runc-style log lines.
"""


class BerthError(Exception):
    """Base class: a failure with a message meant for the user."""


class InvalidArgument(BerthError):
    """The caller's input is malformed or inconsistent (HTTP 400)."""


class NotFound(BerthError):
    """The named object does not exist (HTTP 404)."""


class Conflict(BerthError):
    """The request conflicts with the object's current state, e.g. a name in use (HTTP 409)."""


class AlreadyExists(Conflict):
    """An object with that identity exists already (HTTP 409)."""


class PermissionDenied(BerthError):
    """The caller may not do this (HTTP 403)."""


class Unsupported(BerthError):
    """The request is valid but this host or build cannot do it (HTTP 501)."""


class Unavailable(BerthError):
    """A dependency (daemon, kernel feature, peer) is not reachable right now (HTTP 503)."""


class DataCorruption(BerthError):
    """Stored or received data does not match its digest or is structurally broken (HTTP 500)."""


class SystemError_(BerthError):
    """The kernel or another host facility failed unexpectedly (HTTP 500)."""
