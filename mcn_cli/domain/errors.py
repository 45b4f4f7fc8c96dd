"""The typed errors of the domain.

Every error the program reports to a user is one of these. The command line maps each class
to one exit status (see ``mcn_cli.status``); the message names the field and the rule.
"""

from __future__ import annotations

from mcn_cli.domain.messages import Message, english


class McnError(Exception):
    """Base of every error mcn reports to its user.

    ``message`` and ``hint`` are English source text marked with ``N_`` (see
    ``domain.messages``), with ``{name}`` placeholders filled from ``params``: the command line
    shows them translated, ``--json`` carries the English ``message``.
    """

    hint_id: str | None = None

    def __init__(self, message: str, *, hint: str | None = None, **params: object) -> None:
        self.msgid = message
        self.params = params
        self.message = english(message, params)
        if hint is not None:
            self.hint_id = hint
        super().__init__(self.message)

    @property
    def hint(self) -> str | None:
        return None if self.hint_id is None else english(self.hint_id, self.params)

    @hint.setter
    def hint(self, text: str | None) -> None:
        self.hint_id = text

    def __str__(self) -> str:
        return self.message

    def as_message(self) -> Message:
        """This error's text as a message, to quote it inside another one."""
        return Message(self.msgid, self.params)


class InvalidInput(McnError):
    """A value given by the user breaks a rule: ``field`` names it, ``rule`` is a stable code,
    ``detail`` says what is wrong (English source text with ``{name}`` parameters)."""

    def __init__(self, field: str, rule: str, detail: str, *, hint: str | None = None,
                 **params: object) -> None:
        super().__init__(detail, hint=hint, **params)
        self.message = f"{field}: {self.message}"
        self.args = (self.message,)
        self.field = field
        self.rule = rule
        self.detail_id = detail

    @property
    def detail(self) -> str:
        return english(self.detail_id, self.params)

    def as_message(self) -> Message:
        detail = Message(self.detail_id, self.params)
        return Message("{field}: {detail}", {"field": self.field, "detail": detail})


class NoCommitment(McnError):
    """No right at the requested date, or no payment commitment that may be used."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None, **params: object) -> None:
        super().__init__(message, hint=hint, **params)
        self.reason = reason


class AuthenticationNeeded(McnError):
    """No usable eHealth session: missing, expired, or refused credentials."""


class ServiceUnavailable(McnError):
    """The network or the service could not answer: the emergency flow applies."""


class PolicyRefused(McnError):
    """Refused by the legitimate-use rules (brochure section 7, 8.2.2.7)."""


class DataIntegrity(McnError):
    """Local data is unreadable: a wrong key, a tampered record or a broken audit chain."""


class KeyLost(DataIntegrity):
    """The cache's key is missing, unreadable, not a key, or not the cache's (``wrong``): the
    command line adds the way out (restore the key file, or start a new cache)."""

    def __init__(self, message: str, *, wrong: bool = False, **params: object) -> None:
        super().__init__(message, **params)
        self.wrong = wrong


class NoDatabase(McnError):
    """The data folder holds no database where one was expected (a mistyped MCN_HOME, a cron job
    pointed at the wrong folder): nothing is created, nothing is done."""
