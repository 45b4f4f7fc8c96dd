"""PINs and passwords: from a file descriptor, an environment variable or a hidden prompt.

Never from an option value, never written anywhere, never logged, never repeated in a message.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from mcn_cli.domain.errors import AuthenticationNeeded, InvalidInput
from mcn_cli.domain.pin import PIN_LENGTH, check_pin

FD_LIMIT = 4096  # bytes: more than any PIN or password; /dev/zero stops here


def _from_fd(fd: int, what: str, fd_option: str) -> str:
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
            field, "unreadable", f"cannot read file descriptor {fd}: {error.strerror}"
        ) from None
    if len(data) > FD_LIMIT:
        raise InvalidInput(field, "too-long", f"file descriptor {fd} gave more than {FD_LIMIT} bytes")
    data = data.removesuffix(b"\n").removesuffix(b"\r") if data.endswith(b"\n") else data
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            field, "encoding", f"file descriptor {fd} gave a {what} that is not UTF-8"
        ) from None
    if not value:
        raise InvalidInput(field, "empty", f"file descriptor {fd} gave an empty {what}")
    if "\n" in value or "\r" in value:
        raise InvalidInput(field, "lines", f"file descriptor {fd} gave more than one line for the {what}")
    return value


def secret(
    what: str,
    env: str,
    *,
    fd: int | None = None,
    prompt: str,
    default: str | None = None,
    fd_option: str,
) -> Callable[[], str]:
    """A function giving the secret when needed: fd, then ``env``, then ``default`` (sandbox
    test credentials), then a hidden prompt on a terminal."""

    def get() -> str:
        if fd is not None:
            return _from_fd(fd, what, fd_option)
        value = os.environ.get(env)
        if value:
            return value
        if default is not None:
            return default
        if sys.stdin.isatty():
            import getpass

            entered = getpass.getpass(prompt)
            if entered:
                return entered
        raise AuthenticationNeeded(
            f"the {what} is needed: set {env}, use {fd_option} N, or run in a terminal"
        )

    return get


def new_pin(what: str, env: str, *, fd: int | None, default: str, fd_option: str) -> str:
    """A PIN to set, checked: from ``fd``, else ``env``, else asked twice on a terminal (Enter
    keeps ``default``), else ``default`` (no terminal: scripts, the demo)."""
    if fd is not None:
        return check_pin(_from_fd(fd, what, fd_option), what)
    value = os.environ.get(env)
    if value:
        return check_pin(value, what)
    if not sys.stdin.isatty():
        return check_pin(default, what)
    import getpass

    entered = getpass.getpass(
        f"{what[0].upper()}{what[1:]} ({PIN_LENGTH[0]}-{PIN_LENGTH[1]} digits, Enter for {default}): "
    )
    if not entered:
        return check_pin(default, what)
    check_pin(entered, what)
    if getpass.getpass("Again: ") != entered:
        raise InvalidInput("pin", "mismatch", f"the two {what}s differ; nothing was changed")
    return entered
