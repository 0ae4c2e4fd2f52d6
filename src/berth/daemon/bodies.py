"""The JSON request bodies of the Engine API, field by field, and one checker for them.

dockerd decodes each body into a Go struct, so a value of the wrong type, an integer outside its
field's range or a list where an object goes is a 400 naming the field, before any handler runs.
`Request.json(schema)` runs `check` on every JSON body; handlers may then trust the types of the
fields listed here. Unknown fields pass untouched (Go ignores them too); null is always allowed
(Go leaves the zero value).
"""

from __future__ import annotations

from typing import Any

from berth import errors

MAX_DEPTH = 64  # the deepest real body (create) is 6 levels; Go's decoder stops at 10000


class T:
    """A Go type as JSON sees it: `name` for messages, `accepts` for the value's own JSON kind."""

    def __init__(self, name: str) -> None:
        self.name = name

    def accepts(self, v: Any) -> bool:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def children(self, path: str, v: Any) -> list[tuple[str, Any, T]]:
        """(path, value, type) of the parts of `v` (found at `path`) to check next."""
        return []


class _Str(T):
    def accepts(self, v: Any) -> bool:
        return isinstance(v, str)


class _Bool(T):
    def accepts(self, v: Any) -> bool:
        return isinstance(v, bool)


class _Int(T):
    def __init__(self, name: str, lo: int, hi: int) -> None:
        super().__init__(name)
        self.lo, self.hi = lo, hi

    def accepts(self, v: Any) -> bool:
        # Go takes neither true nor 1.5 nor 1e3 into an integer field.
        return isinstance(v, int) and not isinstance(v, bool)


class _Float(T):
    def accepts(self, v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Any(T):
    def accepts(self, v: Any) -> bool:
        return True


class _Obj(T):
    """An object of any shape (map[string]interface{}, struct{} values of ExposedPorts...)."""

    def accepts(self, v: Any) -> bool:
        return isinstance(v, dict)


class List(T):
    def __init__(self, item: T) -> None:
        super().__init__("[]" + item.name)
        self.item = item

    def accepts(self, v: Any) -> bool:
        return isinstance(v, list)

    def children(self, path: str, v: Any) -> list[tuple[str, Any, T]]:
        return [(f"{path}[{i}]", x, self.item) for i, x in enumerate(v)]


class Map(T):
    def __init__(self, value: T) -> None:
        super().__init__("map[string]" + value.name)
        self.value = value

    def accepts(self, v: Any) -> bool:
        return isinstance(v, dict)

    def children(self, path: str, v: Any) -> list[tuple[str, Any, T]]:
        return [(f"{path}[{k!r}]", x, self.value) for k, x in v.items()]


class _StrSlice(T):
    """strslice.StrSlice: a string or a list of strings."""

    def accepts(self, v: Any) -> bool:
        return isinstance(v, (str, list))

    def children(self, path: str, v: Any) -> list[tuple[str, Any, T]]:
        return [(f"{path}[{i}]", x, STR) for i, x in enumerate(v)] if isinstance(v, list) else []


class Struct(T):
    """A Go struct: its known fields. Messages name a field by its path from the body's root
    ("HostConfig.Memory"); `paths` names top-level fields otherwise (create's embedded Config)."""

    def __init__(self, name: str, fields: dict[str, T], paths: dict[str, str] | None = None) -> None:
        super().__init__(name)
        self.fields = fields
        self.paths = paths or {}

    def accepts(self, v: Any) -> bool:
        return isinstance(v, dict)

    def children(self, path: str, v: Any) -> list[tuple[str, Any, T]]:
        return [(f"{path}.{k}" if path else self.paths.get(k, k), v[k], t)
                for k, t in self.fields.items() if k in v]


STR = _Str("string")
BOOL = _Bool("bool")
INT = INT64 = _Int("int64", -(1 << 63), (1 << 63) - 1)  # Go's int is 64 bits on every platform berth runs on
UINT = UINT64 = _Int("uint64", 0, (1 << 64) - 1)
UINT16 = _Int("uint16", 0, (1 << 16) - 1)
UINT32 = _Int("uint32", 0, (1 << 32) - 1)
FLOAT = _Float("float64")
ANY = _Any("interface {}")
OBJ = _Obj("struct {}")
STRSLICE = _StrSlice("strslice.StrSlice")
STRS = List(STR)
STRMAP = Map(STR)


def _kind(v: Any, t: T) -> str:
    """The JSON kind of a value as Go's messages name it (a number meant for a number: with its value)."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return f"number {v!r}" if isinstance(t, (_Int, _Float)) else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def check(body: Any, schema: T) -> None:
    """Raise InvalidArgument naming the first field of `body` whose value `schema` does not take.
    Iterative (a stack, not recursion)."""
    stack: list[tuple[str, Any, T]] = [("", body, schema)]
    while stack:
        path, v, t = stack.pop()
        if v is None:
            continue
        if not t.accepts(v):
            where = f"Go struct field {path}" if path else "Go value"
            raise errors.InvalidArgument(f"json: cannot unmarshal {_kind(v, t)} into {where} of type {t.name}")
        if isinstance(t, _Int) and not t.lo <= v <= t.hi:
            raise errors.InvalidArgument(
                f"json: cannot unmarshal number {v} into Go struct field {path} of type {t.name}")
        stack.extend(reversed(t.children(path, v)))


def depth_ok(obj: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether no array or object in `obj` lies deeper than `limit` (for bodies without a schema)."""
    stack = [(obj, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            if d >= limit:
                return False
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return True


# -- the bodies (field names and Go types from the Engine API's definitions) -----------------------

_HEALTH = Struct("HealthConfig", {"Test": STRS, "Interval": INT64, "Timeout": INT64, "StartPeriod": INT64,
                                  "StartInterval": INT64, "Retries": INT})

CONFIG = Struct("Config", {
    "Hostname": STR, "Domainname": STR, "User": STR, "AttachStdin": BOOL, "AttachStdout": BOOL,
    "AttachStderr": BOOL, "ExposedPorts": Map(OBJ), "Tty": BOOL, "OpenStdin": BOOL, "StdinOnce": BOOL,
    "Env": STRS, "Cmd": STRSLICE, "Healthcheck": _HEALTH, "ArgsEscaped": BOOL, "Image": STR,
    "Volumes": Map(OBJ), "WorkingDir": STR, "Entrypoint": STRSLICE, "NetworkDisabled": BOOL, "MacAddress": STR,
    "OnBuild": STRS, "Labels": STRMAP, "StopSignal": STR, "StopTimeout": INT, "Shell": STRSLICE,
})

_DEVICE_WEIGHT = Struct("WeightDevice", {"Path": STR, "Weight": UINT16})
_DEVICE_RATE = Struct("ThrottleDevice", {"Path": STR, "Rate": UINT64})
_RESTART = Struct("RestartPolicy", {"Name": STR, "MaximumRetryCount": INT})

RESOURCES = {
    "CpuShares": INT64, "Memory": INT64, "NanoCpus": INT64, "CgroupParent": STR, "BlkioWeight": UINT16,
    "BlkioWeightDevice": List(_DEVICE_WEIGHT), "BlkioDeviceReadBps": List(_DEVICE_RATE),
    "BlkioDeviceWriteBps": List(_DEVICE_RATE), "BlkioDeviceReadIOps": List(_DEVICE_RATE),
    "BlkioDeviceWriteIOps": List(_DEVICE_RATE), "CpuPeriod": INT64, "CpuQuota": INT64,
    "CpuRealtimePeriod": INT64, "CpuRealtimeRuntime": INT64, "CpusetCpus": STR, "CpusetMems": STR,
    "Devices": List(Struct("DeviceMapping", {"PathOnHost": STR, "PathInContainer": STR,
                                              "CgroupPermissions": STR})),
    "DeviceCgroupRules": STRS,
    "DeviceRequests": List(Struct("DeviceRequest", {"Driver": STR, "Count": INT, "DeviceIDs": STRS,
                                                    "Capabilities": List(STRS), "Options": STRMAP})),
    "KernelMemory": INT64, "KernelMemoryTCP": INT64, "MemoryReservation": INT64, "MemorySwap": INT64,
    "MemorySwappiness": INT64, "OomKillDisable": BOOL, "PidsLimit": INT64,
    "Ulimits": List(Struct("Ulimit", {"Name": STR, "Hard": INT64, "Soft": INT64})),
    "CpuCount": INT64, "CpuPercent": INT64, "IOMaximumIOps": UINT64, "IOMaximumBandwidth": UINT64,
}

_MOUNT = Struct("Mount", {
    "Type": STR, "Source": STR, "Target": STR, "ReadOnly": BOOL, "Consistency": STR,
    "BindOptions": Struct("BindOptions", {"Propagation": STR, "NonRecursive": BOOL, "CreateMountpoint": BOOL,
                                          "ReadOnlyNonRecursive": BOOL, "ReadOnlyForceRecursive": BOOL}),
    "VolumeOptions": Struct("VolumeOptions", {"NoCopy": BOOL, "Labels": STRMAP, "Subpath": STR,
                                              "DriverConfig": Struct("Driver", {"Name": STR, "Options": STRMAP})}),
    "TmpfsOptions": Struct("TmpfsOptions", {"SizeBytes": INT64, "Mode": UINT32, "Options": List(STRS)}),
})

HOST_CONFIG = Struct("HostConfig", {
    "Binds": STRS, "ContainerIDFile": STR,
    "LogConfig": Struct("LogConfig", {"Type": STR, "Config": STRMAP}),
    "NetworkMode": STR,
    "PortBindings": Map(List(Struct("PortBinding", {"HostIp": STR, "HostPort": STR}))),
    "RestartPolicy": _RESTART, "AutoRemove": BOOL, "VolumeDriver": STR, "VolumesFrom": STRS,
    "ConsoleSize": List(UINT), "Annotations": STRMAP, "CapAdd": STRSLICE, "CapDrop": STRSLICE,
    "CgroupnsMode": STR, "Dns": STRS, "DnsOptions": STRS, "DnsSearch": STRS, "ExtraHosts": STRS,
    "GroupAdd": STRS, "IpcMode": STR, "Cgroup": STR, "Links": STRS, "OomScoreAdj": INT, "PidMode": STR,
    "Privileged": BOOL, "PublishAllPorts": BOOL, "ReadonlyRootfs": BOOL, "SecurityOpt": STRS,
    "StorageOpt": STRMAP, "Tmpfs": STRMAP, "UTSMode": STR, "UsernsMode": STR, "ShmSize": INT64,
    "Sysctls": STRMAP, "Runtime": STR, "Isolation": STR, "Mounts": List(_MOUNT), "MaskedPaths": STRS,
    "ReadonlyPaths": STRS, "Init": BOOL, **RESOURCES,
})

_ENDPOINT = Struct("EndpointSettings", {
    "IPAMConfig": Struct("EndpointIPAMConfig", {"IPv4Address": STR, "IPv6Address": STR, "LinkLocalIPs": STRS}),
    "Links": STRS, "Aliases": STRS, "MacAddress": STR, "DriverOpts": STRMAP, "NetworkID": STR,
    "EndpointID": STR, "Gateway": STR, "IPAddress": STR, "IPPrefixLen": INT, "IPv6Gateway": STR,
    "GlobalIPv6Address": STR, "GlobalIPv6PrefixLen": INT, "DNSNames": STRS,
})

CONTAINER_CREATE = Struct("CreateRequest", {
    **CONFIG.fields, "HostConfig": HOST_CONFIG,
    "NetworkingConfig": Struct("NetworkingConfig", {"EndpointsConfig": Map(_ENDPOINT)}),
}, paths={k: f"Config.{k}" for k in CONFIG.fields})

CONTAINER_UPDATE = Struct("UpdateConfig", {**RESOURCES, "RestartPolicy": _RESTART})

EXEC_CREATE = Struct("ExecConfig", {
    "User": STR, "Privileged": BOOL, "Tty": BOOL, "ConsoleSize": List(UINT), "AttachStdin": BOOL,
    "AttachStderr": BOOL, "AttachStdout": BOOL, "Detach": BOOL, "DetachKeys": STR, "Env": STRS,
    "WorkingDir": STR, "Cmd": STRSLICE,
})

EXEC_START = Struct("ExecStartCheck", {"Detach": BOOL, "Tty": BOOL, "ConsoleSize": List(UINT)})

VOLUME_CREATE = Struct("VolumeCreateBody", {"Name": STR, "Driver": STR, "DriverOpts": STRMAP, "Labels": STRMAP,
                                            "ClusterVolumeSpec": OBJ})

NETWORK_CREATE = Struct("NetworkCreateRequest", {
    "Name": STR, "CheckDuplicate": BOOL, "Driver": STR, "Scope": STR, "EnableIPv4": BOOL, "EnableIPv6": BOOL,
    "IPAM": Struct("IPAM", {"Driver": STR, "Options": STRMAP,
                            "Config": List(Struct("IPAMConfig", {"Subnet": STR, "IPRange": STR, "Gateway": STR,
                                                                 "AuxiliaryAddresses": STRMAP}))}),
    "Internal": BOOL, "Attachable": BOOL, "Ingress": BOOL, "ConfigOnly": BOOL,
    "ConfigFrom": Struct("ConfigReference", {"Network": STR}), "Options": STRMAP, "Labels": STRMAP,
})

COMMIT = Struct("Config", CONFIG.fields, paths={k: f"Config.{k}" for k in CONFIG.fields})  # POST /commit
