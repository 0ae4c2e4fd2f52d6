"""OCI ``linux.seccomp`` -> classic BPF through libseccomp (the cache-miss path).

Semantics follow the OCI runtime spec as runc applies it:
- syscall names libseccomp does not know are skipped (profiles list names of every arch and kernel);
- unknown actions, architectures, operators and flags are errors naming the offending field;
- a rule whose action equals the default action is redundant and skipped (libseccomp refuses it);
- the args of one syscalls[] entry are ANDed in one rule when their indexes are distinct; when an index
  repeats (e.g. ``arg0 == 1`` and ``arg0 == 2``) each arg becomes its own rule, i.e. they are ORed —
  runc's reading, which profiles in the wild rely on;
- with a deny-by-errno default, syscalls newer than any the profile names get ENOSYS (see enosys.py).
"""

from __future__ import annotations

from typing import Any

from berth import errors
from berth.seccomp import enosys
from berth.seccomp import libseccomp as L
from berth.seccomp.validate import ACTIONS, ARCHES, FLAGS, OPS, validate

_OPS = {
    "SCMP_CMP_NE": L.CMP_NE,
    "SCMP_CMP_LT": L.CMP_LT,
    "SCMP_CMP_LE": L.CMP_LE,
    "SCMP_CMP_EQ": L.CMP_EQ,
    "SCMP_CMP_GE": L.CMP_GE,
    "SCMP_CMP_GT": L.CMP_GT,
    "SCMP_CMP_MASKED_EQ": L.CMP_MASKED_EQ,
}
assert set(_OPS) == set(OPS)

_EPERM = 1
_ENOSYS = 38
_BPF_MAXINSNS = 4096


def _action(name: str, errno_ret: int | None) -> int:
    if name == "SCMP_ACT_ERRNO":
        return L.act_errno(_EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return L.act_trace(_EPERM if errno_ret is None else errno_ret)
    return {
        "SCMP_ACT_KILL": L.ACT_KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": L.ACT_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": L.ACT_KILL_PROCESS,
        "SCMP_ACT_TRAP": L.ACT_TRAP,
        "SCMP_ACT_ALLOW": L.ACT_ALLOW,
        "SCMP_ACT_LOG": L.ACT_LOG,
        "SCMP_ACT_NOTIFY": L.ACT_NOTIFY,
    }[name]


def _arg_groups(args: list[dict[str, Any]]) -> list[list[tuple[int, int, int, int]]]:
    cmps = [(a["index"], _OPS[a["op"]], a.get("value") or 0, a.get("valueTwo") or 0) for a in args]
    indexes = [c[0] for c in cmps]
    if len(set(indexes)) == len(indexes):
        return [cmps]  # one rule, ANDed
    return [[c] for c in cmps]  # repeated index: one rule per arg, ORed


def compile_uncached(seccomp: dict[str, Any]) -> bytes:
    """Validate and compile; returns the raw sock_filter array libseccomp exports."""
    validate(seccomp)
    default = _action(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"))
    tokens = [L.native_arch()]
    with L.Filter(default) as flt:
        # Binary-tree layout: more instructions but the kernel's load-time emulation (its per-syscall
        # allow bitmap) runs far fewer of them: loading Docker's profile took 0.6 ms instead of 1.0-1.5 ms.
        try:
            flt.attr_set(L.FLTATR_CTL_OPTIMIZE, 2)
        except errors.SystemError_:
            pass  # libseccomp < 2.5: the linear layout is as correct
        for i, arch in enumerate(seccomp.get("architectures") or []):
            token = L.resolve_arch(ARCHES[arch])
            if not token:
                raise errors.Unsupported(
                    f"linux.seccomp.architectures[{i}]: {arch} is not supported by this libseccomp"
                )
            flt.arch_add(token)
            if token not in tokens:
                tokens.append(token)
        for i, rule in enumerate(seccomp.get("syscalls") or []):
            action = _action(rule["action"], rule.get("errnoRet"))
            if action == default:
                continue
            groups = _arg_groups(rule.get("args") or [])
            for name in rule["names"]:
                nr = L.resolve_syscall(name)
                if nr == L.NR_SCMP_ERROR:
                    continue  # unknown to this libseccomp: skipped, as runc does
                for group in groups:
                    rc = flt.rule_add(action, nr, group)
                    if rc < 0:
                        raise errors.InvalidArgument(
                            f"linux.seccomp.syscalls[{i}]: libseccomp rejected the rule for {name!r}"
                            f" ({rule['action']}, args {rule.get('args') or []}): error {-rc}"
                        )
        bpf = flt.export_bpf()
    if seccomp["defaultAction"] == "SCMP_ACT_ERRNO" and default != L.act_errno(_ENOSYS):
        bpf = enosys.prefix(_max_syscalls(seccomp, tokens)) + bpf
    if len(bpf) // 8 > _BPF_MAXINSNS:
        raise errors.InvalidArgument(
            f"linux.seccomp: the profile compiles to {len(bpf) // 8} BPF instructions;"
            f" the kernel accepts at most {_BPF_MAXINSNS}"
        )
    return bpf


def _max_syscalls(seccomp: dict[str, Any], tokens: list[int]) -> dict[int, int]:
    """arch token -> highest syscall number any rule names there (arches where none resolves are left out)."""
    names = {n for rule in seccomp.get("syscalls") or [] for n in rule["names"]}
    out = {}
    for token in tokens:
        nrs = [nr for nr in (L.resolve_syscall_arch(token, n) for n in names) if nr >= 0]
        if nrs:
            out[token] = max(nrs)
    return out


__all__ = ["compile_uncached", "ACTIONS", "FLAGS"]
