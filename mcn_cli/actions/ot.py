"""Tarification offices (brochure 8.2.2.7): consult only for an invoice rejected because the
insurability data were wrong, never store or reuse the answer. One at a time or in batches."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mcn_cli.actions.consult import Channel, ask, open_channel, outcome_of, session_cache, validate
from mcn_cli.domain.consultation import PatientId
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import InvalidInput, McnError, PolicyRefused
from mcn_cli.domain.identifiers import (
    Member,
    parse_membership_number,
    parse_mutuality,
    parse_niss,
    parse_pharmacy_nihii,
)
from mcn_cli.domain.text import check_text
from mcn_cli.ehealth.insurability import Answer, Requester
from mcn_cli.store import sessions
from mcn_cli.store.audit import Actor, Event
from mcn_cli.store.cache import CommitmentCache
from mcn_cli.store.settings import Settings, load

COLUMNS = ("rejection", "pharmacy", "niss", "mutuality", "member_number", "date", "rejection_code")
REJECTION_MAX = 25  # the reference travels as the request's UserReference
REJECTION_CODE_MAX = 64  # not sent anywhere: a bound for free text, as a name in a certificate


@dataclass(frozen=True)
class Rejection:
    """One rejected invoice line to check."""

    reference: str
    patient: PatientId
    dispensed: date
    pharmacy: str | None = None
    code: str | None = None


def check_rejection(reference: str | None) -> str:
    text = (reference or "").strip()
    if not text:
        raise PolicyRefused(
            "refused: a tarification office consults only for a rejected invoice: "
            "give its rejection reference (brochure 8.2.2.7)"
        )
    # the XSD's UserReferenceType (maxLength 25); no control character (nor in XML, nor on a screen)
    return check_text("rejection", text, max_length=REJECTION_MAX)


def check_rejection_code(code: str | None) -> str | None:
    """The batch's rejection_code cell: only echoed in the results, but checked as it enters."""
    text = (code or "").strip()
    return check_text("rejection_code", text, max_length=REJECTION_CODE_MAX) or None


def office_session(cache: CommitmentCache, name: str) -> sessions.Session:
    session = sessions.require(cache.db, cache.vault, name)
    if session.kind != "ot":
        raise PolicyRefused(
            "refused: mcn ot needs a tarification office's session (NIHII-OTD_PHARMACY); "
            "a pharmacy consults with mcn consult"
        )
    return session


@dataclass(frozen=True)
class OtResult:
    rejection: Rejection
    answer: Answer
    outcome: str


def _audit(cache: CommitmentCache, session: sessions.Session, item: Rejection, outcome: str) -> None:
    cache.record_event(
        Event.OT_CONSULTATION,
        outcome,
        actor=Actor(None, session.organisation),
        patient=item.patient,
        dispensed=item.dispensed,
        rejection=item.reference,
    )


def consult(
    item: Rejection, *, session_name: str = sessions.DEFAULT, settings: Settings | None = None
) -> OtResult:
    """One rejection: the answer is returned and audited, never stored."""
    settings = settings or load()
    check_rejection(item.reference)
    validate(item.dispensed, item.reference, "rejection")
    cache = session_cache(session_name)
    session = office_session(cache, session_name)
    channel = open_channel(session, Requester(item.pharmacy, office=session.organisation), settings, None)
    try:
        answer, _ = ask(channel, item.patient, item.dispensed, item.reference)
    except McnError as error:
        _audit(cache, session, item, f"failed: {error}")
        raise
    outcome = outcome_of(answer)
    _audit(cache, session, item, outcome)
    return OtResult(item, answer, outcome)


# --- batches -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowResult:
    row: int  # the line number in the file (the header is line 1)
    values: dict[str, str]
    result: OtResult | None = None
    error: McnError | None = None


def _patient(values: dict[str, str]) -> PatientId:
    niss = (values.get("niss") or "").strip()
    mutuality = (values.get("mutuality") or "").strip()
    member = (values.get("member_number") or "").strip()
    if niss:
        if mutuality or member:
            raise InvalidInput(
                "patient", "one-identifier", "give niss or mutuality + member_number, not both"
            )
        return parse_niss(niss)
    if not mutuality or not member:
        raise InvalidInput("patient", "missing", "give niss, or mutuality with member_number")
    return Member(parse_mutuality(mutuality), parse_membership_number(member, "member_number"))


def parse_row(values: dict[str, str]) -> Rejection:
    reference = check_rejection(values.get("rejection"))
    pharmacy = (values.get("pharmacy") or "").strip()
    item = Rejection(
        reference=reference,
        patient=_patient(values),
        dispensed=parse_date(values.get("date") or "", "date"),
        pharmacy=parse_pharmacy_nihii(pharmacy, "pharmacy").value if pharmacy else None,
        code=check_rejection_code(values.get("rejection_code")),
    )
    validate(item.dispensed, item.reference, "rejection")
    return item


def read_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("rejection", "date") if c not in header]
    if missing or not ({"niss"} <= set(header) or {"mutuality", "member_number"} <= set(header)):
        raise InvalidInput(
            "file",
            "header",
            f"the first line must name the columns: {','.join(COLUMNS)} "
            f"(missing {', '.join(missing) or 'niss'})",
        )
    reader.fieldnames = header
    for values in reader:
        yield reader.line_num, {k: (v or "") for k, v in values.items() if k is not None}


@dataclass
class BatchReport:
    results: list[RowResult] = field(default_factory=list)

    @property
    def failed(self) -> list[RowResult]:
        return [r for r in self.results if r.error is not None]


def batch(
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    session_name: str = sessions.DEFAULT,
    settings: Settings | None = None,
    workers: int = 4,
    progress: Callable[[int], None] = lambda done: None,
) -> BatchReport:
    """Every row, ``workers`` at a time; a failing row is reported and the others go on."""
    settings = settings or load()
    cache = session_cache(session_name)
    session = office_session(cache, session_name)
    report = BatchReport()
    pending: list[tuple[int, dict[str, str], Rejection]] = []
    for row, values in rows:
        try:
            pending.append((row, values, parse_row(values)))
        except McnError as error:
            report.results.append(RowResult(row, values, error=error))
            if isinstance(error, PolicyRefused):
                _audit_refusal(cache, session, values, row)
    progress(len(report.results))
    channels: dict[str | None, Channel] = {}
    local = threading.local()

    def http() -> Any:
        if not hasattr(local, "session"):  # one kept-alive connection per worker thread
            from mcn_cli.ehealth import transport

            local.session = transport.Connections()
        return local.session

    def work(item: Rejection) -> tuple[Answer, str]:
        channel = channels[item.pharmacy]
        return ask(channel, item.patient, item.dispensed, item.reference, http=http())

    for item in {p[2].pharmacy for p in pending}:
        channels[item] = open_channel(session, Requester(item, office=session.organisation), settings, None)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(work, item): (row, values, item) for row, values, item in pending}
        for future in as_completed(futures):
            row, values, item = futures[future]
            try:
                answer, _ = future.result()
            except McnError as error:
                _audit(cache, session, item, f"failed: {error}")
                report.results.append(RowResult(row, values, error=error))
            else:
                outcome = outcome_of(answer)
                _audit(cache, session, item, outcome)
                report.results.append(RowResult(row, values, OtResult(item, answer, outcome)))
            progress(len(report.results))
    report.results.sort(key=lambda r: r.row)
    return report


def _audit_refusal(
    cache: CommitmentCache, session: sessions.Session, values: dict[str, str], row: int
) -> None:
    cache.record_event(
        Event.OT_CONSULTATION,
        f"refused: row {row} has no rejection reference",
        actor=Actor(None, session.organisation),
    )
