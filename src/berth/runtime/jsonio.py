"""JSON without the `json` package: it imports `re` and `enum` (6 ms, a fifth of a container start).

The C scanner and string encoder of `_json` do the real work; errors still raise json.JSONDecodeError
(the error path imports json to produce the message).
"""

import _json

_encode_str = _json.encode_basestring_ascii


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))


_scan = _json.make_scanner(_Ctx())
_WS = " \t\n\r"


def loads(s: str | bytes):
    if isinstance(s, bytes):
        # a leading BOM is dropped, as "utf-8-sig" would (that codec is one more import per start)
        s = (s[3:] if s.startswith(b"\xef\xbb\xbf") else s).decode()
    i = 0
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except StopIteration as e:
        raise ValueError(f"invalid JSON: expecting value at char {e.value}") from None
    except SystemError:
        # The C scanner builds its error from json.decoder, which it finds only if already imported:
        # let the real json module produce the message (the error path may be slow).
        import json

        json.loads(s)
        raise
    finally:
        _Ctx.memo.clear()
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        raise ValueError(f"invalid JSON: extra data at char {end}")
    return obj


def load_file(path: str):
    with open(path, "rb") as f:
        return loads(f.read())


def _not_json(o):
    raise TypeError(f"cannot encode {type(o).__name__} as JSON")


def dumps(o, indent: int | None = None) -> str:
    if indent is None:
        # _json's C encoder (compact form): markers (cycle check), default, string encoder, indent, key
        # and item separators, sort_keys, skipkeys, allow_nan. A fresh one each call: markers is state.
        enc = _json.make_encoder({}, _not_json, _encode_str, None, ":", ",", False, False, True)
        return "".join(enc(o, 0))
    out: list[str] = []
    _enc(o, out, indent, 0)
    return "".join(out)


def _enc(o, out: list[str], indent: int | None, level: int) -> None:
    if isinstance(o, str):
        out.append(_encode_str(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(float.__repr__(o))
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        sep, pad, end = _seps(indent, level)
        out.append("{")
        first = True
        for k, v in o.items():
            out.append(pad if first else sep)
            first = False
            out.append(_encode_str(str(k)))
            out.append(": " if indent is not None else ":")
            _enc(v, out, indent, level + 1)
        out.append(end + "}")
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        sep, pad, end = _seps(indent, level)
        out.append("[")
        for i, v in enumerate(o):
            out.append(pad if i == 0 else sep)
            _enc(v, out, indent, level + 1)
        out.append(end + "]")
    else:
        raise TypeError(f"cannot encode {type(o).__name__} as JSON")


def _seps(indent: int | None, level: int) -> tuple[str, str, str]:
    if indent is None:
        return ",", "", ""
    inner = "\n" + " " * (indent * (level + 1))
    return "," + inner, inner, "\n" + " " * (indent * level)
