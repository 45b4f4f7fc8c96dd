"""The typed errors of the domain.

Every error the program reports to a user is one of these. The command line maps each class
to one exit status (see ``mcn_cli.status``); the message names the field and the rule.
"""

from __future__ import annotations


class McnError(Exception):
    """Base of every error mcn reports to its user."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(McnError):
    """A value given by the user breaks a rule: ``field`` names it, ``rule`` is a stable code."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.rule = rule
        self.detail = detail


class NoCommitment(McnError):
    """No right at the requested date, or no payment commitment that may be used."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class AuthenticationNeeded(McnError):
    """No usable eHealth session: missing, expired, or refused credentials."""


class ServiceUnavailable(McnError):
    """The network or the service could not answer: the emergency flow applies."""


class PolicyRefused(McnError):
    """Refused by the legitimate-use rules (brochure section 7, 8.2.2.7)."""


class DataIntegrity(McnError):
    """Local data is unreadable: a wrong key, a tampered record or a broken audit chain."""


class NoDatabase(McnError):
    """The data folder holds no database where one was expected (a mistyped MCN_HOME, a cron job
    pointed at the wrong folder): nothing is created, nothing is done."""
