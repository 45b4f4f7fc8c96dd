"""The finality check (brochure 7.3): consultations of a month set against invoiced dispensings."""

from __future__ import annotations

from dataclasses import dataclass

from mcn_cli.store import audit
from mcn_cli.store.audit import AuditEntry, Event
from mcn_cli.store.cache import CommitmentCache


@dataclass(frozen=True)
class MonthReport:
    month: str
    consultations: tuple[AuditEntry, ...]  # answered consultations of the month
    invoiced: tuple[AuditEntry, ...]  # of those, the ones that went on an invoice
    never_invoiced: tuple[AuditEntry, ...]
    refused_or_failed: tuple[AuditEntry, ...]
    ot_consultations: tuple[AuditEntry, ...]
    reuses: tuple[AuditEntry, ...]


def month_report(cache: CommitmentCache, month: str) -> MonthReport:
    everything = list(audit.entries(cache.db.connection))
    invoiced_records = {e.record for e in everything if e.event == Event.INVOICED}
    of_month = [e for e in everything if e.month == month]
    answered = [e for e in of_month if e.event == Event.CONSULTATION and e.record]
    return MonthReport(
        month=month,
        consultations=tuple(answered),
        invoiced=tuple(e for e in answered if e.record in invoiced_records),
        never_invoiced=tuple(e for e in answered if e.record not in invoiced_records),
        refused_or_failed=tuple(e for e in of_month if e.event == Event.CONSULTATION and not e.record),
        ot_consultations=tuple(e for e in of_month if e.event == Event.OT_CONSULTATION),
        reuses=tuple(e for e in of_month if e.event == Event.REUSE),
    )
