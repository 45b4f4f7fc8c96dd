"""English source text that the command line translates.

Code outside ``cli/`` never translates: it marks its human text with :func:`N_` (gettext's
``gettext_noop``: the string is collected into the catalogues and returned unchanged) and
passes values as named parameters, so that ``cli/`` renders the same message in French, Dutch
or English and ``--json`` keeps the English one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


def N_(text: str) -> str:
    """Mark ``text`` as a message for the catalogues; returned as is (translated in cli/)."""
    return text


@dataclass(frozen=True)
class Message:
    """A message and its named parameters (parameters may be messages themselves)."""

    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return english(self.msgid, self.params)


def english(msgid: str, params: Mapping[str, object]) -> str:
    """The message in English, as ``--json`` and the logs carry it."""
    if not params:
        return msgid
    try:
        return msgid.format(**{name: str(value) if isinstance(value, Message) else value
                               for name, value in params.items()})
    except (KeyError, IndexError, ValueError):  # a placeholder without its value: say it as is
        return msgid


class _Terminal:
    render: Callable[[Message], str] = str  # English until cli/ installs the user's language


def for_people(text: Message | str) -> str:
    """A message as the person at the terminal reads it (a prompt asked below cli/): in the
    language cli/ installed with :func:`install_renderer`, English before; text as is."""
    return _Terminal.render(text) if isinstance(text, Message) else text


def install_renderer(render: Callable[[Message], str]) -> None:
    _Terminal.render = render
