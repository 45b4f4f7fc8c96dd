"""Consulting a patient's rights at a dispensing: the main job of the toolkit."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from mcn_cli.actions.local import cache_if_initialised
from mcn_cli.actions.login import holder_signer, login_command
from mcn_cli.domain.consultation import Consultation, PatientId
from mcn_cli.domain.errors import (
    AuthenticationNeeded,
    InvalidInput,
    McnError,
    PolicyRefused,
    ServiceUnavailable,
)
from mcn_cli.domain.identifiers import Niss
from mcn_cli.domain.messages import N_, Message
from mcn_cli.domain.text import check_text
from mcn_cli.ehealth import endpoints, insurability, traces, transport, wssec
from mcn_cli.ehealth.insurability import Answer, Origin, Requester
from mcn_cli.store import sessions
from mcn_cli.store.audit import Actor, Event
from mcn_cli.store.cache import CommitmentCache
from mcn_cli.store.settings import Settings, load

CONNECT_ATTEMPTS = 2  # a refused connection never reached MyCareNet: one retry is safe
USER_REFERENCE_MAX = 25

Notify = Callable[[Message], None]  # str(message) is its English text


@dataclass(frozen=True)
class ConsultResult:
    consultation: Consultation
    answer: Answer
    record: str  # the cache record id
    outcome: str  # "commitment", "no-right", "unknown", "multiple-insurers"


def _origin(settings: Settings, env: str) -> Origin:
    if env == "sandbox":
        from mcn_cli.sandbox.insurability import LICENSE, PACKAGE

        return Origin(PACKAGE, *LICENSE)
    username = os.environ.get("MCN_LICENSE_USERNAME") or settings.license_username
    password = os.environ.get("MCN_LICENSE_PASSWORD") or settings.license_password
    if not username or not password:
        raise InvalidInput(
            "license",
            "missing",
            N_(
                "set license_username and license_password (or MCN_LICENSE_PASSWORD): "
                "MyCareNet's licence for the software"
            ),
        )
    return Origin(settings.package_name, username, password)


def outcome_of(answer: Answer) -> str:
    if answer.coverage is not None and answer.verification is not None:
        return "commitment"
    if answer.multiple_io:
        return "multiple-insurers"
    if not answer.care_receiver.last_name and not answer.care_receiver.member_number:
        return "unknown"
    return "no-right"


def write_trace(folder: Path, reference: str, request: bytes, response: bytes | None) -> None:
    """The request exactly as sent (its signature verifies) with a redacted copy, and the answer."""
    traces.write(folder, f"{reference}-GetInsurabilityForPharmacist", request, response)


def _send(
    environment: endpoints.Environment, payload: bytes, notify: Notify, http: Any = None
) -> tuple[etree._Element, transport.Exchange]:
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return transport.post(
                environment.insurability_url,
                payload,
                insurability.SOAP_ACTION,
                verify=environment.verify,
                timeout=environment.timeout,
                session=http,
                max_answer_bytes=environment.max_answer_bytes,
            )
        except transport.ConnectionRefused:
            if attempt == CONNECT_ATTEMPTS:
                raise
            notify(
                Message(
                    N_("MyCareNet did not accept the connection; trying again ({attempt}/{attempts})"),
                    {"attempt": attempt + 1, "attempts": CONNECT_ATTEMPTS},
                )
            )
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Channel:
    """What every request of a session needs, prepared once (a batch shares it between threads)."""

    session: sessions.Session
    environment: endpoints.Environment
    origin: Origin
    requester: Requester
    signer: Any
    assertion: bytes
    is_test: bool
    trace: Path | None


def open_channel(
    session: sessions.Session, requester: Requester, settings: Settings, trace: Path | None
) -> Channel:
    env_name = endpoints.environment_name(settings)
    if session.env != env_name:
        raise AuthenticationNeeded(
            N_("session {name!r} was opened in {opened}, not {env}: log in again"),
            hint=N_("{command}"),
            name=session.name,
            opened=session.env,
            env=env_name,
            command=login_command(session.name, office=session.kind == "ot", env=env_name),
        )
    origin = _origin(settings, env_name)
    trace = trace or (Path(settings.trace_dir).expanduser() if settings.trace_dir else None)
    return Channel(
        session,
        endpoints.resolve(settings),
        origin,
        requester,
        holder_signer(session),
        session.token_xml(),
        env_name != "prod",
        trace,
    )


def ask(
    channel: Channel,
    patient: PatientId,
    dispensed: date,
    user_reference: str | None,
    notify: Notify = lambda message: None,
    http: Any = None,
) -> tuple[Answer, str]:
    """One request and its answer; every failure is an McnError (faults mapped)."""
    reference = insurability.record_reference()
    envelope = insurability.request_envelope(
        channel.origin,
        channel.requester,
        patient,
        dispensed,
        reference=reference,
        user_reference=user_reference,
        is_test=channel.is_test,
        wsse=insurability.HolderOfKey(channel.signer, channel.assertion),
    )
    payload = wssec.to_bytes(envelope)
    try:
        root, exchange = _send(channel.environment, payload, notify, http)
        if channel.trace is not None:
            write_trace(channel.trace, reference, payload, exchange.response)
        return insurability.parse_answer(root), reference
    except transport.SoapFaultError as error:
        if channel.trace is not None:
            write_trace(channel.trace, reference, payload, error.response or None)
        raise _fault_error(error, channel.session) from None
    except McnError:
        if channel.trace is not None:
            write_trace(channel.trace, reference, payload, None)
        raise


def session_cache(session_name: str, *, office: bool = False) -> CommitmentCache:
    """The unlocked cache, where sessions live; none yet means no session (and nothing is created).
    ``office``: the session wanted is a tarification office's (the hint names its login)."""
    cache = cache_if_initialised(offline_ok=True)
    if cache is None:
        raise no_session(session_name, office=office)
    return cache


def no_session(session_name: str, *, office: bool = False) -> AuthenticationNeeded:
    """No session ``session_name``: log in first, the way a pharmacist or an office does."""
    command = login_command(session_name, office=office)
    if office:
        return AuthenticationNeeded(
            N_("no valid eHealth session for the tarification office: log in first"),
            hint=N_("{command} (the office's organisation keystore alone: no eID, no --holder)"),
            command=command,
        )
    return AuthenticationNeeded(
        N_("no valid eHealth session: log in first"), hint=N_("{command}"), command=command
    )


def validate(dispensed: date, user_reference: str | None, field: str = "reference") -> None:
    today = date.today()
    if dispensed > today:
        raise InvalidInput(
            "date",
            "after-consultation",
            N_("dispensing date {dispensed} is after today ({today}), the consultation date"),
            dispensed=dispensed,
            today=today,
        )
    if user_reference is not None:
        check_text(field, user_reference, max_length=USER_REFERENCE_MAX)


def consult(
    patient: PatientId,
    dispensed: date,
    *,
    session_name: str = sessions.DEFAULT,
    user_reference: str | None = None,
    trace: Path | None = None,
    settings: Settings | None = None,
    notify: Notify = lambda message: None,
) -> ConsultResult:
    settings = settings or load()
    validate(dispensed, user_reference)
    env_name = endpoints.environment_name(settings)
    _origin(settings, env_name)  # a missing licence is bad input, before anything else
    cache = session_cache(session_name)
    try:
        session = sessions.require(cache.db, cache.vault, session_name)
    except AuthenticationNeeded:
        raise no_session(session_name) from None
    actor = Actor(session.user_niss, session.organisation)
    if session.kind != "pharmacy":
        cache.record_event(
            Event.CONSULTATION, "refused: OT session", actor=actor, patient=patient, dispensed=dispensed
        )
        raise PolicyRefused(
            N_("a tarification office's session cannot consult for a dispensing: use mcn ot consult")
        )
    now = datetime.now(UTC)
    _check_legitimate_use(cache, session.organisation, patient, now, settings, actor, dispensed)
    if session.holder_niss is None or session.holder_nihii11 is None:
        raise AuthenticationNeeded(
            N_("session {name!r} predates certified holder values: log in again"),
            hint=N_("{command}"),
            name=session.name,
            command=login_command(session.name),
        )
    requester = Requester(session.organisation, session.holder_niss, session.holder_nihii11)
    channel = open_channel(session, requester, settings, trace)
    try:
        try:
            answer, reference = ask(channel, patient, dispensed, user_reference, notify)
        except ServiceUnavailable as error:
            with_next_step(error, patient, dispensed)
            raise
    except BaseException as error:  # whatever happened, the request may have left: audit it
        what = str(error) if isinstance(error, McnError) else type(error).__name__
        cache.record_event(
            Event.CONSULTATION, f"failed: {what}", actor=actor, patient=patient, dispensed=dispensed
        )
        raise
    consultation = answer.consultation(datetime.now(UTC), dispensed, session.organisation, reference)
    outcome = outcome_of(answer)
    record = cache.store(consultation, actor, outcome)
    return ConsultResult(consultation, answer, record, outcome)


def _fault_error(error: transport.SoapFaultError, session: sessions.Session) -> McnError:
    """A SOAP fault as the user's error; MyCareNet's own code and text stay in it (the helpdesk
    asks for them)."""
    code = error.fault.code.lower()
    if "security" in code or "authentication" in code:
        return AuthenticationNeeded(
            N_("MyCareNet refused the session: {fault}"),
            hint=N_("log in again: {command}"),
            fault=error.fault.message,
            command=login_command(session.name, office=session.kind == "ot"),
        )
    if code.endswith("client"):
        return InvalidInput(
            "request", "refused", N_("MyCareNet refused the request: {fault}"), fault=error.fault.message
        )
    return error  # a server fault: "MyCareNet is failing", with the fault's code and text


# --- what to do when MyCareNet does not answer ---------------------------------------------------


def patient_options(patient: PatientId) -> str:
    """The patient as mcn's options name them, for a command in a hint."""
    if isinstance(patient, Niss):
        return f"--niss {patient.value}"
    return f"--mutuality {patient.mutuality.code} --member-number {shlex.quote(patient.number)}"


def with_next_step(
    error: ServiceUnavailable, patient: PatientId, dispensed: date, *, office: bool = False
) -> ServiceUnavailable:
    """``error`` with a hint saying what to do now (its message is kept): when MyCareNet is
    throttling, wait and consult again; when it cannot answer (network, HTTP 500, fault), a
    pharmacy follows the emergency flow, with the cached commitment that may be reused if there
    is one (looked up, not recorded); a tarification office (``office``) consults again later."""
    extra: dict[str, object] = {"patient_options": patient_options(patient), "dispensed": dispensed}
    if isinstance(error, transport.ServiceBusy):  # HTTP 429 (or 503 with Retry-After)
        if error.retry_after is None:
            hint = N_("consult again in a minute: MyCareNet works, it asks this pharmacy to wait")
        else:
            hint = N_("consult again in {wait_seconds} s: MyCareNet works, it asks this pharmacy to wait")
            extra["wait_seconds"] = error.retry_after
    elif office:
        hint = N_("MyCareNet cannot answer now: consult again later")
    else:
        hint = N_(
            "MyCareNet cannot answer now: follow the emergency flow, "
            "mcn fallback --no-network {patient_options} --date {dispensed}"
        )
        found = _reusable(patient, dispensed)
        if found is not None:
            hint = N_(
                "MyCareNet cannot answer now: the cached commitment of {consulted} covers {dispensed} "
                "(mcn reuse {patient_options} --date {dispensed}); or follow the emergency flow, "
                "mcn fallback --no-network {patient_options} --date {dispensed}"
            )
            extra["consulted"] = found
    error.params = {**error.params, **extra}
    error.hint = hint
    return error


def _reusable(patient: PatientId, dispensed: date) -> date | None:
    """The day of the cached consultation whose commitment may be reused for ``dispensed``, if
    any; a look, not a reuse (nothing is recorded). A hint must never hide the error: any failure
    here means no cached commitment to offer."""
    from mcn_cli.actions.reuse import find_reusable

    try:
        found = find_reusable(patient, dispensed, audit=False)
    except Exception:
        return None
    if found.verdict.allowed and found.record is not None:
        return found.record.consultation.consulted_at.astimezone().date()
    return None


def _check_legitimate_use(
    cache: CommitmentCache,
    pharmacy: str,
    patient: PatientId,
    now: datetime,
    settings: Settings,
    actor: Actor,
    dispensed: date,
) -> None:
    """Checked and recorded in one write transaction: parallel consultations cannot all pass."""
    cache.claim_burst(
        pharmacy,
        patient,
        now,
        limit=settings.burst_patients,
        minutes=settings.burst_minutes,
        actor=actor,
        dispensed=dispensed,
    )
