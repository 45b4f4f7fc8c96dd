"""`mcn consult`: a patient's rights and payment commitment for a dispensing."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from mcn_cli.cli.i18n import _, day, render
from mcn_cli.cli.output import emit_fields, emit_json
from mcn_cli.cli.patient import MemberOption, MutualityOption, NissOption, SessionOption, patient_from
from mcn_cli.cli.records import consultation_json, regime_word, sex_word
from mcn_cli.cli.spinner import waiting
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import NoCommitment
from mcn_cli.domain.identifiers import insurer_name
from mcn_cli.domain.messages import N_, Message


class Text:
    """Human text of `mcn consult` (translate here)."""

    help = _(
        "Consult a patient's rights for a dispensing and get the payment commitment "
        "(one patient per call; the answer is kept in the encrypted cache and audited)."
    )
    date_help = _("Dispensing date: YYYY-MM-DD or DD/MM/YYYY (default: today).")
    reference_help = _("Your own reference for this request (at most 25 characters; returned by MyCareNet).")
    trace_help = _(
        "Write the request exactly as sent (its signature verifies; it holds the licence), a copy with "
        "the licence redacted (...-request.redacted.xml, the one to send) and the answer to this folder."
    )
    json_help = _("Print JSON.")
    patient = _("patient")
    born = _("born")
    born_value = _("{date}, {sex}")
    deceased = _("deceased")
    mutuality = _("mutuality")
    entitlement = _("CT1/CT2")
    increased = _("{codes} (increased reimbursement)")
    third_party = _("third-party payer")
    coverage = _("coverage")
    reusable = _("{start} → {end}; reusable up to {end} when the network is down")
    never = _("{start} → {end}; never reusable (ended before today)")
    approval = _("payment approval")
    seed = _("seed")
    ot_check = _("OT check code")
    record = _("cache record")
    waiting = _("Consulting MyCareNet…")
    trace_warning = _(
        "traces hold patient data, and each ...-request.xml the software licence: send the "
        "...-request.redacted.xml copies, and delete the traces once the helpdesk has them"
    )
    notice = _("mcn: {message}")


# Raised as errors: English source text (the JSON message), translated when shown.
OUTCOMES: dict[str, str] = {
    "no-right": N_("no right at {date}: no payment commitment"),
    "unknown": N_("the insurers do not know this patient: no payment commitment"),
    "multiple-insurers": N_("several insurers know the patient: {insurers}; no payment commitment"),
}
MULTIPLE_HINT = N_(
    "ask the patient which insurer is theirs and consult again with their mutuality and membership "
    "number: mcn consult --mutuality CODE --member-number NUMBER --date {date_arg}"
)
def _who(niss: str | None, mutuality: str | None, member: str | None) -> str:
    return f"--niss {niss}" if niss else f"--mutuality {mutuality} --member-number {member}"


def insurers(codes: Sequence[str]) -> Message:
    """The insurers of MultipleIO by name (``1`` → the union 100), translated when shown."""
    names: list[object] = []
    for code in codes:
        try:
            names.append(Message(insurer_name(code if len(code) == 3 else f"{code[:1]}00")))
        except (KeyError, IndexError):  # a code of no known union: say the code
            names.append(code)
    # one placeholder per name: each name is a message of its own (translated when shown)
    template = ", ".join(f"{{insurer{index}}}" for index in range(len(names)))
    return Message(template, {f"insurer{index}": name for index, name in enumerate(names)})


def _notice(message: object) -> str:
    text = render(message) if isinstance(message, Message) else str(message)
    return Text.notice.format(message=text)


def consult(
    niss: NissOption = None,
    mutuality: MutualityOption = None,
    member_number: MemberOption = None,
    dispensed: Annotated[
        str | None, typer.Option("--date", "-d", help=Text.date_help, show_default=False)
    ] = None,
    session: SessionOption = "default",
    reference: Annotated[
        str | None, typer.Option("--reference", help=Text.reference_help, show_default=False)
    ] = None,
    trace: Annotated[Path | None, typer.Option("--trace", help=Text.trace_help, show_default=False)] = None,
    json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False,
) -> None:
    """Consult a patient's rights."""
    from mcn_cli.actions.consult import consult as run_consult

    patient = patient_from(niss, mutuality, member_number)
    on = parse_date(dispensed, "date") if dispensed else date.today()
    if trace is not None:
        sys.stderr.write(Text.notice.format(message=Text.trace_warning) + "\n")
    with waiting(Text.waiting, enabled=not json) as spinner:  # a fault's hint comes with it
        result = run_consult(
            patient,
            on,
            session_name=session,
            user_reference=reference,
            trace=trace,
            notify=lambda message: spinner.say(_notice(message)),
        )
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
    if result.outcome == "multiple-insurers":
        raise NoCommitment(
            OUTCOMES[result.outcome],
            reason=result.outcome,
            hint=MULTIPLE_HINT,
            insurers=insurers(result.answer.multiple_io),
            date_arg=on.isoformat(),
        )
    if result.outcome != "commitment":
        raise NoCommitment(OUTCOMES[result.outcome], reason=result.outcome, date=on)


def rows(result: Any) -> list[tuple[str, object]]:
    return [*answer_rows(result.consultation), (Text.record, result.record)]


def answer_rows(c: Any) -> list[tuple[str, object]]:
    """What MyCareNet answered, as the pharmacist reads it."""
    r = c.care_receiver
    who = " ".join(p for p in (r.first_name, r.last_name) if p)
    identity = f"{who} ({r.niss})" if r.niss else who
    rows: list[tuple[str, object]] = [(Text.patient, identity or "-")]
    if r.birth_date:
        rows.append((Text.born, Text.born_value.format(date=day(r.birth_date), sex=sex_word(r.sex))))
    if r.deceased:
        rows.append((Text.deceased, r.deceased))
    if r.mutuality:
        rows.append((Text.mutuality, f"{r.mutuality} / {r.member_number or '-'}"))
    commitment = c.commitment
    if commitment is not None:
        entitlement = str(commitment.entitlement)
        if commitment.entitlement.increased:
            entitlement = Text.increased.format(codes=entitlement)
        cover = commitment.coverage
        template = Text.reusable if commitment.reusable else Text.never
        rows += [
            (Text.entitlement, entitlement),
            (Text.third_party, regime_word(c.third_party) if c.third_party else "-"),
            (Text.coverage, template.format(start=day(cover.start), end=day(cover.end))),
        ]
    if c.verification is not None:
        v = c.verification
        rows += [(Text.approval, v.payment_approval), (Text.seed, v.seed), (Text.ot_check, v.ot_check)]
    return rows
