"""Dates as pharmacists write them: ISO ``2011-11-12`` or Belgian ``12/11/2011`` / ``12.11.2011``."""

from __future__ import annotations

import re
from datetime import date

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_BELGIAN = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")


def parse_date(value: str, field: str = "date") -> date:
    text = value.strip()
    if match := _ISO.match(text):
        year, month, day = (int(g) for g in match.groups())
    elif match := _BELGIAN.match(text):
        day, month, year = (int(g) for g in match.groups())
    else:
        raise InvalidInput(
            field, "format", N_("expected a date as YYYY-MM-DD or DD/MM/YYYY, got {value!r}"), value=value
        )
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidInput(
            field, "no-such-date", N_("{text} is not a date of the calendar"), text=text
        ) from None


def parse_month(value: str, field: str = "month") -> tuple[int, int]:
    """A billing month ``YYYY-MM``."""
    match = re.match(r"^(\d{4})-(\d{2})$", value.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise InvalidInput(field, "format", N_("expected a month as YYYY-MM, got {value!r}"), value=value)
    return int(match.group(1)), int(match.group(2))
