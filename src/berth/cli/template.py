"""A small evaluator for the Go text/template subset Docker users write in `--format` / `-f`.

Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming; field chains (`.A.B`, `.`, `$`,
`$var.Field`), method-like fields with arguments (`.Label "k"`); pipelines (`a | b`); parenthesised
sub-pipelines; string/number/bool literals; `if`/`else if`/`else`/`end`, `range` (with `$i, $v :=`),
`with`; functions json, join, split, index, len, lower, upper, title, printf, print, println, pad,
truncate, eq, ne, lt, le, gt, ge, and, or, not.
"""

from __future__ import annotations

import json
import re
from typing import Any

from berth.cli.errors import TemplateError, TemplateParseError

_MISSING = object()


class NoValue:
    def __str__(self) -> str:
        return "<no value>"


NO_VALUE = NoValue()

# ---------------------------------------------------------------------------------- lexing

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<decl>:=|=)
    | (?P<pipe>\|)
    | (?P<lp>\()
    | (?P<rp>\))
    | (?P<comma>,)
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.X,
)


def _tokens(src: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    src = src.rstrip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"unexpected {src[pos:].strip()[:20]!r} in action {src.strip()!r}")
        kind = m.lastgroup
        assert kind is not None
        text = m.group(kind)
        # a field right after `)` or a var token continues the chain: (x).Field
        out.append((kind, text))
        pos = m.end()
    return out


def _unquote(s: str) -> str:
    if s.startswith("`"):
        return s[1:-1]
    return json.loads(s.replace("\\'", "'")) if "\\x" not in s else s[1:-1].encode().decode("unicode_escape")


# ---------------------------------------------------------------------------------- parsing


class _Node:
    pass


class _Text(_Node):
    def __init__(self, text: str) -> None:
        self.text = text


class _Action(_Node):
    def __init__(self, pipe) -> None:
        self.pipe = pipe


class _Block(_Node):
    def __init__(self, kind: str, pipe, body: list, else_body: list | None, decl: list[str]) -> None:
        self.kind, self.pipe, self.body, self.else_body, self.decl = kind, pipe, body, else_body, decl


def _split_actions(src: str) -> list[tuple[str, str]]:
    """[("text", s) | ("action", s)] with trim markers applied."""
    parts: list[tuple[str, str]] = []
    pos = 0
    while True:
        i = src.find("{{", pos)
        if i < 0:
            parts.append(("text", src[pos:]))
            break
        text = src[pos:i]
        j = src.find("}}", i + 2)
        if j < 0:
            raise TemplateError("template: :1: unclosed action")
        inner = src[i + 2 : j]
        if inner.startswith("- ") or inner == "-":
            text = text.rstrip()
            inner = inner[1:]
        end = j + 2
        if inner.endswith(" -"):
            inner = inner[:-1]
            k = end
            while k < len(src) and src[k].isspace():
                k += 1
            end = k
        parts.append(("text", text))
        parts.append(("action", inner.strip()))
        pos = end
    return [p for p in parts if p != ("text", "")]


class _Parser:
    def __init__(self, src: str) -> None:
        self.items = _split_actions(src)
        self.i = 0

    def parse(self) -> list[_Node]:
        body, stop = self._list()
        if stop is not None:
            raise TemplateError(f"unexpected {{{{{stop}}}}}")
        return body

    def _list(self) -> tuple[list[_Node], str | None]:
        nodes: list[_Node] = []
        while self.i < len(self.items):
            kind, s = self.items[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(_Text(s))
                continue
            if s.startswith("/*"):
                continue
            word = s.split(None, 1)[0] if s else ""
            if word in ("end", "else"):
                return nodes, s
            if word in ("if", "range", "with"):
                nodes.append(self._block(word, s[len(word) :]))
            elif word in ("define", "template", "block"):
                raise TemplateError(f"{word} is not supported")
            else:
                nodes.append(_Action(_parse_pipeline(_tokens(s))))
        return nodes, None

    def _block(self, kind: str, rest: str) -> _Block:
        toks = _tokens(rest)
        decl: list[str] = []
        for n in (1, 3):  # `$x :=` or `$i, $v :=`
            if len(toks) > n and toks[n][0] == "decl" and all(t[0] in ("var", "comma") for t in toks[:n]):
                decl = [t[1] for t in toks[:n] if t[0] == "var"]
                toks = toks[n + 1 :]
                break
        pipe = _parse_pipeline(toks)
        body, stop = self._list()
        else_body = None
        if stop is None:
            raise TemplateError(f"unexpected EOF: {kind} without end")
        if stop.startswith("else"):
            rest2 = stop[4:].strip()
            if rest2.startswith("if") or rest2.startswith("with"):
                w = rest2.split(None, 1)[0]
                else_body = [self._block(w, rest2[len(w) :])]
            else:
                else_body, stop2 = self._list()
                if stop2 != "end":
                    raise TemplateError(f"expected end after else in {kind}")
        return _Block(kind, pipe, body, else_body, decl)


def _parse_pipeline(toks: list[tuple[str, str]]):
    """A pipeline is a list of commands; a command is a list of operands."""
    if not toks:
        raise TemplateError("missing value for command")
    cmds: list[list] = [[]]
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        if kind == "pipe":
            cmds.append([])
            i += 1
            continue
        if kind == "lp":
            depth, j = 1, i + 1
            while j < len(toks) and depth:
                depth += {"lp": 1, "rp": -1}.get(toks[j][0], 0)
                j += 1
            if depth:
                raise TemplateError("unclosed left paren")
            op: Any = ("sub", _parse_pipeline(toks[i + 1 : j - 1]))
            i = j
            if i < len(toks) and toks[i][0] == "field" and toks[i][1] != ".":
                op = ("chain", op, toks[i][1][1:].split("."))
                i += 1
            cmds[-1].append(op)
            continue
        if kind == "rp":
            raise TemplateError("unexpected right paren")
        if kind == "str" or kind == "raw":
            cmds[-1].append(("lit", _unquote(text)))
        elif kind == "num":
            cmds[-1].append(("lit", float(text) if "." in text else int(text)))
        elif kind == "ident":
            if text in ("true", "false"):
                cmds[-1].append(("lit", text == "true"))
            elif text == "nil":
                cmds[-1].append(("lit", None))
            else:
                cmds[-1].append(("func", text))
        elif kind == "field":
            cmds[-1].append(("field", [] if text == "." else text[1:].split(".")))
        elif kind == "var":
            name, _, rest = text.partition(".")
            cmds[-1].append(("var", name, rest.split(".") if rest else []))
        else:
            raise TemplateError(f"unexpected {text!r}")
        i += 1
    if any(not c for c in cmds):
        raise TemplateError("missing command in pipeline")
    return cmds


# ---------------------------------------------------------------------------------- values


def go_str(v: Any) -> str:
    """fmt's %v for the values we deal with."""
    if v is None:
        return "<nil>"
    if v is NO_VALUE:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e21:
            return str(int(v)) if abs(v) < 1e21 else repr(v)
        return repr(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    if hasattr(v, "__template_str__"):
        return v.__template_str__()
    return str(v)


def _truth(v: Any) -> bool:
    if v is None or v is NO_VALUE:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


def go_json(v: Any) -> str:
    """encoding/json's Marshal: compact, <>& escaped. Keys keep the daemon's order, which is Go's
    (struct fields in declaration order, map keys sorted), so the output matches docker's."""
    if hasattr(v, "__template_json__"):
        v = v.__template_json__()
    if v is NO_VALUE:
        v = None
    s = json.dumps(_go_order(v), separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_LOWERCASE_STRUCTS = {"timeNano", "status", "read", "cpu_stats", "time"}


def _go_order(v: Any) -> Any:
    """Go marshals maps with sorted keys and structs in field order. The API's structs have
    capitalised field names (plus a few lowercase ones we know); a dict with no capitalised key is
    a map (labels, attributes, ports, volumes...) and gets sorted, the rest keeps the daemon's order."""
    if isinstance(v, dict):
        items = [(k, _go_order(x)) for k, x in v.items()]
        keys = v.keys()
        if items and not any(str(k)[:1].isupper() for k in keys) and not (_LOWERCASE_STRUCTS & keys):
            items.sort(key=lambda kv: str(kv[0]))
        return dict(items)
    if isinstance(v, list):
        return [_go_order(x) for x in v]
    return v


def _json_default(o: Any):
    if hasattr(o, "__template_json__"):
        return o.__template_json__()
    return str(o)


def _field(obj: Any, name: str, args: list) -> Any:
    if obj is None or obj is NO_VALUE:
        raise TemplateError(f"nil pointer evaluating .{name}")
    if isinstance(obj, dict):
        if name in obj:
            val = obj[name]
        else:
            return NO_VALUE
    else:
        val = getattr(obj, name, _MISSING)
        if val is _MISSING or name.startswith("_"):
            raise TemplateError(f"can't evaluate field {name} in type {type(obj).__name__}")
    if callable(val):
        return val(*args)
    if args:
        raise TemplateError(f"{name} is not a method but has arguments")
    return val


def _chain(obj: Any, names: list[str], args: list) -> Any:
    for k, name in enumerate(names):
        obj = _field(obj, name, args if k == len(names) - 1 else [])
    if not names and args:
        raise TemplateError("can't give argument to non-function .")
    return obj


def _printf(fmt: str, *args: Any) -> str:
    out = []
    ai = 0
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        m = re.match(r"%([-+ 0#]*)(\d*)(?:\.(\d+))?([a-zA-Z%])", fmt[i:])
        if not m:
            out.append(c)
            i += 1
            continue
        flags, width, prec, verb = m.groups()
        i += m.end()
        if verb == "%":
            out.append("%")
            continue
        arg = args[ai] if ai < len(args) else _MISSING
        ai += 1
        if arg is _MISSING:
            out.append(f"%!{verb}(MISSING)")
            continue
        if verb in ("v", "s"):
            s = go_str(arg)
            if prec:
                s = s[: int(prec)]
        elif verb == "q":
            s = json.dumps(go_str(arg), ensure_ascii=False)
        elif verb in ("d", "x", "X", "o", "b") and isinstance(arg, (int, float)) and not isinstance(arg, bool):
            s = format(int(arg), {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb])
        elif verb in ("f", "e", "g") and isinstance(arg, (int, float)):
            s = ("%." + (prec or ("6" if verb != "g" else "")) + verb) % arg if prec or verb != "g" else go_str(float(arg))
        elif verb == "t" and isinstance(arg, bool):
            s = go_str(arg)
        else:
            s = f"%!{verb}({go_str(arg)})"
        if width:
            s = s.ljust(int(width)) if "-" in flags else s.rjust(int(width), "0" if "0" in flags else " ")
        out.append(s)
    return "".join(out)


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k, NO_VALUE) if not isinstance(k, float) else v.get(int(k), NO_VALUE)
        elif isinstance(v, (list, tuple, str)):
            try:
                v = v[int(k)]
            except (IndexError, ValueError, TypeError):
                raise TemplateError(f"index out of range: {k}")
        elif v is None or v is NO_VALUE:
            return NO_VALUE
        else:
            raise TemplateError(f"can't index item of type {type(v).__name__}")
    return v


def _cmp(a: Any, b: Any) -> tuple[Any, Any]:
    if a is NO_VALUE:
        a = None
    if b is NO_VALUE:
        b = None
    return a, b


def _eq(a: Any, *bs: Any) -> bool:
    return any(_cmp(a, b)[0] == _cmp(a, b)[1] for b in bs)


def _len(v: Any) -> int:
    if v is None or v is NO_VALUE:
        raise TemplateError("len of nil pointer")
    return len(v)


def _join(v: Any, sep: str) -> str:
    if v is None or v is NO_VALUE:
        return ""
    return sep.join(go_str(x) for x in v)


def _pad(s: Any, before: int, after: int) -> str:
    s = go_str(s)
    return " " * int(before) + s + " " * int(after) if s else s


def _truncate(s: Any, n: int) -> str:
    s = go_str(s)
    return s[: int(n)]


FUNCS: dict[str, Any] = {
    "json": go_json,
    "join": _join,
    "split": lambda s, sep: go_str(s).split(sep),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: go_str(s).title(),
    "index": _index,
    "len": _len,
    "printf": _printf,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "pad": _pad,
    "truncate": _truncate,
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "not": lambda a: not _truth(a),
    "and": None,  # evaluated lazily in _command
    "or": None,
}


class Template:
    def __init__(self, src: str) -> None:
        self.src = src
        try:
            self.nodes = _Parser(src).parse()
        except TemplateParseError:
            raise
        except TemplateError as e:
            raise TemplateParseError(str(e)) from None

    def render(self, data: Any, funcs: dict | None = None) -> str:
        out: list[str] = []
        scope = {"$": data}
        _exec(self.nodes, data, scope, out, {**FUNCS, **(funcs or {})})
        return "".join(out)


def _exec(nodes: list[_Node], dot: Any, scope: dict, out: list[str], funcs: dict) -> None:
    for n in nodes:
        if isinstance(n, _Text):
            out.append(n.text)
        elif isinstance(n, _Action):
            v = _pipe(n.pipe, dot, scope, funcs)
            if v is not _MISSING:
                out.append(go_str(v))
        elif isinstance(n, _Block):
            v = _pipe(n.pipe, dot, scope, funcs)
            if n.kind == "if":
                _exec(n.body if _truth(v) else (n.else_body or []), dot, scope, out, funcs)
            elif n.kind == "with":
                if _truth(v):
                    sc = dict(scope)
                    if n.decl:
                        sc[n.decl[0]] = v
                    _exec(n.body, v, sc, out, funcs)
                else:
                    _exec(n.else_body or [], dot, scope, out, funcs)
            else:  # range
                if v is None or v is NO_VALUE:
                    items: list = []
                elif isinstance(v, dict):
                    items = [(k, v[k]) for k in sorted(v)]
                elif isinstance(v, (list, tuple)):
                    items = list(enumerate(v))
                elif isinstance(v, int) and not isinstance(v, bool):
                    items = [(i, i) for i in range(v)]
                else:
                    raise TemplateError(f"range can't iterate over {go_str(v)}")
                if not items:
                    _exec(n.else_body or [], dot, scope, out, funcs)
                for k, item in items:
                    sc = dict(scope)
                    if len(n.decl) == 1:
                        sc[n.decl[0]] = item
                    elif len(n.decl) == 2:
                        sc[n.decl[0]], sc[n.decl[1]] = k, item
                    _exec(n.body, item, sc, out, funcs)


def _pipe(cmds: list, dot: Any, scope: dict, funcs: dict) -> Any:
    val: Any = _MISSING
    for cmd in cmds:
        val = _command(cmd, dot, scope, funcs, val)
    return val


def _operand(op, dot, scope, funcs) -> Any:
    kind = op[0]
    if kind == "lit":
        return op[1]
    if kind == "field":
        return _chain(dot, op[1], [])
    if kind == "var":
        if op[1] not in scope:
            raise TemplateError(f"undefined variable: {op[1]}")
        return _chain(scope[op[1]], op[2], [])
    if kind == "sub":
        return _pipe(op[1], dot, scope, funcs)
    if kind == "chain":
        return _chain(_operand(op[1], dot, scope, funcs), op[2], [])
    if kind == "func":
        if op[1] not in funcs:
            raise TemplateError(f'function "{op[1]}" not defined')
        return funcs[op[1]]()
    raise TemplateError(f"bad operand {op!r}")


def _command(cmd: list, dot, scope, funcs, prev) -> Any:
    head = cmd[0]
    args = [_operand(a, dot, scope, funcs) for a in cmd[1:]]
    if prev is not _MISSING:
        args.append(prev)
    if head[0] == "func":
        name = head[1]
        if name not in funcs:
            raise TemplateError(f'function "{name}" not defined')
        if name == "and" or name == "or":
            res = args[0] if args else None
            for a in args:
                res = a
                if _truth(a) != (name == "and"):
                    break
            return res
        try:
            return funcs[name](*args)
        except TypeError as e:
            raise TemplateError(f"wrong number of args for {name}: {e}")
    if head[0] == "field" and args:
        return _chain(dot, head[1], args)
    if head[0] == "var" and args:
        return _chain(scope[head[1]], head[2], args)
    if args:
        raise TemplateError("can't give argument to non-function")
    return _operand(head, dot, scope, funcs)


def parse(src: str) -> Template:
    return Template(src)
