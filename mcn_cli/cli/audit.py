"""`mcn audit`: check the audit trail and report on a month for the insurers' finality check."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from mcn_cli.cli.i18n import _, moment, ngettext, render
from mcn_cli.cli.output import emit_fields, emit_json, emit_line, emit_result, emit_table
from mcn_cli.domain.dates import parse_month
from mcn_cli.domain.errors import DataIntegrity
from mcn_cli.domain.messages import N_, Message


class Text:
    """Human text of `mcn audit` (translate here)."""

    help = _("The audit trail: who consulted which patient, when and why (keyed pseudonyms only).")
    verify_help = _("Check the chain of the audit trail: an edited, deleted or reordered entry is reported.")
    report_help = _("Set a month's consultations against invoiced dispensings; list those never invoiced.")
    month_help = _("The month (YYYY-MM) of the consultations.")
    json_help = _("Print JSON.")
    break_line = _("  entry {seq}: {problem}")
    empty = _("the audit trail is empty")
    title = _("Consultations of {month}")
    consultations = _("answered")
    invoiced = _("invoiced")
    never_invoiced = _("never invoiced")
    refused = _("refused or failed")
    ot = _("OT consultations")
    reuses = _("commitment reuses")
    list_title = _("Never invoiced:")
    headers = (_("ENTRY"), _("WHEN"), _("DISPENSED"), _("PATIENT"), _("RECORD"), _("OUTCOME"))


BROKEN = N_("audit trail broken from entry {first} (problems found: {count})")


def _intact(entries: int, head: str) -> str:
    text = ngettext("audit trail intact: {entries} entry, head {head}",
                    "audit trail intact: {entries} entries, head {head}", entries)
    return text.format(entries=entries, head=head)


def _local(at: str) -> str:
    """An entry's time (kept in UTC) in local time, as ``28/11/2026 14:05`` in French and Dutch."""
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return at[:16].replace("T", " ")
    return moment(when if when.tzinfo else when.replace(tzinfo=UTC))


def _date(text: str | None) -> object:
    try:
        return date.fromisoformat(text) if text else text
    except ValueError:
        return text


def _words(problem: object) -> str:
    """A problem found by verify, in the user's language when it is a message."""
    return render(problem) if isinstance(problem, Message) else str(problem)


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
                "breaks": [{"seq": b.seq, "problem": str(b.problem)} for b in result.breaks],
            }
        )
    elif result.intact:
        emit_line(_intact(result.entries, result.head))
    else:
        for item in result.breaks:
            emit_line(Text.break_line.format(seq=item.seq, problem=_words(item.problem)))
    if not result.intact:
        raise DataIntegrity(BROKEN, count=len(result.breaks), first=result.breaks[0].seq)


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
                (e.seq, _local(e.at), _date(e.dispensed), (e.patient or "")[:12], e.record, e.outcome)
                for e in result.never_invoiced
            ],
        )
