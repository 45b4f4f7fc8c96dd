"""PINs and passwords: from a file descriptor, an environment variable or a hidden prompt.

Never from an option value, never written anywhere, never logged, never repeated in a message.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from mcn_cli.domain.errors import AuthenticationNeeded, InvalidInput
from mcn_cli.domain.messages import N_, Message, for_people
from mcn_cli.domain.pin import PIN_LENGTH, check_pin

FD_LIMIT = 4096  # bytes: more than any PIN or password; /dev/zero stops here
EMPTY_ASKS = 5  # empty answers at a prompt before giving up (a human presses Enter by mistake)

Phrase = str | Message  # a prompt or the name of a secret: a message, or text already translated


def _from_fd(fd: int, what: Phrase, fd_option: str) -> str:
    """What the caller wrote to ``fd`` (to its end; one line on a terminal), less one trailing
    newline (LF or CRLF): the secret itself, which must be one line of UTF-8."""
    field = fd_option.lstrip("-")
    data = b""
    try:
        terminal = os.isatty(fd)
        while len(data) <= FD_LIMIT:
            chunk = os.read(fd, FD_LIMIT + 1 - len(data))
            if not chunk:
                break
            data += chunk
            if terminal and data.endswith(b"\n"):
                break
    except OSError as error:
        raise InvalidInput(
            field,
            "unreadable",
            N_("cannot read file descriptor {fd}: {reason}"),
            fd=fd,
            reason=error.strerror,
        ) from None
    if len(data) > FD_LIMIT:
        raise InvalidInput(
            field, "too-long", N_("file descriptor {fd} gave more than {limit} bytes"), fd=fd, limit=FD_LIMIT
        )
    data = data.removesuffix(b"\n").removesuffix(b"\r") if data.endswith(b"\n") else data
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            field, "encoding", N_("file descriptor {fd} gave a {what} that is not UTF-8"), fd=fd, what=what
        ) from None
    if not value:
        raise InvalidInput(field, "empty", N_("file descriptor {fd} gave an empty {what}"), fd=fd, what=what)
    if "\n" in value or "\r" in value:
        raise InvalidInput(
            field,
            "lines",
            N_("file descriptor {fd} gave more than one line for the {what}"),
            fd=fd,
            what=what,
        )
    return value


def _msgid(what: Phrase) -> str:
    """The name of a PIN as ``check_pin`` takes it (a message's English source text)."""
    return what.msgid if isinstance(what, Message) else what


def _shown(text: Phrase) -> str:
    """A prompt as the user reads it. The hidden prompt is the one place where actions/ talk to
    the terminal themselves: a message is rendered there in the user's language."""
    return for_people(text)


def _say(text: Phrase) -> None:
    sys.stderr.write(_shown(text) + "\n")
    sys.stderr.flush()


def _hidden(prompt: Phrase) -> str:
    """One answer typed without echo. Ctrl-C (or the end of input) ends the prompt's line before
    the interruption goes on, so that the next message starts on a line of its own."""
    import getpass

    shown = _shown(prompt)
    try:
        return getpass.getpass(shown)
    except (KeyboardInterrupt, EOFError):
        sys.stderr.write("\n")
        sys.stderr.flush()
        raise KeyboardInterrupt from None


def _not_empty(prompt: Phrase, what: Phrase) -> str | None:
    """An answer that is not empty (an empty one asks again), or None after EMPTY_ASKS empty ones."""
    for _ in range(EMPTY_ASKS):
        entered = _hidden(prompt)
        if entered:
            return entered
        _say(Message(N_("the {what} cannot be empty: type it, or press Ctrl-C to stop"), {"what": what}))
    return None


def secret(
    what: Phrase,
    env: str,
    *,
    fd: int | None = None,
    prompt: Phrase,
    default: str | None = None,
    fd_option: str,
) -> Callable[[], str]:
    """A function giving the secret when needed: fd, then ``env``, then ``default`` (sandbox
    test credentials), then a hidden prompt on a terminal (an empty answer asks again).
    ``what`` and ``prompt`` are messages (actions/) or text already translated (cli/)."""

    def get() -> str:
        if fd is not None:
            return _from_fd(fd, what, fd_option)
        value = os.environ.get(env)
        if value:
            return value
        if default is not None:
            return default
        if sys.stdin.isatty():
            entered = _not_empty(prompt, what)
            if entered:
                return entered
        raise AuthenticationNeeded(
            N_("the {what} is needed: set {env}, use {fd_option} N, or run in a terminal"),
            what=what,
            env=env,
            fd_option=fd_option,
        )

    return get


def new_pin(what: Phrase, env: str, *, fd: int | None, default: str, fd_option: str) -> str:
    """A PIN to set, checked: from ``fd``, else ``env``, else asked twice on a terminal (Enter
    keeps ``default``; an empty confirmation asks again), else ``default`` (no terminal: scripts,
    the demo)."""
    if fd is not None:
        return check_pin(_from_fd(fd, what, fd_option), _msgid(what))
    value = os.environ.get(env)
    if value:
        return check_pin(value, _msgid(what))
    if not sys.stdin.isatty():
        return check_pin(default, _msgid(what))
    question = _shown(
        Message(
            N_("{what} ({low}-{high} digits, Enter for {default}): "),
            {"what": what, "low": PIN_LENGTH[0], "high": PIN_LENGTH[1], "default": default},
        )
    )
    entered = _hidden(question[:1].upper() + question[1:])
    if not entered:
        return check_pin(default, _msgid(what))
    check_pin(entered, _msgid(what))
    again = _not_empty(Message(N_("Again: ")), what)
    if again != entered:
        raise InvalidInput(
            "pin", "mismatch", N_("the two entries of the {what} differ; nothing was changed"), what=what
        )
    return entered
