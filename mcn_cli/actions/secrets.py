"""PINs and passwords: from a file descriptor, an environment variable or a hidden prompt.

Never from an option value, never written anywhere, never logged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from mcn_cli.domain.errors import AuthenticationNeeded, InvalidInput


def _from_fd(fd: int, what: str) -> str:
    try:
        with os.fdopen(os.dup(fd), "r", encoding="utf-8") as stream:
            value = stream.readline().rstrip("\r\n")
    except OSError as error:
        raise InvalidInput(
            f"{what}-fd", "unreadable", f"cannot read file descriptor {fd}: {error.strerror}"
        ) from None
    if not value:
        raise InvalidInput(f"{what}-fd", "empty", f"file descriptor {fd} gave an empty {what}")
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
            return _from_fd(fd, what)
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
