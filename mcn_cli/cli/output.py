"""Writing results: plain aligned text for people, stable JSON for scripts.

Everything printed here may hold text from outside (certificate subjects, names in MyCareNet's
answers, files): no control character reaches the terminal raw. The human renderers write them
as visible escapes (``\\x1b``, ``\\u202e``); JSON escapes them as ``\\uXXXX`` (same value).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from mcn_cli.domain.text import json_visible, visible


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
    document = json.dumps(payload, default=_default, ensure_ascii=False, indent=2)
    sys.stdout.write(json_visible(document) + "\n")
    _State.json_written = True


def _cell(value: object) -> str:
    """A value as people read it: dates as the language writes them (ISO in English), times in
    local time, booleans as yes/no, messages translated (see ``i18n.value_text``)."""
    from mcn_cli.cli.i18n import value_text

    return "" if value is None else visible(str(value_text(value)))


def emit_fields(rows: Iterable[tuple[str, object]], title: str | None = None) -> None:
    """A block of ``label  value`` lines, labels aligned; one line per row (a line break in a
    value is written as an escape)."""
    rows = [(visible(label), _cell(value)) for label, value in rows]
    width = max((len(label) for label, _ in rows), default=0)
    lines = [visible(title, keep_newlines=True)] if title else []
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
    """One message (its own line breaks kept, every other control character escaped)."""
    sys.stdout.write(visible(text, keep_newlines=True) + "\n")


def emit_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A plain aligned table (fast to start, friendly to grep and to narrow terminals)."""
    headers = [visible(h) for h in headers]
    text_rows = [[_cell(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in text_rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in text_rows]
    sys.stdout.write("\n".join(lines) + "\n")
