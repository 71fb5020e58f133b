"""One output style for every command: aligned tables for people, ``--json`` for scripts
(one JSON object a line), times in Japan time where the law means it."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

JST = timezone(timedelta(hours=9), "JST")


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def jst(when: datetime | None, *, seconds: bool = False) -> str:
    """``2025-04-01 09:00 JST`` (empty for None)."""
    if when is None:
        return ""
    return when.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST" if seconds else "%Y-%m-%d %H:%M JST")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Rows as an aligned table with a header line (``columns``: (key, header))."""
    cells = [[h for _, h in columns]] + [["" if r.get(k) is None else str(r.get(k)) for k, _ in columns]
                                         for r in rows]
    widths = [max(width(row[i]) for row in cells) for i in range(len(columns))]
    lines = []
    for row in cells:
        parts = [c + " " * (w - width(c)) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def emit(as_json: bool, rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]],
         empty: str = "(none)") -> None:
    """Print ``rows``: one JSON object a line with ``--json``, else an aligned table."""
    if as_json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False, default=str))
    elif rows:
        print(table(rows, columns))
    else:
        print(empty)


def emit_one(as_json: bool, row: dict[str, Any]) -> None:
    """One object: JSON, or ``key  value`` lines."""
    if as_json:
        print(json.dumps(row, ensure_ascii=False, default=str))
        return
    w = max((width(k) for k in row), default=0)
    for k, v in row.items():
        value = ", ".join(str(x) for x in v) if isinstance(v, list | tuple) else ("" if v is None else str(v))
        print(f"{k}{' ' * (w - width(k))}  {value}")


__all__ = ["JST", "emit", "emit_one", "jst", "table", "width"]
