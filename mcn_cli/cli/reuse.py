"""`mcn reuse`: the cached payment commitment that may be reused when the network is down."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mcn_cli.cli.output import emit_fields, emit_json, emit_line
from mcn_cli.cli.patient import MemberOption, MutualityOption, NissOption, patient_from
from mcn_cli.cli.records import cached_json, consultation_rows
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import NoCommitment


class Text:
    """Human text of `mcn reuse` (translate here)."""

    help = (
        "Find the latest cached payment commitment covering a dispensing date, for when the network "
        "cannot be reached (brochure 5.3). Reuse is allowed only then."
    )
    date_help = "Dispensing date: YYYY-MM-DD or DD/MM/YYYY."
    reveal_help = "Show NISS, membership number and name in full."
    json_help = "Print JSON."
    allowed = "reuse allowed: this commitment covers {date}; use it only because the network is down"
    refused = "no commitment may be reused for {date}: {reason}"
    hint = "go on with the emergency flow: mcn fallback --no-network --known --no-covered"
    hint_unknown = "go on with the emergency flow: mcn fallback --no-network --no-known"


def reuse_json(answer: Any, reveal: bool) -> dict[str, Any]:
    return {
        "dispensed": answer.dispensed,
        "known": answer.known,
        "reusable": answer.verdict.allowed,
        "reason": answer.verdict.reason,
        "record": cached_json(answer.record, reveal) if answer.record else None,
    }


def reuse(
    dispensed: Annotated[str, typer.Option("--date", "-d", help=Text.date_help, show_default=False)],
    niss: NissOption = None,
    mutuality: MutualityOption = None,
    member_number: MemberOption = None,
    reveal: Annotated[bool, typer.Option("--reveal", help=Text.reveal_help)] = False,
    json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False,
) -> None:
    """Find a reusable cached commitment."""
    from mcn_cli.actions.reuse import find_reusable

    patient = patient_from(niss, mutuality, member_number)
    day = parse_date(dispensed, "date")
    answer = find_reusable(patient, day)
    if json:
        emit_json(reuse_json(answer, reveal))
    elif answer.verdict.allowed:
        emit_line(Text.allowed.format(date=day))
    if answer.record is not None and not json:
        emit_fields(consultation_rows(answer.record.consultation, reveal))
    if not answer.verdict.allowed:
        raise NoCommitment(
            Text.refused.format(date=day, reason=answer.verdict.reason),
            reason=answer.verdict.reason,
            hint=Text.hint if answer.known else Text.hint_unknown,
        )
