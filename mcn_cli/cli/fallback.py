"""`mcn fallback`: the emergency decision flow of brochure 9.2."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, Any, ClassVar

import typer

from mcn_cli.cli import i18n
from mcn_cli.cli.i18n import _
from mcn_cli.cli.output import emit_fields, emit_json, emit_line
from mcn_cli.cli.patient import MemberOption, MutualityOption, NissOption, patient_from
from mcn_cli.cli.records import consultation_rows, reason_words
from mcn_cli.cli.reuse import reuse_json
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.fallback import Outcome, Question, decide
from mcn_cli.domain.messages import N_


class Text:
    """Human text of `mcn fallback` (translate here)."""

    help = _(
        "Walk the emergency flow (brochure 9.2) when the online consultation fails.\n\n"
        "Give answers as flags (for scripts); when stdin is a terminal, missing answers are asked. "
        "With --niss (or --mutuality and --member-number) and --date, steps 3 and 4 are answered "
        "from the local cache."
    )
    date_help = _("Dispensing date for steps 3-4 from the cache (default: today).")
    from_cache = _("steps 3-4 answered from the cache: {reason}")
    json_help = _("Print JSON.")
    network_help = _("2. Network available?")
    known_help = _("3. Patient known?")
    covered_help = _("4. Date inside a commitment found?")
    confident_help = _("5. Confident (last consultation)?")
    sis_card_help = _("6. SIS card?")
    document_help = _("7. Another document?")
    document_confident_help = _("8. Confident with the document?")
    questions: ClassVar[dict[Question, str]] = {
        Question.NETWORK: _("Is the network available (did the online consultation answer)?"),
        Question.KNOWN: _("Is the patient known in the pharmacy's records?"),
        Question.COVERED: _("Is the dispensing date inside the coverage of a payment commitment found?"),
        Question.CONFIDENT: _("Are you confident enough (last known online consultation)?"),
        Question.SIS_CARD: _("Does the patient have a SIS card?"),
        Question.DOCUMENT: _("Does the patient have another document (e.g. a vignette)?"),
        Question.DOCUMENT_CONFIDENT: _("Are you confident enough with that document?"),
    }
    outcomes: ClassVar[dict[Outcome, str]] = {
        Outcome.COMMITMENT: _("payment commitment: compute with the online answer"),
        Outcome.COMMITMENT_REUSE: _(
            "payment commitment (reuse): compute with the commitment covering the date"
        ),
        Outcome.BASIC_PRINCIPLE: _("basic principle: compute with the last known online consultation"),
        Outcome.SIS_COMMITMENT: _("SIS commitment: compute with the SIS card"),
        Outcome.BASIC_PRINCIPLE_DOCUMENT: _("basic principle: compute with the document"),
        Outcome.MODEL_704: _("dispense on model 704 (annex 30 of the health-care regulation)"),
    }
    reminder = _("Record every online answer for later (mcn consult stores it).")
    outcome = _("outcome")
    path = _("path:")
    step = _("  {step}. {question} {answer}")
    question = _("{step}. {question}")
    yes = _("yes")
    no = _("no")


MISSING = N_("answer needed for step {step}: give --{key} or --no-{key} (stdin is not a terminal)")
NEEDS_PATIENT = N_("--date needs --niss, or --mutuality with --member-number")


def fallback(
    network: Annotated[
        bool | None, typer.Option("--network/--no-network", help=Text.network_help, show_default=False)
    ] = None,
    known: Annotated[
        bool | None, typer.Option("--known/--no-known", help=Text.known_help, show_default=False)
    ] = None,
    covered: Annotated[
        bool | None, typer.Option("--covered/--no-covered", help=Text.covered_help, show_default=False)
    ] = None,
    confident: Annotated[
        bool | None,
        typer.Option("--confident/--no-confident", help=Text.confident_help, show_default=False),
    ] = None,
    sis_card: Annotated[
        bool | None, typer.Option("--sis-card/--no-sis-card", help=Text.sis_card_help, show_default=False)
    ] = None,
    document: Annotated[
        bool | None, typer.Option("--document/--no-document", help=Text.document_help, show_default=False)
    ] = None,
    document_confident: Annotated[
        bool | None,
        typer.Option(
            "--document-confident/--no-document-confident",
            help=Text.document_confident_help,
            show_default=False,
        ),
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
    patient = None
    on = date.today()
    if niss is not None or mutuality is not None or member_number is not None:
        patient = patient_from(niss, mutuality, member_number)
        on = parse_date(dispensed, "date") if dispensed else on
    elif dispensed is not None:
        raise InvalidInput("date", "needs-patient", NEEDS_PATIENT)
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
    looked_up: list[Any] = []  # the cache's answer, once steps 3-4 are reached

    def from_cache(question: Question) -> bool | None:
        """Steps 3 and 4 from the cache when the patient is given (asked of nobody)."""
        if patient is None or question not in (Question.KNOWN, Question.COVERED):
            return None
        if not looked_up:
            from mcn_cli.actions.reuse import find_reusable

            looked_up.append(find_reusable(patient, on))
        found = looked_up[0]
        return found.known if question is Question.KNOWN else found.verdict.allowed

    def answer(question: Question) -> bool:
        value = given[question]
        if value is None:
            value = from_cache(question)
        if value is not None:
            return value
        if not interactive:
            raise InvalidInput(question.value, "missing", MISSING, step=question.step, key=question.value)
        return i18n.confirm(Text.question.format(step=question.step, question=Text.questions[question]))

    decision = decide(answer)
    reuse = looked_up[0] if looked_up else None
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
    emit_line(Text.path)
    for step in decision.path:
        emit_line(
            Text.step.format(
                step=step.question.step,
                question=Text.questions[step.question],
                answer=Text.yes if step.answer else Text.no,
            )
        )
    if reuse is not None:
        emit_line(Text.from_cache.format(reason=reason_words(reuse.verdict.reason)))
        if reuse.verdict.allowed and reuse.record is not None:
            emit_fields(consultation_rows(reuse.record.consultation, reveal=False))
    emit_line(Text.reminder)
