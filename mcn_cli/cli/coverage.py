"""`mcn coverage`: a payment commitment's coverage from insurability periods, and its reuse."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from mcn_cli.cli.output import emit_fields, emit_json
from mcn_cli.domain.commitment import InsurabilityPeriod, PaymentCommitment, commitment_for
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.identifiers import parse_entitlement


class Text:
    """Human text of `mcn coverage` (translate here)."""

    help = (
        "Work out a payment commitment's coverage and whether a later dispensing may reuse it.\n\n"
        "Example (brochure annex, example 6):\n\n"
        "mcn coverage --date 2011-12-25 --consulted 2011-12-25 "
        "--period 110/110:2011-01-01..2011-12-31 --period 110/110:2012-01-01..2012-12-31"
    )
    date_help = "Dispensing date (the date sent in the request): YYYY-MM-DD or DD/MM/YYYY."
    consulted_help = "Consultation date (default: today)."
    period_help = "An insurability period CT1/CT2:START..END, e.g. 110/110:2011-01-01..2011-12-31 (repeat)."
    max_days_help = "Longest coverage after its start, in days (default: setting commitment_days, 30)."
    json_help = "Print JSON."
    title = "Payment commitment"
    dispensed = "dispensed"
    consulted = "consulted"
    entitlement = "CT1/CT2"
    increased = " (increased reimbursement)"
    coverage = "coverage"
    days = "{start} → {end} ({days} days)"
    reuse = "reuse"
    reuse_until = "allowed for a dispensing up to {end}, only when the network cannot be reached"
    reuse_never = "never: {reason}"


def parse_period(value: str) -> InsurabilityPeriod:
    codes, sep, span = value.partition(":")
    start, dots, end = span.partition("..")
    if not sep or not dots:
        raise InvalidInput("period", "format", f"expected CT1/CT2:START..END, got {value!r}")
    return InsurabilityPeriod(
        parse_entitlement(codes, "period"),
        parse_date(start, "period start"),
        parse_date(end, "period end"),
    )


def commitment_json(commitment: PaymentCommitment) -> dict[str, Any]:
    return {
        "dispensed": commitment.dispensed,
        "consulted": commitment.consulted,
        "entitlement": {
            "ct1": commitment.entitlement.ct1,
            "ct2": commitment.entitlement.ct2,
            "increased": commitment.entitlement.increased,
        },
        "coverage": {
            "start": commitment.coverage.start,
            "end": commitment.coverage.end,
            "days": commitment.coverage.days,
        },
        "reusable": commitment.reusable,
        "reusable_until": commitment.reusable_until,
        "reason": None if commitment.reusable else commitment.reusable_for(commitment.dispensed).reason,
    }


def commitment_rows(commitment: PaymentCommitment) -> list[tuple[str, object]]:
    entitlement = str(commitment.entitlement)
    if commitment.entitlement.increased:
        entitlement += Text.increased
    cover = commitment.coverage
    if commitment.reusable:
        reuse = Text.reuse_until.format(end=cover.end)
    else:
        reuse = Text.reuse_never.format(reason=commitment.reusable_for(commitment.dispensed).reason)
    return [
        (Text.dispensed, commitment.dispensed),
        (Text.consulted, commitment.consulted),
        (Text.entitlement, entitlement),
        (Text.coverage, Text.days.format(start=cover.start, end=cover.end, days=cover.days)),
        (Text.reuse, reuse),
    ]


def coverage(
    dispensed: Annotated[str, typer.Option("--date", "-d", help=Text.date_help, show_default=False)],
    periods: Annotated[list[str], typer.Option("--period", "-p", help=Text.period_help, show_default=False)],
    consulted: Annotated[str | None, typer.Option("--consulted", "-c", help=Text.consulted_help)] = None,
    max_days: Annotated[
        int | None, typer.Option("--max-days", help=Text.max_days_help, show_default=False)
    ] = None,
    json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False,
) -> None:
    """Work out a payment commitment's coverage and its reuse."""
    from mcn_cli.store.settings import load

    day = parse_date(dispensed, "date")
    consulted_on = parse_date(consulted, "consulted") if consulted else date.today()
    parsed = [parse_period(p) for p in periods]
    days = max_days if max_days is not None else load().commitment_days
    commitment = commitment_for(day, consulted_on, parsed, days)
    if json:
        emit_json({**commitment_json(commitment), "max_days": days})
    else:
        emit_fields(commitment_rows(commitment), Text.title)
