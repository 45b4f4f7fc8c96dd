"""Tarification offices (brochure 8.2.2.7): consult only for an invoice rejected because the
insurability data were wrong, never store or reuse the answer. One at a time or in batches."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mcn_cli.actions.batch_input import COLUMNS as COLUMNS
from mcn_cli.actions.batch_input import Row
from mcn_cli.actions.consult import (
    Channel,
    ask,
    no_session,
    open_channel,
    outcome_of,
    session_cache,
    validate,
    with_next_step,
)
from mcn_cli.actions.login import login_command
from mcn_cli.domain.consultation import PatientId
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import (
    AuthenticationNeeded,
    InvalidInput,
    McnError,
    PolicyRefused,
    ServiceUnavailable,
)
from mcn_cli.domain.identifiers import (
    Member,
    parse_membership_number,
    parse_mutuality,
    parse_niss,
    parse_pharmacy_nihii,
)
from mcn_cli.domain.messages import N_
from mcn_cli.domain.text import check_text
from mcn_cli.ehealth.insurability import Answer, Requester
from mcn_cli.store import sessions
from mcn_cli.store.audit import Actor, Event
from mcn_cli.store.cache import CommitmentCache
from mcn_cli.store.settings import Settings, load

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
            N_(
                "refused: a tarification office consults only for a rejected invoice: "
                "give its rejection reference (brochure 8.2.2.7)"
            )
        )
    # the XSD's UserReferenceType (maxLength 25); no control character (nor in XML, nor on a screen)
    return check_text("rejection", text, max_length=REJECTION_MAX)


def check_rejection_code(code: str | None) -> str | None:
    """The batch's rejection_code cell: only echoed in the results, but checked as it enters."""
    text = (code or "").strip()
    return check_text("rejection_code", text, max_length=REJECTION_CODE_MAX) or None


def office_session(cache: CommitmentCache, name: str) -> sessions.Session:
    """The office's session ``name``; without one, the hint is the office's login (its
    organisation keystore alone), not a pharmacist's."""
    try:
        session = sessions.require(cache.db, cache.vault, name)
    except AuthenticationNeeded:
        raise no_session(name, office=True) from None
    if session.kind != "ot":
        raise PolicyRefused(
            N_(
                "refused: mcn ot needs a tarification office's session (NIHII-OTD_PHARMACY); "
                "a pharmacy consults with mcn consult"
            ),
            hint=N_("an office logs in with its organisation keystore alone: {command}"),
            command=login_command(name, office=True),
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
    cache = session_cache(session_name, office=True)
    session = office_session(cache, session_name)
    channel = open_channel(session, Requester(item.pharmacy, office=session.organisation), settings, None)
    try:
        answer, _ = ask(channel, item.patient, item.dispensed, item.reference)
    except McnError as error:
        if isinstance(error, ServiceUnavailable):
            with_next_step(error, item.patient, item.dispensed, office=True)
        _audit(cache, session, item, f"failed: {error}")
        raise
    outcome = outcome_of(answer)
    _audit(cache, session, item, outcome)
    return OtResult(item, answer, outcome)


# --- batches -----------------------------------------------------------------------------------

DEFAULT_MAX_FAILURES = 5  # consecutive service failures that stop a batch


class RequestFailed(McnError):
    """A request that failed outside mcn's own error types (a trace folder, a bug): exit 1."""


@dataclass(frozen=True)
class RowResult:
    row: int  # the line number in the file (the header is line 1)
    values: dict[str, str]
    result: OtResult | None = None
    error: McnError | None = None
    extra: dict[str, str] = field(default_factory=dict)
    sent: bool = False  # the request left the machine (and is audited)


def _patient(values: dict[str, str]) -> PatientId:
    niss = (values.get("niss") or "").strip()
    mutuality = (values.get("mutuality") or "").strip()
    member = (values.get("member_number") or "").strip()
    if niss:
        if mutuality or member:
            raise InvalidInput(
                "patient", "one-identifier", N_("give niss or mutuality + member_number, not both")
            )
        return parse_niss(niss)
    if not mutuality or not member:
        raise InvalidInput("patient", "missing", N_("give niss, or mutuality with member_number"))
    return Member(parse_mutuality(mutuality), parse_membership_number(member, "member_number"))


def parse_row(values: dict[str, str]) -> Rejection:
    reference = check_rejection(values.get("rejection"))
    pharmacy = (values.get("pharmacy") or "").strip()
    item = Rejection(
        reference=reference,
        patient=_patient(values),
        dispensed=parse_date((values.get("date") or "").strip(), "date"),
        pharmacy=parse_pharmacy_nihii(pharmacy, "pharmacy").value if pharmacy else None,
        code=check_rejection_code(values.get("rejection_code")),
    )
    validate(item.dispensed, item.reference, "rejection")
    return item


def is_service_failure(error: McnError) -> bool:
    """A failure the next request would most likely meet too (counted for ``max_failures``)."""
    return isinstance(error, ServiceUnavailable | AuthenticationNeeded | RequestFailed)


@dataclass
class BatchRun:
    """What a batch did: ``stopped`` is None (every row read), "interrupted" or "failures"."""

    emitted: int = 0
    sent: int = 0
    stopped: str | None = None


@dataclass
class _Slot:
    row: Row
    item: Rejection | None = None
    future: Future[Any] | None = None
    result: RowResult | None = None


def batch(
    rows: Iterable[Row],
    emit: Callable[[RowResult], None],
    *,
    session_name: str = sessions.DEFAULT,
    settings: Settings | None = None,
    workers: int = 4,
    max_failures: int = DEFAULT_MAX_FAILURES,
    stop: threading.Event | None = None,
    window: int | None = None,
) -> BatchRun:
    """Every row, streamed: read, sent ``workers`` at a time and handed to ``emit`` in input order
    as soon as known (at most ``window`` rows held). A malformed row fails alone. When ``stop`` is
    set (a signal) or ``max_failures`` service failures come in a row, nothing more is sent; the
    requests in flight are awaited, audited and emitted. Whatever happens (an exception from
    ``emit`` too), every request that left is audited before this returns or raises."""
    settings = settings or load()
    stop = stop or threading.Event()
    cache = session_cache(session_name, office=True)
    session = office_session(cache, session_name)
    window = max(window or workers * 8, workers)
    channels: dict[str | None, Channel] = {}
    local = threading.local()
    run = BatchRun()

    def http() -> Any:
        if not hasattr(local, "session"):  # one kept-alive connection per worker thread
            from mcn_cli.ehealth import transport

            local.session = transport.Connections()
        return local.session

    def work(channel: Channel, item: Rejection) -> tuple[Answer, str] | BaseException:
        try:
            return ask(channel, item.patient, item.dispensed, item.reference, http=http())
        except BaseException as error:  # reported (and audited) by the main thread
            return error

    def finish(slot: _Slot) -> RowResult:
        """The answer of a request that left, audited (main thread: the database's)."""
        assert slot.future is not None and slot.item is not None
        outcome = slot.future.result()
        row, item = slot.row, slot.item
        if isinstance(outcome, BaseException):
            if isinstance(outcome, ServiceUnavailable):
                with_next_step(outcome, item.patient, item.dispensed, office=True)
            error = (
                outcome
                if isinstance(outcome, McnError)
                else RequestFailed(
                    N_("internal error: {kind}: {problem}"), kind=type(outcome).__name__, problem=str(outcome)
                )
            )
            _audit(cache, session, item, f"failed: {error}")
            result = RowResult(row.line, row.values, error=error, extra=row.extra, sent=True)
        else:
            answer, _ = outcome
            status = outcome_of(answer)
            _audit(cache, session, item, status)
            result = RowResult(
                row.line, row.values, OtResult(item, answer, status), extra=row.extra, sent=True
            )
        run.sent += 1
        slot.result = result
        return result

    pending: deque[_Slot] = deque()
    in_flight: set[Future[Any]] = set()
    slots: dict[Future[Any], _Slot] = {}
    failures = 0
    source = iter(rows)
    exhausted = False
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        while True:
            while (
                not exhausted
                and run.stopped is None
                and not stop.is_set()
                and len(in_flight) < workers
                and len(pending) < window
            ):
                row = next(source, None)
                if row is None:
                    exhausted = True
                    break
                slot = _Slot(row)
                pending.append(slot)
                try:
                    if row.error is not None:
                        raise row.error
                    slot.item = parse_row(row.values)
                except McnError as error:
                    slot.result = RowResult(row.line, row.values, error=error, extra=row.extra)
                    if isinstance(error, PolicyRefused):
                        _audit_refusal(cache, session, row.values, row.line)
                    continue
                if slot.item.pharmacy not in channels:
                    requester = Requester(slot.item.pharmacy, office=session.organisation)
                    channels[slot.item.pharmacy] = open_channel(session, requester, settings, None)
                slot.future = pool.submit(work, channels[slot.item.pharmacy], slot.item)
                in_flight.add(slot.future)
                slots[slot.future] = slot
            for future in [f for f in in_flight if f.done()]:
                in_flight.discard(future)
                result = finish(slots.pop(future))
                assert result.error is None or isinstance(result.error, McnError)
                if result.error is not None and is_service_failure(result.error):
                    failures += 1
                    if failures >= max_failures and run.stopped is None:
                        run.stopped = "failures"
                elif result.result is not None:
                    failures = 0
            while pending and pending[0].result is not None:
                done = pending.popleft().result
                assert done is not None
                emit(done)
                run.emitted += 1
            if stop.is_set() and run.stopped is None:
                run.stopped = "interrupted"
            if not pending and (exhausted or run.stopped is not None):
                return run
            if in_flight:
                wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
    finally:
        # an exception (or a second signal) on the way: the requests that left are still audited
        failure: BaseException | None = None
        for future in list(in_flight):
            slot = slots.pop(future)
            future.result()  # wait for its answer (bounded by the request's timeout)
            if slot.result is None:
                try:
                    finish(slot)
                except BaseException as error:  # audit the others all the same
                    failure = failure or error
        pool.shutdown(wait=True, cancel_futures=True)
        if failure is not None:
            raise failure


def _audit_refusal(
    cache: CommitmentCache, session: sessions.Session, values: dict[str, str], row: int
) -> None:
    cache.record_event(
        Event.OT_CONSULTATION,
        f"refused: row {row} has no rejection reference",
        actor=Actor(None, session.organisation),
    )
