"""Dockerfile-style `changes` for import and commit (`docker import --change`, `docker commit -c`).

Each change is one instruction line (`CMD ["sh"]`, `ENV A=1 B="two words"`, `EXPOSE 80/udp`...),
parsed with the Dockerfile rules for exec (JSON) vs shell form, quoting, and key=value pairs, and
applied to an image's container config dict.
"""

from __future__ import annotations

import json
import posixpath
import re
import signal
from collections.abc import Iterable

from berth.errors import InvalidArgument

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL")
_PROTOCOLS = ("tcp", "udp", "sctp")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand(text: str, i: int, env: dict[str, str], where: str) -> tuple[str, int]:
    """Expand the variable at text[i] == '$': $name, ${name}, ${name:-word}, ${name:+word}.
    Returns (replacement, index after it); a '$' that starts no variable stays literal."""
    if i + 1 < len(text) and text[i + 1] == "{":
        end = text.find("}", i + 2)
        if end < 0:
            raise InvalidArgument(f"{where}: missing '}}' in {text!r}")
        body = text[i + 2:end]
        name, op, word = body, "", ""
        for candidate in (":-", ":+"):
            if candidate in body:
                name, _, word = body.partition(candidate)
                op = candidate
                break
        if not _NAME_RE.match(name):
            raise InvalidArgument(f"{where}: bad substitution ${{{body}}}")
        val = env.get(name)
        if op == ":-":
            return (val if val else word), end + 1
        if op == ":+":
            return (word if val else ""), end + 1
        return val or "", end + 1
    m = _NAME_RE.match(text, i + 1)
    if not m:
        return "$", i + 1
    return env.get(m.group(0), ""), m.end()


def split_words(text: str, where: str, env: dict[str, str] | None = None) -> list[str]:
    """Split on unquoted whitespace; '...' is literal, "..." honours backslash escapes, a backslash
    outside quotes escapes the next character. Quotes are removed, as the Dockerfile parser does.
    With env, $VAR / ${VAR} / ${VAR:-x} / ${VAR:+x} outside single quotes are substituted."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "$" and env is not None and quote != "'":
            val, i = _expand(text, i, env, where)
            cur.append(val)
            in_word = True
            continue
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i + 1 < len(text) and text[i + 1] in '"\\$`':
                i += 1
                cur.append(text[i])
            else:
                cur.append(c)
        elif c in " \t\r\n":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        elif c in "'\"":
            quote, in_word = c, True
        elif c == "\\" and i + 1 < len(text):
            i += 1
            cur.append(text[i])
            in_word = True
        else:
            cur.append(c)
            in_word = True
        i += 1
    if quote:
        raise InvalidArgument(f"{where}: unterminated {quote} quote")
    if in_word:
        words.append("".join(cur))
    return words


def _pairs(args: str, instr: str, where: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """`K=V K2="v 2"` or the legacy one-pair form `K some value` (ENV and LABEL)."""
    words = split_words(args, where, env)
    if not words:
        raise InvalidArgument(f"{where}: {instr} needs at least one argument")
    if "=" not in words[0]:
        # Legacy form: the rest of the line is the value.
        parts = args.strip().split(None, 1)
        if len(parts) < 2:
            raise InvalidArgument(f"{where}: {instr} {parts[0]} needs a value (use {instr} key=value)")
        return [(parts[0], " ".join(split_words(parts[1], where, env)) if parts[1] else "")]
    out = []
    for w in words:
        key, eq, val = w.partition("=")
        if not eq:
            raise InvalidArgument(f"{where}: {instr} argument {w!r} is not key=value")
        if not key:
            raise InvalidArgument(f"{where}: {instr} argument {w!r} has an empty key")
        out.append((key, val))
    return out


def _exec_or_shell(args: str, instr: str, where: str) -> list[str]:
    s = args.strip()
    if s.startswith("["):
        try:
            v = json.loads(s)
        except ValueError:
            v = None
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return v
    if not s:
        raise InvalidArgument(f"{where}: {instr} needs a command")
    return ["/bin/sh", "-c", s]


def _ports(args: str, where: str, env: dict[str, str]) -> list[str]:
    out = []
    words = split_words(args, where, env)
    if not words:
        raise InvalidArgument(f"{where}: EXPOSE needs at least one port")
    for w in words:
        port, _, proto = w.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in _PROTOCOLS:
            raise InvalidArgument(f"{where}: EXPOSE {w!r}: protocol must be tcp, udp or sctp")
        lo, dash, hi = port.partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise InvalidArgument(f"{where}: EXPOSE {w!r}: not a port number or range")
        if not (0 < a <= 65535 and 0 < b <= 65535) or b < a:
            raise InvalidArgument(f"{where}: EXPOSE {w!r}: ports must be in 1-65535, low-high")
        out.extend(f"{p}/{proto}" for p in range(a, b + 1))
    return out


def _stopsignal(args: str, where: str) -> str:
    s = args.strip()
    if not s:
        raise InvalidArgument(f"{where}: STOPSIGNAL needs a signal")
    if s.isdigit():
        if not 0 < int(s) < 65:
            raise InvalidArgument(f"{where}: STOPSIGNAL {s}: no such signal")
        return s
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if not hasattr(signal.Signals, name) and not name.startswith("SIGRTM"):
        raise InvalidArgument(f"{where}: STOPSIGNAL {s!r}: unknown signal")
    return s


def parse_change(line: str, where: str = "change") -> tuple[str, str]:
    text = line.strip()
    if not text:
        raise InvalidArgument(f"{where}: empty instruction")
    parts = text.split(None, 1)
    instr = parts[0].upper()
    if instr not in ALLOWED:
        raise InvalidArgument(
            f"{where}: {parts[0]} is not a valid change command (allowed: {', '.join(ALLOWED)})"
        )
    return instr, parts[1] if len(parts) > 1 else ""


def apply_change(cfg: dict, line: str, where: str = "change") -> None:
    """Apply one instruction to a container config dict (the `config` member of an image config)."""
    instr, args = parse_change(line, where)
    env = dict(e.partition("=")[::2] for e in cfg.get("Env") or [])  # as before this line
    if instr == "CMD":
        cfg["Cmd"] = _exec_or_shell(args, instr, where)
    elif instr == "ENTRYPOINT":
        cfg["Entrypoint"] = _exec_or_shell(args, instr, where)
    elif instr == "ENV":
        entries = list(cfg.get("Env") or [])
        for k, v in _pairs(args, instr, where, env):
            entries = [e for e in entries if e.partition("=")[0] != k] + [f"{k}={v}"]
        cfg["Env"] = entries
    elif instr == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        labels.update(_pairs(args, instr, where, env))
        cfg["Labels"] = labels
    elif instr == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        for p in _ports(args, where, env):
            ports[p] = {}
        cfg["ExposedPorts"] = ports
    elif instr == "USER":
        user = " ".join(split_words(args, where, env))
        if not user:
            raise InvalidArgument(f"{where}: USER needs a user name or uid")
        cfg["User"] = user
    elif instr == "WORKDIR":
        words = split_words(args, where, env)
        if not words:
            raise InvalidArgument(f"{where}: WORKDIR needs a path")
        path = " ".join(words)
        if not path.startswith("/"):
            path = posixpath.join(cfg.get("WorkingDir") or "/", path)
        cfg["WorkingDir"] = posixpath.normpath(path)
    elif instr == "VOLUME":
        s = args.strip()
        paths = None
        if s.startswith("["):
            try:
                v = json.loads(s)
                if isinstance(v, list) and all(isinstance(x, str) for x in v):
                    paths = v
            except ValueError:
                pass
        if paths is None:
            paths = split_words(s, where, env)
        if not paths or any(not p.strip() for p in paths):
            raise InvalidArgument(f"{where}: VOLUME needs non-empty paths")
        vols = dict(cfg.get("Volumes") or {})
        for p in paths:
            vols[p] = {}
        cfg["Volumes"] = vols
    elif instr == "STOPSIGNAL":
        cfg["StopSignal"] = _stopsignal(" ".join(split_words(args, where, env)), where)
    elif instr == "ONBUILD":
        trig_instr, _, trig_args = args.strip().partition(" ")
        trig = trig_instr.upper()
        if not trig:
            raise InvalidArgument(f"{where}: ONBUILD needs an instruction")
        if trig in ("ONBUILD", "FROM", "MAINTAINER"):
            raise InvalidArgument(f"{where}: {trig} is not allowed as an ONBUILD trigger")
        cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [f"{trig} {trig_args.strip()}".rstrip()]


def apply_changes(cfg: dict, changes: Iterable[str]) -> dict:
    """Validate every change first (bad input changes nothing), then apply them in order."""
    changes = list(changes or [])
    scratch = json.loads(json.dumps(cfg))
    for i, line in enumerate(changes):
        if not isinstance(line, str):
            raise InvalidArgument(f"changes[{i}]: must be a string")
        apply_change(scratch, line, f"changes[{i}]")
    cfg.clear()
    cfg.update(scratch)
    return cfg
