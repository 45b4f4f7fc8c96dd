"""Free text from outside: the characters a terminal, a spreadsheet or an XML document misreads.

Names and references are checked where they enter (:func:`check_text`): a length and no control
character. Text that came from elsewhere (certificates, MyCareNet's answers, files) is made
harmless where it leaves: :func:`visible` writes control characters as escapes a reader sees
(``\\x1b``, ``\\u202e``) and :func:`spreadsheet_cell` keeps a CSV cell from being read as a
formula (OWASP's advice: a leading single quote).
"""

from __future__ import annotations

import re
from functools import cache

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_, Message

# C0 (with TAB, LF, CR), DEL and C1 (U+009B is a one-character CSI in some terminals); the
# Unicode bidi controls (ALM, LRM, RLM, LRE..RLO, LRI..PDI: "Trojan Source") with the line and
# paragraph separators between them (U+2028..U+202E); lone surrogates (undecodable bytes from a
# command line or a file: they cannot be written as UTF-8 and would end the program).
_BEYOND_C0 = "\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_FORMULA_START = "=+-@"


@cache
def _pattern(name: str) -> re.Pattern[str]:
    """Compiled on first use: most text is printable and never needs them (start-up time)."""
    return re.compile(
        {
            "control": f"[\x00-\x1f{_BEYOND_C0}]",
            "control-but-newline": f"[\x00-\x09\x0b-\x1f{_BEYOND_C0}]",
            "beyond-c0": f"[{_BEYOND_C0}]",  # what json.dumps(ensure_ascii=False) leaves raw
            "number": r"[+-]?[0-9]+(?:[.,][0-9]+)?",
        }[name]
    )


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\u202e``);
    with ``keep_newlines`` a line feed stays (the program's own multi-line messages)."""
    if text.isprintable() or (keep_newlines and all(line.isprintable() for line in text.split("\n"))):
        return text  # no control character (isprintable refuses them all, and a few harmless ones)
    return _pattern("control-but-newline" if keep_newlines else "control").sub(_escape, text)


def json_visible(document: str) -> str:
    """A JSON document (from ``json.dumps(..., ensure_ascii=False)``, which escapes C0 only) with
    DEL, C1, the bidi controls, the line separators and lone surrogates escaped as ``\\uXXXX``
    too: the same JSON value, nothing a terminal acts on. JSON's own structure never holds these
    characters, so only string contents change form."""
    if document.isascii() and "\x7f" not in document:
        return document
    return _pattern("beyond-c0").sub(lambda match: f"\\u{ord(match.group()):04x}", document)


def first_control(text: str) -> int | None:
    """The position of the first control character in ``text``, or None."""
    if text.isprintable():
        return None
    found = _pattern("control").search(text)
    return None if found is None else found.start()


def check_text(field: str, value: str, *, max_length: int, why: str = "") -> str:
    """``value`` when it has at most ``max_length`` characters and no control character, else
    :class:`InvalidInput` naming ``field`` and the rule ("length", "control-character"). ``why``
    (English source text marked ``N_``) says where the limit comes from."""
    if len(value) > max_length:
        if why:
            raise InvalidInput(
                field,
                "length",
                N_("must have at most {most} characters ({why}), got {count}"),
                most=max_length,
                why=Message(why),
                count=len(value),
            )
        raise InvalidInput(
            field,
            "length",
            N_("must have at most {most} characters, got {count}"),
            most=max_length,
            count=len(value),
        )
    where = first_control(value)
    if where is not None:
        raise InvalidInput(
            field,
            "control-character",
            N_("must not contain control characters: {character} at position {position}"),
            character=visible(value[where]),
            position=where + 1,
        )
    return value


def spreadsheet_cell(value: object) -> object:
    """A CSV cell that no spreadsheet reads as a formula: text starting with ``= + - @`` (or a
    tab or carriage return) gets a leading single quote; numbers (also written as text, such as
    ``-12.50``) stay as they are. Control characters are written as visible escapes."""
    if not isinstance(value, str):
        return value
    text = visible(value)
    start = text.lstrip(" ")[:1]
    if start and start in _FORMULA_START and not _pattern("number").fullmatch(text):
        return "'" + text
    return text
