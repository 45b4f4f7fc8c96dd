"""`mcn reuse`: the cached payment commitment that may be reused when the network is down."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar

import typer

from mcn_cli.cli.i18n import _, day
from mcn_cli.cli.output import emit_fields, emit_json, emit_line
from mcn_cli.cli.patient import MemberOption, MutualityOption, NissOption, patient_from
from mcn_cli.cli.records import Text as RecordText
from mcn_cli.cli.records import cached_json, consultation_rows, patient_label, reason_words
from mcn_cli.domain.commitment import ReuseRefusal
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import NoCommitment
from mcn_cli.domain.messages import N_, Message


class Text:
    """Human text of `mcn reuse` (translate here)."""

    help = _(
        "Find the latest cached payment commitment covering a dispensing date, for when the network "
        "cannot be reached (brochure 5.3). Reuse is allowed only then."
    )
    date_help = _("Dispensing date: YYYY-MM-DD or DD/MM/YYYY (default: today).")
    reveal_help = _("Show NISS, membership number and name in full.")
    json_help = _("Print JSON.")
    allowed = _("Reuse allowed: this commitment covers {date}; use it only because the network is down.")
    # a refusal: the verdict first, with the facts that explain it
    refused: ClassVar[dict[str, str]] = {
        ReuseRefusal.AFTER_COVERAGE: _(
            "Do not reuse: the latest commitment's coverage ended on {end}, "
            "before the dispensing date {date}."
        ),
        ReuseRefusal.BEFORE_COVERAGE: _(
            "Do not reuse: the latest commitment's coverage starts on {start}, "
            "after the dispensing date {date}."
        ),
        ReuseRefusal.ENDED_BEFORE_CONSULTATION: _(
            "Do not reuse: the latest commitment's coverage ended on {end}, before its consultation on "
            "{consulted}: it is never reusable."
        ),
        ReuseRefusal.NONE_KNOWN: _("Do not reuse: no payment commitment is known for this patient."),
    }
    refused_other = _("Do not reuse: {reason}.")


# The error that gives the exit status: English source text (JSON), translated when shown.
REFUSED = N_("no commitment may be reused for {date}: {why}")
HINT = N_("go on with the emergency flow: mcn fallback --no-network --known --no-covered")
HINT_UNKNOWN = N_("go on with the emergency flow: mcn fallback --no-network --no-known")


def reuse_json(answer: Any, reveal: bool) -> dict[str, Any]:
    return {
        "dispensed": answer.dispensed,
        "known": answer.known,
        "reusable": answer.verdict.allowed,
        "reason": answer.verdict.reason,
        "record": cached_json(answer.record, reveal) if answer.record else None,
    }


def refusal_lines(answer: Any, reveal: bool) -> tuple[str, list[tuple[str, object]]]:
    """The verdict of a refused reuse in words, and the few facts that explain it (never the
    commitment's codes, which must not be used)."""
    reason = answer.verdict.reason
    record = answer.record
    commitment = record.consultation.commitment if record is not None else None
    if reason == ReuseRefusal.NONE_KNOWN:
        return Text.refused[reason], []
    if commitment is None or reason not in Text.refused:
        return Text.refused_other.format(reason=reason_words(reason)), []
    cover = commitment.coverage
    consulted = record.consultation.consulted_at.astimezone().date()
    verdict = Text.refused[reason].format(
        date=day(answer.dispensed), start=day(cover.start), end=day(cover.end), consulted=day(consulted)
    )
    receiver = record.consultation.care_receiver
    facts: list[tuple[str, object]] = [
        (RecordText.patient, patient_label(receiver, reveal)),
        (RecordText.consulted, record.consultation.consulted_at),
        (RecordText.coverage, RecordText.span.format(start=day(cover.start), end=day(cover.end))),
    ]
    return verdict, facts


def reuse(
    niss: NissOption = None,
    mutuality: MutualityOption = None,
    member_number: MemberOption = None,
    dispensed: Annotated[
        str | None, typer.Option("--date", "-d", help=Text.date_help, show_default=False)
    ] = None,
    reveal: Annotated[bool, typer.Option("--reveal", help=Text.reveal_help)] = False,
    json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False,
) -> None:
    """Find a reusable cached commitment."""
    from mcn_cli.actions.reuse import find_reusable

    patient = patient_from(niss, mutuality, member_number)
    on = parse_date(dispensed, "date") if dispensed else date.today()
    answer = find_reusable(patient, on)
    if json:
        emit_json(reuse_json(answer, reveal))
    elif answer.verdict.allowed:
        emit_line(Text.allowed.format(date=day(on)))
        if answer.record is not None:
            emit_fields(consultation_rows(answer.record.consultation, reveal))
    else:
        verdict, facts = refusal_lines(answer, reveal)
        emit_line(verdict)
        if facts:
            emit_fields(facts)
    if not answer.verdict.allowed:
        raise NoCommitment(
            REFUSED,
            reason=answer.verdict.reason,
            hint=HINT if answer.known else HINT_UNKNOWN,
            date=on,
            why=Message(answer.verdict.reason),
        )
