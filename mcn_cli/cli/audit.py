"""`mcn audit`: check the audit trail and report on a month for the insurers' finality check."""

from __future__ import annotations

from typing import Annotated

import typer

from mcn_cli.cli.output import emit_fields, emit_json, emit_line, emit_result, emit_table
from mcn_cli.domain.dates import parse_month
from mcn_cli.domain.errors import DataIntegrity


class Text:
    """Human text of `mcn audit` (translate here)."""

    help = "The audit trail: who consulted which patient, when and why (keyed pseudonyms only)."
    verify_help = "Check the chain of the audit trail: an edited, deleted or reordered entry is reported."
    report_help = "Set a month's consultations against invoiced dispensings; list those never invoiced."
    month_help = "The month (YYYY-MM) of the consultations."
    json_help = "Print JSON."
    intact = "audit trail intact: {entries} entries, head {head}"
    broken = "audit trail broken at {count} entries (first at entry {first})"
    break_line = "  entry {seq}: {problem}"
    empty = "the audit trail is empty"
    title = "Consultations of {month}"
    consultations = "answered"
    invoiced = "invoiced"
    never_invoiced = "never invoiced"
    refused = "refused or failed"
    ot = "OT consultations"
    reuses = "commitment reuses"
    list_title = "Never invoiced:"
    headers = ("ENTRY", "WHEN (UTC)", "DISPENSED", "PATIENT", "RECORD", "OUTCOME")


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]


@app.command("verify", help=Text.verify_help)
def verify(json: Json = False) -> None:
    from mcn_cli.actions.local import cache_if_initialised
    from mcn_cli.store import audit

    cache = cache_if_initialised()
    if cache is None:
        emit_result(json, {"intact": True, "entries": 0, "head": audit.GENESIS, "breaks": []}, Text.empty)
        return
    result = audit.verify(cache.vault, cache.db.connection)
    if json:
        emit_json(
            {
                "intact": result.intact,
                "entries": result.entries,
                "head": result.head,
                "breaks": [{"seq": b.seq, "problem": b.problem} for b in result.breaks],
            }
        )
    elif result.intact:
        emit_line(Text.intact.format(entries=result.entries, head=result.head))
    else:
        for item in result.breaks:
            emit_line(Text.break_line.format(seq=item.seq, problem=item.problem))
    if not result.intact:
        raise DataIntegrity(Text.broken.format(count=len(result.breaks), first=result.breaks[0].seq))


@app.command("report", help=Text.report_help)
def report(
    month: Annotated[str, typer.Option("--month", help=Text.month_help, show_default=False)],
    json: Json = False,
) -> None:
    from mcn_cli.actions.audit_report import month_report
    from mcn_cli.actions.local import cache_if_initialised

    year, number = parse_month(month)
    label = f"{year:04d}-{number:02d}"
    cache = cache_if_initialised()
    if cache is None:
        empty = {
            "month": label,
            "answered": 0,
            "invoiced": 0,
            "never_invoiced": [],
            "refused_or_failed": 0,
            "ot_consultations": 0,
            "reuses": 0,
        }
        emit_result(json, empty, Text.empty)
        return
    result = month_report(cache, label)

    from mcn_cli.store import audit

    def entry(e) -> dict[str, object]:  # noqa: ANN001
        user = audit.actor_niss(cache.vault, cache.db.connection, e.actor) if e.actor else None
        return {
            "user": user,
            "seq": e.seq,
            "at": e.at,
            "dispensed": e.dispensed,
            "patient": e.patient,
            "record": e.record,
            "pharmacy": e.pharmacy,
            "actor": e.actor,
            "outcome": e.outcome,
        }

    if json:
        emit_json(
            {
                "month": label,
                "answered": len(result.consultations),
                "invoiced": len(result.invoiced),
                "never_invoiced": [entry(e) for e in result.never_invoiced],
                "refused_or_failed": len(result.refused_or_failed),
                "ot_consultations": len(result.ot_consultations),
                "reuses": len(result.reuses),
            }
        )
        return
    emit_fields(
        [
            (Text.consultations, len(result.consultations)),
            (Text.invoiced, len(result.invoiced)),
            (Text.never_invoiced, len(result.never_invoiced)),
            (Text.refused, len(result.refused_or_failed)),
            (Text.ot, len(result.ot_consultations)),
            (Text.reuses, len(result.reuses)),
        ],
        Text.title.format(month=label),
    )
    if result.never_invoiced:
        emit_line(Text.list_title)
        emit_table(
            Text.headers,
            [
                (e.seq, e.at[:16].replace("T", " "), e.dispensed, (e.patient or "")[:12], e.record, e.outcome)
                for e in result.never_invoiced
            ],
        )
