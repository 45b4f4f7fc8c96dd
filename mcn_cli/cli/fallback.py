"""`mcn fallback`: the emergency decision flow of brochure 9.2."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, ClassVar

import typer

from mcn_cli.cli.output import emit_fields, emit_json, emit_line
from mcn_cli.cli.patient import MemberOption, MutualityOption, NissOption, patient_from
from mcn_cli.cli.records import consultation_rows
from mcn_cli.cli.reuse import reuse_json
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.fallback import Outcome, Question, decide


class Text:
    """Human text of `mcn fallback` (translate here)."""

    help = (
        "Walk the emergency flow (brochure 9.2) when the online consultation fails.\n\n"
        "Give answers as flags (for scripts); when stdin is a terminal, missing answers are asked. "
        "With --niss (or --mutuality and --member-number) and --date, steps 3 and 4 are answered "
        "from the local cache."
    )
    date_help = "Dispensing date for steps 3-4 from the cache (default: today)."
    from_cache = "steps 3-4 answered from the cache: {reason}"
    json_help = "Print JSON."
    questions: ClassVar[dict[Question, str]] = {
        Question.NETWORK: "Is the network available (did the online consultation answer)?",
        Question.KNOWN: "Is the patient known in the pharmacy's records?",
        Question.COVERED: "Is the dispensing date inside the coverage of a payment commitment found?",
        Question.CONFIDENT: "Are you confident enough (last known online consultation)?",
        Question.SIS_CARD: "Does the patient have a SIS card?",
        Question.DOCUMENT: "Does the patient have another document (e.g. a vignette)?",
        Question.DOCUMENT_CONFIDENT: "Are you confident enough with that document?",
    }
    outcomes: ClassVar[dict[Outcome, str]] = {
        Outcome.COMMITMENT: "payment commitment: compute with the online answer",
        Outcome.COMMITMENT_REUSE: "payment commitment (reuse): compute with the commitment covering the date",
        Outcome.BASIC_PRINCIPLE: "basic principle: compute with the last known online consultation",
        Outcome.SIS_COMMITMENT: "SIS commitment: compute with the SIS card",
        Outcome.BASIC_PRINCIPLE_DOCUMENT: "basic principle: compute with the document",
        Outcome.MODEL_704: "dispense on model 704 (annex 30 of the health-care regulation)",
    }
    reminder = "Record every online answer for later (mcn consult stores it)."
    outcome = "outcome"
    path = "path"
    missing = "answer needed for step {step}: give --{key} or --no-{key} (stdin is not a terminal)"


def fallback(
    network: Annotated[
        bool | None, typer.Option("--network/--no-network", help="2. Network available?")
    ] = None,
    known: Annotated[bool | None, typer.Option("--known/--no-known", help="3. Patient known?")] = None,
    covered: Annotated[
        bool | None, typer.Option("--covered/--no-covered", help="4. Date inside a commitment found?")
    ] = None,
    confident: Annotated[
        bool | None, typer.Option("--confident/--no-confident", help="5. Confident (last consultation)?")
    ] = None,
    sis_card: Annotated[bool | None, typer.Option("--sis-card/--no-sis-card", help="6. SIS card?")] = None,
    document: Annotated[
        bool | None, typer.Option("--document/--no-document", help="7. Another document?")
    ] = None,
    document_confident: Annotated[
        bool | None,
        typer.Option("--document-confident/--no-document-confident", help="8. Confident with the document?"),
    ] = None,
    niss: NissOption = None,
    mutuality: MutualityOption = None,
    member_number: MemberOption = None,
    dispensed: Annotated[
        str | None, typer.Option("--date", "-d", help=Text.date_help, show_default=False)
    ] = None,
    json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False,
) -> None:
    """Walk the emergency flow."""
    reuse = None
    if niss is not None or mutuality is not None or member_number is not None:
        from mcn_cli.actions.reuse import find_reusable

        patient = patient_from(niss, mutuality, member_number)
        day = parse_date(dispensed, "date") if dispensed else date.today()
        if network is not True and (known is None or covered is None):
            reuse = find_reusable(patient, day)
            known = reuse.known if known is None else known
            covered = reuse.verdict.allowed if covered is None else covered
    elif dispensed is not None:
        raise InvalidInput(
            "date", "needs-patient", "--date needs --niss, or --mutuality with --member-number"
        )
    given = {
        Question.NETWORK: network,
        Question.KNOWN: known,
        Question.COVERED: covered,
        Question.CONFIDENT: confident,
        Question.SIS_CARD: sis_card,
        Question.DOCUMENT: document,
        Question.DOCUMENT_CONFIDENT: document_confident,
    }
    interactive = sys.stdin.isatty()

    def answer(question: Question) -> bool:
        value = given[question]
        if value is not None:
            return value
        if not interactive:
            raise InvalidInput(
                question.value, "missing", Text.missing.format(step=question.step, key=question.value)
            )
        return typer.confirm(f"{question.step}. {Text.questions[question]}", err=True)

    decision = decide(answer)
    if json:
        emit_json(
            {
                "outcome": decision.outcome,
                "path": [
                    {"step": s.question.step, "question": s.question, "answer": s.answer}
                    for s in decision.path
                ],
                "reuse": reuse_json(reuse, reveal=False) if reuse else None,
            }
        )
        return
    emit_fields([(Text.outcome, Text.outcomes[decision.outcome])])
    emit_line(f"{Text.path}:")
    for step in decision.path:
        emit_line(f"  {step.question.step}. {Text.questions[step.question]} {'yes' if step.answer else 'no'}")
    if reuse is not None:
        emit_line(Text.from_cache.format(reason=reuse.verdict.reason))
        if reuse.verdict.allowed and reuse.record is not None:
            emit_fields(consultation_rows(reuse.record.consultation, reveal=False))
    emit_line(Text.reminder)
