"""`mcn coverage`: a payment commitment's coverage from insurability periods, and its reuse."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from mcn_cli.cli.i18n import _, day, ngettext
from mcn_cli.cli.output import emit_fields, emit_json
from mcn_cli.cli.records import reason_words
from mcn_cli.domain.commitment import InsurabilityPeriod, PaymentCommitment, commitment_for
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.identifiers import parse_entitlement
from mcn_cli.domain.messages import N_


class Text:
    """Human text of `mcn coverage` (translate here)."""

    help = _(
        "Work out a payment commitment's coverage and whether a later dispensing may reuse it.\n\n"
        "Example (brochure annex, example 6):\n\n"
        "mcn coverage --date 2011-12-25 --consulted 2011-12-25 "
        "--period 110/110:2011-01-01..2011-12-31 --period 110/110:2012-01-01..2012-12-31"
    )
    date_help = _("Dispensing date (the date sent in the request): YYYY-MM-DD or DD/MM/YYYY.")
    consulted_help = _("Consultation date (default: today).")
    period_help = _(
        "An insurability period CT1/CT2:START..END, e.g. 110/110:2011-01-01..2011-12-31 (repeat)."
    )
    max_days_help = _("Longest coverage after its start, in days (default: setting commitment_days, 30).")
    json_help = _("Print JSON.")
    title = _("Payment commitment")
    dispensed = _("dispensed")
    consulted = _("consulted")
    entitlement = _("CT1/CT2")
    increased = _("{codes} (increased reimbursement)")
    coverage = _("coverage")
    reuse = _("reuse")
    reuse_until = _("allowed for a dispensing up to {end}, only when the network cannot be reached")
    reuse_never = _("never: {reason}")


PERIOD_FORMAT = N_("expected CT1/CT2:START..END, got {value!r}")


def parse_period(value: str) -> InsurabilityPeriod:
    codes, sep, span = value.partition(":")
    start, dots, end = span.partition("..")
    if not sep or not dots:
        raise InvalidInput("period", "format", PERIOD_FORMAT, value=value)
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
        entitlement = Text.increased.format(codes=entitlement)
    cover = commitment.coverage
    if commitment.reusable:
        reuse = Text.reuse_until.format(end=day(cover.end))
    else:
        reason = commitment.reusable_for(commitment.dispensed).reason
        reuse = Text.reuse_never.format(reason=reason_words(reason))
    span = ngettext("{start} → {end} ({days} day)", "{start} → {end} ({days} days)", cover.days)
    return [
        (Text.dispensed, commitment.dispensed),
        (Text.consulted, commitment.consulted),
        (Text.entitlement, entitlement),
        (Text.coverage, span.format(start=day(cover.start), end=day(cover.end), days=cover.days)),
        (Text.reuse, reuse),
    ]


def coverage(
    dispensed: Annotated[str, typer.Option("--date", "-d", help=Text.date_help, show_default=False)],
    periods: Annotated[list[str], typer.Option("--period", "-p", help=Text.period_help, show_default=False)],
    consulted: Annotated[
        str | None, typer.Option("--consulted", "-c", help=Text.consulted_help, show_default=False)
    ] = None,
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
