"""Docker Engine API client used by the berth CLI (HTTP/1.1 over the daemon's unix socket)."""

from berth.client.api import (
    APIError,
    Client,
    ClientError,
    DaemonUnreachable,
    StreamError,
    encode_params,
    filters_param,
    resolve_host,
)

__all__ = [
    "APIError",
    "Client",
    "ClientError",
    "DaemonUnreachable",
    "StreamError",
    "encode_params",
    "filters_param",
    "resolve_host",
]
