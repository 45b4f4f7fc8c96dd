"""The one mapping from errors to exit statuses and one-line messages, for the whole program."""

from __future__ import annotations

import sys

from mcn_cli.cli.i18n import _, render
from mcn_cli.cli.output import emit_json, json_written
from mcn_cli.domain.errors import (
    AuthenticationNeeded,
    DataIntegrity,
    InvalidInput,
    McnError,
    NoCommitment,
    NoDatabase,
    PolicyRefused,
    ServiceUnavailable,
)
from mcn_cli.status import ExitStatus

_STATUS: tuple[tuple[type[McnError], ExitStatus], ...] = (
    (InvalidInput, ExitStatus.BAD_INPUT),
    (NoCommitment, ExitStatus.NO_COMMITMENT),
    (AuthenticationNeeded, ExitStatus.AUTH_NEEDED),
    (ServiceUnavailable, ExitStatus.SERVICE_UNAVAILABLE),
    (PolicyRefused, ExitStatus.POLICY_REFUSED),
    (DataIntegrity, ExitStatus.DATA_INTEGRITY),
    (NoDatabase, ExitStatus.NO_DATABASE),
)

KINDS: dict[ExitStatus, str] = {
    ExitStatus.ERROR: "internal-error",
    ExitStatus.BAD_INPUT: "bad-input",
    ExitStatus.NO_COMMITMENT: "no-commitment",
    ExitStatus.AUTH_NEEDED: "authentication-needed",
    ExitStatus.SERVICE_UNAVAILABLE: "service-unavailable",
    ExitStatus.POLICY_REFUSED: "policy-refused",
    ExitStatus.DATA_INTEGRITY: "data-integrity",
    ExitStatus.NO_DATABASE: "no-database",
}


def status_for(error: McnError) -> ExitStatus:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return ExitStatus.ERROR


def human(error: McnError) -> str:
    """The error's message in the user's language."""
    if isinstance(error, InvalidInput):
        return f"{error.field}: {render(error.detail_id, error.params)}"
    return render(error.msgid, error.params)


def human_hint(error: McnError) -> str | None:
    return None if error.hint_id is None else render(error.hint_id, error.params)


def say(message: str, hint: str | None = None) -> None:
    """An error line on stderr (and its hint's), in the user's language: ``message`` and
    ``hint`` translated already; outside text in them is shown with control characters escaped."""
    from mcn_cli.domain.text import visible

    sys.stderr.write(_("mcn: error: {message}").format(message=visible(message)) + "\n")
    if hint:
        sys.stderr.write(_("mcn: hint: {hint}").format(hint=visible(hint)) + "\n")


def warn(text: str) -> None:
    """A warning line on stderr (``text`` translated already)."""
    from mcn_cli.domain.text import visible

    sys.stderr.write(_("mcn: warning: {message}").format(message=visible(text)) + "\n")


def report(
    status: ExitStatus,
    message: str,
    *,
    json_mode: bool,
    error: McnError | None = None,
    shown: str | None = None,
) -> int:
    """One line on stderr (and a hint line when there is one), in the user's language; for
    scripts, a JSON error object on stdout (English, stable) unless the command already printed
    its JSON result (which then says what went wrong). ``message`` is the English text; ``shown``
    the human one when it is not ``error``'s."""
    if shown is None:
        shown = message if error is None else human(error)
    hint = None if error is None else error.hint
    say(shown, (human_hint(error) or hint) if error is not None and hint else None)
    if json_mode and not json_written():
        payload: dict[str, object] = {
            "status": int(status),
            "kind": KINDS.get(status, "error"),
            "message": message,
        }
        if isinstance(error, InvalidInput):
            payload["field"] = error.field
            payload["rule"] = error.rule
        if isinstance(error, NoCommitment):
            payload["reason"] = error.reason
        if hint:
            payload["hint"] = hint
        emit_json({"error": payload})
    return int(status)
