"""The form of an eID PIN, checked before any token sees it."""

from __future__ import annotations

from mcn_cli.domain.errors import InvalidInput

PIN_LENGTH = (4, 12)


def check_pin(pin: str, what: str = "eID PIN") -> str:
    """``pin`` if it is 4 to 12 ASCII digits, else exit 2 with one line. Call it before a token
    sees the PIN: a wrong form must not cost a try (a real eID locks after three)."""
    low, high = PIN_LENGTH
    if not low <= len(pin) <= high:
        raise InvalidInput("pin", "form", f"the {what} must have {low} to {high} digits, not {len(pin)}")
    if not (pin.isascii() and pin.isdigit()):  # isdigit alone accepts '１２３４' and '²'
        raise InvalidInput(
            "pin", "form", f"the {what} must be digits 0-9 only (no spaces, letters or other characters)"
        )
    return pin
