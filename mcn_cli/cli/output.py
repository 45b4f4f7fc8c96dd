"""Writing results: plain aligned text for people, stable JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class _State:
    json_written = False  # a command printed its JSON result; an error then adds no second document


def reset() -> None:
    _State.json_written = False


def json_written() -> bool:
    return _State.json_written


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, default=_default, ensure_ascii=False, indent=2) + "\n")
    _State.json_written = True


def emit_fields(rows: Iterable[tuple[str, object]], title: str | None = None) -> None:
    """A block of ``label  value`` lines, labels aligned."""
    rows = [(label, "" if value is None else str(value)) for label, value in rows]
    width = max((len(label) for label, _ in rows), default=0)
    lines = [title] if title else []
    indent = "  " if title else ""
    lines += [f"{indent}{label.ljust(width)}  {value}" for label, value in rows]
    sys.stdout.write("\n".join(lines) + "\n")


def emit_result(json: bool, payload: Any, text: str) -> None:
    """A command's result: ``payload`` as JSON for scripts, else ``text`` for people."""
    if json:
        emit_json(payload)
    else:
        emit_line(text)


def emit_line(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def emit_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A plain aligned table (fast to start, friendly to grep and to narrow terminals)."""
    text_rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in text_rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in text_rows]
    sys.stdout.write("\n".join(lines) + "\n")
