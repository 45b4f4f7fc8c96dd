"""`mcn billing`: move cached records along the billing lifecycle (open → invoiced → settled)."""

from __future__ import annotations

from typing import Annotated

import typer

from mcn_cli.cli.i18n import _, ngettext
from mcn_cli.cli.output import emit_result
from mcn_cli.domain.dates import parse_month
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_


class Text:
    """Human text of `mcn billing` (translate here)."""

    help = _("The billing lifecycle of cached records: open → invoiced → settled (then deleted).")
    invoice_help = _("Mark open records as invoiced: they went on the monthly OTFS invoice.")
    settle_help = _(
        "Settle invoiced records (accepted, or their rejections handled): they are deleted at once, "
        "the audit trail keeps that they were."
    )
    month_help = _("Every record dispensed in this month (YYYY-MM).")
    record_help = _("One record id (repeat for several).")
    json_help = _("Print JSON.")


WHICH = N_("give --month YYYY-MM or --record ID, not both")


def _done(action: str, count: int) -> str:
    if action == "invoiced":
        text = ngettext("{count} record marked invoiced", "{count} records marked invoiced", count)
    else:
        text = ngettext("{count} record settled and deleted", "{count} records settled and deleted", count)
    return text.format(count=count)


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
Month = Annotated[str | None, typer.Option("--month", help=Text.month_help, show_default=False)]
Records = Annotated[list[str] | None, typer.Option("--record", help=Text.record_help, show_default=False)]
Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]


def _selection(month: str | None, records: list[str] | None) -> tuple[tuple[int, int] | None, list[str]]:
    if (month is None) == (not records):
        raise InvalidInput("billing", "selection", WHICH)
    return (parse_month(month) if month else None), [r.strip() for r in records or []]


def _move(action: str, month: str | None, record: list[str] | None, json: bool) -> None:
    from mcn_cli.actions.local import open_cache

    chosen_month, ids = _selection(month, record)
    cache = open_cache(create=False)
    count = cache.invoice(chosen_month, ids) if action == "invoiced" else cache.settle(chosen_month, ids)
    emit_result(json, {action: count}, _done(action, count))


@app.command("invoice", help=Text.invoice_help)
def invoice(month: Month = None, record: Records = None, json: Json = False) -> None:
    _move("invoiced", month, record, json)


@app.command("settle", help=Text.settle_help)
def settle(month: Month = None, record: Records = None, json: Json = False) -> None:
    _move("settled", month, record, json)
