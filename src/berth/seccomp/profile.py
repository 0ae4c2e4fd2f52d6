"""default_profile: Docker's default seccomp rules (data in ``default.json``) resolved for one container.

The rules are facts kept as data; this module only decides which apply, given the container's
capabilities, the host's architecture family and the host kernel version (Docker resolves them the same
way when it creates a container).
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from typing import Any

from berth import errors

_DATA = os.path.join(os.path.dirname(__file__), "default.json")


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    with open(_DATA, encoding="utf-8") as f:
        return json.load(f)


def host_arch() -> str:
    """The host's architecture family as named in default.json ("x86_64", "aarch64", ...)."""
    m = os.uname().machine
    if re.fullmatch(r"i[3-6]86", m):
        return "x86"
    if m.startswith("arm") and m != "arm64":
        return "arm"
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(m, m)


def _kernel_tuple(release: str) -> tuple[int, ...]:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not m:
        raise errors.InvalidArgument(f"seccomp: cannot parse kernel version {release!r}")
    return tuple(int(x or 0) for x in m.groups())


def _cap(name: str) -> str:
    n = name.strip().upper()
    return n if n.startswith("CAP_") else "CAP_" + n


def _applies(when: dict[str, Any], caps: set[str], arch: str, kernel: tuple[int, ...]) -> bool:
    if not all(c in caps for c in when.get("caps", [])):
        return False
    if any(c in caps for c in when.get("notCaps", [])):
        return False
    if "arches" in when and arch not in when["arches"]:
        return False
    if arch in when.get("notArches", []):
        return False
    return not ("minKernel" in when and kernel < _kernel_tuple(when["minKernel"]))


def default_profile(
    capabilities: list[str], arch: str | None = None, kernel: str | None = None
) -> dict[str, Any]:
    """Docker's default rules as an OCI linux.seccomp object.

    capabilities: the container's capabilities (bounding set), with or without the CAP_ prefix.
    arch: the host family (default: this machine); kernel: a release like "6.1.0" (default: this host).
    """
    data = _data()
    arch = arch or host_arch()
    kern = _kernel_tuple(kernel or os.uname().release)
    caps = {_cap(c) for c in capabilities}
    syscalls = []
    for rule in data["rules"]:
        if not _applies(rule.get("when", {}), caps, arch, kern):
            continue
        out: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
        for key in ("errnoRet", "args"):
            if key in rule:
                out[key] = json.loads(json.dumps(rule[key]))  # callers may mutate the result
        syscalls.append(out)
    return {
        "defaultAction": data["defaultAction"],
        "defaultErrnoRet": data["defaultErrnoRet"],
        "architectures": list(data["architectures"].get(arch, [])),
        "syscalls": syscalls,
    }
