"""Docker's output conventions: human sizes and durations, tabwriter tables, `--format` handling."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

from berth.humanize import human_duration  # noqa: F401 (re-exported: callers use format.human_duration)

_DEC_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BIN_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _gfmt(value: float, precision: int) -> str:
    return f"{value:.{precision}g}"


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units, `precision` significant digits ("4.26MB")."""
    i = 0
    size = float(size)
    while size >= 1000.0 and i < len(_DEC_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{_gfmt(size, precision)}{_DEC_UNITS[i]}"


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits ("1.5MiB")."""
    i = 0
    size = float(size)
    while size >= 1024.0 and i < len(_BIN_UNITS) - 1:
        size /= 1024.0
        i += 1
    return f"{_gfmt(size, 4)}{_BIN_UNITS[i]}"


def since(unix_ts: float) -> str:
    """"3 minutes ago" from a unix timestamp."""
    return human_duration(max(0.0, time.time() - float(unix_ts))) + " ago"


def parse_rfc3339(s: str) -> float:
    """RFC 3339 (nanosecond precision allowed) to unix seconds; 0 for Go's zero time."""
    from datetime import datetime

    if not s or s.startswith("0001-01-01"):
        return 0.0
    s = s.replace("Z", "+00:00")
    date, _, rest = s.partition("T")
    frac = ""
    tz = ""
    for i, c in enumerate(rest):
        if c in "+-" and i >= 8:
            rest, tz = rest[:i], rest[i:]
            break
    if "." in rest:
        rest, frac = rest.split(".", 1)
    dt = datetime.fromisoformat(f"{date}T{rest}{tz or '+00:00'}")
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def short_id(ident: str) -> str:
    if ident.startswith("sha256:"):
        ident = ident[7:]
    return ident[:12]


def ellipsis(s: str, n: int) -> str:
    """Docker's formatter.Ellipsis: cut to n runes, the last one replaced by '…'."""
    if len(s) <= n:
        return s
    if n <= 1:
        return s[:n]
    return s[: n - 1] + "…"


def tabwrite(lines: Iterable[str], minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter as Docker configures it: a cell ends at a tab; columns are padded."""
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for cells in rows:
        for j, cell in enumerate(cells[:-1]):
            widths[j] = max(widths.get(j, 0), max(len(cell) + padding, minwidth))
    out = []
    for cells in rows:
        out.append("".join(c.ljust(widths[j]) for j, c in enumerate(cells[:-1])) + cells[-1])
    return "".join(line + "\n" for line in out)


def expand_format(fmt: str) -> str:
    """The CLI turns the two-character escapes `\\t` and `\\n` into real ones."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


class HeaderContext:
    """Renders a `table` format's header: every field evaluates to its column title."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        title = self._headers.get(name, name.upper())

        class _Title(str):
            def __call__(self, *args: Any) -> str:
                return str(self) if not args else (str(args[0]).upper() if name == "Label" else str(self))

        return _Title(title)

    def __template_json__(self):
        return {}


def render(
    fmt: str,
    items: list[Any],
    headers: dict[str, str],
    default_table: str,
    quiet_field: str | None = None,
) -> str:
    """Format `items` for --format (`table ...`, `json`, raw template) or the default table."""
    from berth.cli import template

    if not fmt:
        fmt = default_table
    if fmt == "json":
        fmt = "{{json .}}"
    elif fmt == "table":
        fmt = default_table
    table = fmt.startswith("table")
    body = expand_format(fmt[5:].lstrip() if table else fmt)
    tpl = template.Template(body)
    rendered = [tpl.render(it) for it in items]
    if not table:
        return "".join(r + "\n" for r in rendered)
    lines = [tpl.render(HeaderContext(headers))] + rendered
    return tabwrite(line for chunk in lines for line in chunk.split("\n"))


def write(text: str, stream=None) -> None:
    (stream or sys.stdout).write(text)
