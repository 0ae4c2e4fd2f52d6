"""Structural checks of an OCI ``linux.seccomp`` object; stdlib only, no libseccomp.

Every error is ``errors.InvalidArgument`` (or ``Unsupported``) naming the field, e.g.
``linux.seccomp.syscalls[3].args[0].op: unknown operator 'SCMP_CMP_XX'``.
"""

from berth import errors

ACTIONS = frozenset(
    {
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    }
)
# OCI name -> libseccomp's arch name (seccomp_arch_resolve_name)
ARCHES = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc",
    "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64",
}
OPS = frozenset(
    {
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    }
)
# OCI flag name -> seccomp(2) flag bit
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_U64 = 2**64 - 1
_WHERE = "linux.seccomp"


def _bad(where: str, msg: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(f"{where}: {msg}")


def _int(value: object, where: str, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise _bad(where, f"must be an integer in [{lo}, {hi}], got {value!r}")


def _str_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(where, f"must be a list of strings, got {value!r}")
    return value


def _action(value: object, where: str) -> None:
    if value not in ACTIONS:
        raise _bad(where, f"unknown action {value!r} (known: {', '.join(sorted(ACTIONS))})")
    if value == "SCMP_ACT_NOTIFY":
        raise errors.Unsupported(
            f"{where}: SCMP_ACT_NOTIFY (seccomp user notification to listenerPath) is not supported by berth"
        )


def _errno_ret(rule: dict[str, object], key: str, action_key: str, where: str) -> None:
    if rule.get(key) is None:
        return
    _int(rule[key], f"{where}.{key}", 0, 0xFFFF)
    if rule.get(action_key) not in _ERRNO_ACTIONS:
        raise _bad(
            f"{where}.{key}",
            f"is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {rule.get(action_key)!r}",
        )


def validate_flags(flags: object, where: str = f"{_WHERE}.flags") -> int:
    """The seccomp(2) flag bits for OCI flag names."""
    bits = 0
    for i, name in enumerate(_str_list(flags, where)):
        if name not in FLAGS:
            raise _bad(f"{where}[{i}]", f"unknown flag {name!r} (known: {', '.join(FLAGS)})")
        bits |= FLAGS[name]
    return bits


def validate(seccomp: object) -> None:
    if not isinstance(seccomp, dict):
        raise _bad(_WHERE, f"must be an object, got {type(seccomp).__name__}")
    if "defaultAction" not in seccomp:
        raise _bad(f"{_WHERE}.defaultAction", "is required")
    _action(seccomp["defaultAction"], f"{_WHERE}.defaultAction")
    _errno_ret(seccomp, "defaultErrnoRet", "defaultAction", _WHERE)
    for i, arch in enumerate(_str_list(seccomp.get("architectures"), f"{_WHERE}.architectures")):
        if arch not in ARCHES:
            raise _bad(f"{_WHERE}.architectures[{i}]", f"unknown architecture {arch!r}")
    validate_flags(seccomp.get("flags"))
    if seccomp.get("listenerPath"):
        raise errors.Unsupported(
            f"{_WHERE}.listenerPath: seccomp user notification is not supported by berth"
        )
    syscalls = seccomp.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _bad(f"{_WHERE}.syscalls", "must be a list")
    for i, rule in enumerate(syscalls):
        where = f"{_WHERE}.syscalls[{i}]"
        if not isinstance(rule, dict):
            raise _bad(where, "must be an object")
        names = _str_list(rule.get("names"), f"{where}.names")
        if not names:
            raise _bad(f"{where}.names", "must list at least one syscall name")
        if "action" not in rule:
            raise _bad(f"{where}.action", "is required")
        _action(rule["action"], f"{where}.action")
        _errno_ret(rule, "errnoRet", "action", where)
        args = rule.get("args") or []
        if not isinstance(args, list):
            raise _bad(f"{where}.args", "must be a list")
        for j, arg in enumerate(args):
            aw = f"{where}.args[{j}]"
            if not isinstance(arg, dict):
                raise _bad(aw, "must be an object")
            if "index" not in arg:
                raise _bad(f"{aw}.index", "is required")
            _int(arg["index"], f"{aw}.index", 0, 5)
            for key in ("value", "valueTwo"):
                if arg.get(key) is not None:
                    _int(arg[key], f"{aw}.{key}", 0, _U64)
            if arg.get("op") not in OPS:
                raise _bad(
                    f"{aw}.op", f"unknown operator {arg.get('op')!r} (known: {', '.join(sorted(OPS))})"
                )
