"""`mcn consult`: a patient's rights and payment commitment for a dispensing."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from mcn_cli.cli.output import emit_fields, emit_json
from mcn_cli.cli.patient import MemberOption, MutualityOption, NissOption, patient_from
from mcn_cli.cli.records import consultation_json
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import NoCommitment, ServiceUnavailable


class Text:
    """Human text of `mcn consult` (translate here)."""

    help = (
        "Consult a patient's rights for a dispensing and get the payment commitment "
        "(one patient per call; the answer is kept in the encrypted cache and audited)."
    )
    date_help = "Dispensing date: YYYY-MM-DD or DD/MM/YYYY (default: today)."
    session_help = "The eHealth session to use."
    reference_help = "Your own reference for this request (at most 25 characters; returned by MyCareNet)."
    trace_help = (
        "Write the request exactly as sent (its signature verifies; it holds the licence), a copy with "
        "the licence redacted (...-request.redacted.xml, the one to send) and the answer to this folder."
    )
    json_help = "Print JSON."
    patient = "patient"
    born = "born"
    deceased = "deceased"
    mutuality = "mutuality"
    entitlement = "CT1/CT2"
    increased = " (increased reimbursement)"
    third_party = "third-party payer"
    coverage = "coverage"
    reusable = "{start} → {end}; reusable up to {end} when the network is down"
    never = "{start} → {end}; never reusable (ended before today)"
    approval = "payment approval"
    seed = "seed"
    ot_check = "OT check code"
    record = "cache record"
    outcomes: ClassVar[dict[str, str]] = {
        "no-right": "no right at {date}: no payment commitment",
        "unknown": "the insurers do not know this patient: no payment commitment",
        "multiple-insurers": "the patient is known at several insurers ({insurers}): no payment commitment; "
        "ask the patient which insurer is theirs",
    }
    reuse_ok = (
        "network down: the cached commitment of {consulted} covers {date} (mcn reuse {who} --date {date})"
    )
    reuse_no = (
        "network down and no cached commitment may be reused ({reason}): "
        "mcn fallback --no-network {who} --date {date}"
    )
    trace_warning = (
        "traces hold patient data, and each ...-request.xml the software licence: send the "
        "...-request.redacted.xml copies, and delete the traces once the helpdesk has them"
    )


def _who(niss: str | None, mutuality: str | None, member: str | None) -> str:
    return f"--niss {niss}" if niss else f"--mutuality {mutuality} --member-number {member}"


def _fallback_hint(patient: Any, day: date, who: str) -> str:
    from mcn_cli.actions.reuse import find_reusable

    try:
        found = find_reusable(patient, day, audit=False)  # a hint, not a reuse
    except Exception as error:  # the hint must never hide the real error
        return f"mcn fallback --no-network {who} --date {day} ({error})"
    if found.verdict.allowed and found.record is not None:
        consulted = found.record.consultation.consulted_at.astimezone().date()
        return Text.reuse_ok.format(consulted=consulted, date=day, who=who)
    return Text.reuse_no.format(reason=found.verdict.reason, who=who, date=day)


def consult(
    niss: NissOption = None,
    mutuality: MutualityOption = None,
    member_number: MemberOption = None,
    dispensed: Annotated[
        str | None, typer.Option("--date", "-d", help=Text.date_help, show_default=False)
    ] = None,
    session: Annotated[str, typer.Option("--session", "-s", help=Text.session_help)] = "default",
    reference: Annotated[
        str | None, typer.Option("--reference", help=Text.reference_help, show_default=False)
    ] = None,
    trace: Annotated[Path | None, typer.Option("--trace", help=Text.trace_help, show_default=False)] = None,
    json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False,
) -> None:
    """Consult a patient's rights."""
    from mcn_cli.actions.consult import consult as run_consult

    patient = patient_from(niss, mutuality, member_number)
    day = parse_date(dispensed, "date") if dispensed else date.today()
    who = _who(niss, mutuality, member_number)
    if trace is not None:
        sys.stderr.write(f"mcn: {Text.trace_warning}\n")
    try:
        result = run_consult(
            patient,
            day,
            session_name=session,
            user_reference=reference,
            trace=trace,
            notify=lambda message: sys.stderr.write(f"mcn: {message}\n"),
        )
    except ServiceUnavailable as error:
        error.hint = _fallback_hint(patient, day, who)
        raise
    consultation = result.consultation
    if json:
        emit_json(
            {
                "record": result.record,
                "outcome": result.outcome,
                **consultation_json(consultation, reveal=True),
                "return_code": None
                if result.answer.return_code is None
                else {
                    "major": result.answer.return_code.major,
                    "minor": result.answer.return_code.minor,
                    "detail": result.answer.return_code.detail,
                },
                "multiple_io": list(result.answer.multiple_io),
            }
        )
    else:
        emit_fields(rows(result))
    if result.outcome != "commitment":
        message = Text.outcomes[result.outcome].format(
            date=day, insurers=", ".join(result.answer.multiple_io)
        )
        raise NoCommitment(message, reason=result.outcome)


def rows(result: Any) -> list[tuple[str, object]]:
    return [*answer_rows(result.consultation), (Text.record, result.record)]


def answer_rows(c: Any) -> list[tuple[str, object]]:
    """What MyCareNet answered, as the pharmacist reads it."""
    r = c.care_receiver
    who = " ".join(p for p in (r.first_name, r.last_name) if p)
    identity = f"{who} ({r.niss})" if r.niss else who
    rows: list[tuple[str, object]] = [(Text.patient, identity or "-")]
    if r.birth_date:
        rows.append((Text.born, f"{r.birth_date}, {r.sex.value}"))
    if r.deceased:
        rows.append((Text.deceased, r.deceased))
    if r.mutuality:
        rows.append((Text.mutuality, f"{r.mutuality} / {r.member_number or '-'}"))
    commitment = c.commitment
    if commitment is not None:
        entitlement = str(commitment.entitlement) + (
            Text.increased if commitment.entitlement.increased else ""
        )
        cover = commitment.coverage
        template = Text.reusable if commitment.reusable else Text.never
        rows += [
            (Text.entitlement, entitlement),
            (Text.third_party, c.third_party.value if c.third_party else "-"),
            (Text.coverage, template.format(start=cover.start, end=cover.end)),
        ]
    if c.verification is not None:
        v = c.verification
        rows += [(Text.approval, v.payment_approval), (Text.seed, v.seed), (Text.ot_check, v.ot_check)]
    return rows
