"""The form of an eID PIN, checked before any token sees it."""

from __future__ import annotations

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_, Message

PIN_LENGTH = (4, 12)


EID_PIN = N_("eID PIN")


def check_pin(pin: str, what: str = EID_PIN) -> str:
    """``pin`` if it is 4 to 12 ASCII digits, else exit 2 with one line. Call it before a token
    sees the PIN: a wrong form must not cost a try (a real eID locks after three). ``what`` names
    the PIN: English source text marked ``N_`` (shown translated)."""
    low, high = PIN_LENGTH
    if not low <= len(pin) <= high:
        raise InvalidInput(
            "pin",
            "form",
            N_("the {what} must have {low} to {high} digits, not {count}"),
            what=Message(what),
            low=low,
            high=high,
            count=len(pin),
        )
    if not (pin.isascii() and pin.isdigit()):  # isdigit alone accepts '１２３４' and '²'
        raise InvalidInput(
            "pin",
            "form",
            N_("the {what} must be digits 0-9 only (no spaces, letters or other characters)"),
            what=Message(what),
        )
    return pin
