"""The sandbox's MyCareNet insurability service: checks the holder-of-key message as MyCareNet
does, then answers from the synthetic population with the domain's coverage rule."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime

from cryptography import x509
from lxml import etree

from mcn_cli.domain.commitment import InsurabilityPeriod, commitment_for
from mcn_cli.domain.errors import NoCommitment
from mcn_cli.ehealth import ns, saml, wssec
from mcn_cli.ehealth import token as tokens
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.trust import StsTrust
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from mcn_cli.sandbox import population, world
from mcn_cli.sandbox.population import Patient
from mcn_cli.sandbox.world import Files

PROTOCOL = "urn:be:fgov:ehealth:insurability:protocol:v2"
CORE = "urn:be:fgov:ehealth:insurability:core:v2"
LICENSE = ("mcn-sandbox", "sandbox-licence")  # the sandbox's software licence (username, password)
PACKAGE = "mcn"
THROTTLE_PATIENTS = 200  # distinct patients per pharmacy ...
THROTTLE_WINDOW = 600.0  # ... within this many seconds, before MyCareNet throttles
FAULTS = ("refused", "slow", "http-500", "soap-fault", "malformed", "throttle")


class Rejected(Exception):
    """A request MyCareNet answers with a SOAP fault (business or security)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float = 25.0


def fault_switch(files: Files, kinds: tuple[str, ...] = FAULTS) -> Fault | None:
    """The fault switched on with `mcn sandbox fault` if it is one of ``kinds``, spending one of
    its remaining uses."""
    path = files.root / "faults.json"
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    kind = state.get("kind")
    if kind not in kinds:
        return None
    remaining = state.get("remaining")
    if remaining is not None:
        if remaining <= 0:
            return None
        state["remaining"] = remaining - 1
        path.write_text(json.dumps(state))
    return Fault(kind, float(state.get("seconds", 25.0)))


def set_fault(files: Files, kind: str | None, remaining: int | None = None, seconds: float = 25.0) -> None:
    path = files.root / "faults.json"
    if kind is None:
        path.unlink(missing_ok=True)
        return
    path.write_text(json.dumps({"kind": kind, "remaining": remaining, "seconds": seconds}))


class Throttle:
    """MyCareNet watches for systematic consultation and slows down a pharmacy that does it."""

    def __init__(self, patients: int = THROTTLE_PATIENTS, window: float = THROTTLE_WINDOW) -> None:
        self.patients, self.window = patients, window
        self.seen: dict[str, deque[tuple[float, str]]] = {}
        self.lock = threading.Lock()

    def allow(self, pharmacy: str, patient: str) -> bool:
        now = time.monotonic()
        with self.lock:
            log = self.seen.setdefault(pharmacy, deque())
            while log and log[0][0] < now - self.window:
                log.popleft()
            known = {p for _, p in log}
            if patient not in known and len(known) >= self.patients:
                return False
            log.append((now, patient))
            return True


@dataclass(frozen=True)
class Caller:
    pharmacy: str
    kind: str  # "pharmacy"; the tarification office comes later
    attributes: dict[tuple[str, str], str]  # the token's, by (namespace, name)


def check_caller(body: bytes, trust: StsTrust, now: datetime) -> tuple[Caller, etree._Element]:
    """Verify the holder-of-key message and its token; returns who calls and the request."""

    def holder_of_key(assertion: etree._Element) -> x509.Certificate:
        return tokens.verify(assertion, trust, now).holder_of_key

    verified = wssec.verify_envelope(body, now=now, holder_of_key=holder_of_key)
    if verified.assertion is None:
        raise SignatureInvalid("the message is not signed with the session's holder-of-key assertion")
    token = tokens.verify(verified.assertion, trust, now)
    try:
        kind = tokens.kind_of(token)
    except tokens.TokenRefused as error:
        raise Rejected("wsse:FailedAuthentication", str(error)) from None
    request = wssec.body_payload(verified)
    claim = saml.CLAIM_OT if kind == "ot" else saml.CLAIM_PHARMACY
    organisation = token.value(claim, ns.IDENTIFICATION_NS) or ""
    return Caller(organisation, kind, token.attributes), request


def _text(element: etree._Element, path: str) -> str | None:
    found = element.findtext(path.replace("p:", f"{{{PROTOCOL}}}").replace("c:", f"{{{CORE}}}"))
    return found.strip() if found is not None else None


def _approval(secret: bytes, who: str, dispensed: date, pharmacy: str, seed: str) -> tuple[str, str]:
    digest = (
        hmac.new(secret, f"{who}|{dispensed}|{pharmacy}|{seed}".encode(), hashlib.sha256).hexdigest().upper()
    )
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    check = letters[int(digest[32:36], 16) % 24] + letters[int(digest[36:40], 16) % 24]
    return digest[:32], check


def _element(parent: etree._Element, namespace: str, name: str, text: object | None = None) -> etree._Element:
    element = etree.SubElement(parent, q(namespace, name))
    if text is not None:
        element.text = str(text)
    return element


def answer(request: etree._Element, caller: Caller, secret: bytes, today: date) -> etree._Element:
    """The GetInsurabilityForPharmacistResponse for a checked request."""
    name, password = (
        _text(request, "p:CommonInput/c:Origin/c:Package/c:License/c:Username"),
        _text(request, "p:CommonInput/c:Origin/c:Package/c:License/c:Password"),
    )
    if (name, password) != LICENSE:
        raise Rejected("soapenv:Client", "unknown software package licence")
    organisation = _text(request, "p:CommonInput/c:Origin/c:CareProvider/c:Organization/c:Nihii/c:Value")
    quality = _text(request, "p:CommonInput/c:Origin/c:CareProvider/c:Nihii/c:Quality")
    rejection = _text(request, "p:RecordCommonInput/c:UserReference")
    if caller.kind == "ot":
        # 8.2.2.7: an office consults only for an invoice rejected for an insurability error
        if (
            quality != "OTD_PHARMACY"
            or _text(request, "p:CommonInput/c:Origin/c:CareProvider/c:Nihii/c:Value") != caller.pharmacy
        ):
            raise Rejected(
                "soapenv:Client", "the care provider is not the tarification office of the session"
            )
        if not rejection:
            raise Rejected(
                "soapenv:Client", "policy: a tarification office consults only with a rejection reference"
            )
        if organisation is not None and world.pharmacy(organisation) is None:
            raise Rejected("soapenv:Client", f"no invoice of pharmacy {organisation} was rejected")
    elif quality == "OTD_PHARMACY":
        raise Rejected("soapenv:Client", "policy: a pharmacy session cannot consult as a tarification office")
    elif organisation != caller.pharmacy:
        raise Rejected("soapenv:Client", "the care provider is not the pharmacy of the session")
    elif (
        _text(request, "p:CommonInput/c:Origin/c:CareProvider/c:Nihii/c:Value"),
        _text(request, "p:CommonInput/c:Origin/c:CareProvider/c:PhysicalPerson/c:Ssin"),
    ) != (
        caller.attributes.get((ns.CERTIFIED_NS, saml.CERTIFIED_HOLDER_NIHII)),
        caller.attributes.get((ns.IDENTIFICATION_NS, saml.CLAIM_HOLDER)),
    ):
        raise Rejected("soapenv:Client", "the care provider is not the pharmacy holder eHealth certified")
    requested_text = _text(request, "p:InsurabilityRequest/c:Date") or ""
    try:
        requested = date.fromisoformat(requested_text)
    except ValueError:
        raise Rejected("soapenv:Client", f"invalid date {requested_text!r}") from None
    if requested > today:
        raise Rejected("soapenv:Client", "the dispensing date is after the consultation date")
    niss = _text(request, "p:InsurabilityRequest/c:CareReceiver/c:Ssin")
    mutuality = _text(request, "p:InsurabilityRequest/c:CareReceiver/c:Mutuality")
    member = _text(request, "p:InsurabilityRequest/c:CareReceiver/c:RegNrWithMut")
    patient = population.find(today, niss, mutuality, member)

    root = etree.Element(
        q(PROTOCOL, "GetInsurabilityForPharmacistResponse"), nsmap={"ins": PROTOCOL, "core": CORE}
    )
    root.set("Id", f"_{secrets.token_hex(8)}")
    status = etree.SubElement(root, "Status")
    etree.SubElement(status, "Code").text = "200"
    etree.SubElement(status, "Message").text = "Success"
    common = _element(root, PROTOCOL, "CommonOutput")
    _element(common, CORE, "Reference", f"SBX{secrets.randbelow(10**11):011d}")
    record = _element(root, PROTOCOL, "RecordCommonOutput")
    reference = _text(request, "p:RecordCommonInput/c:Reference")
    if reference:
        _element(record, CORE, "Reference", reference)
    user_reference = _text(request, "p:RecordCommonInput/c:UserReference")
    if user_reference:
        _element(record, CORE, "UserReference", user_reference.upper()[:25])
    info = _element(root, PROTOCOL, "ReturnInfo")
    code = _element(info, CORE, "ReturnCode")
    insurability = _element(root, PROTOCOL, "InsurabilityResponse")
    _element(insurability, CORE, "Requested", requested.isoformat())
    receiver = _element(insurability, CORE, "CareReceiver")

    def return_code(major: str, minor: str, detail: str) -> None:
        _element(code, CORE, "Major", major)
        _element(code, CORE, "Minor", minor)
        _element(code, CORE, "Detail", detail)

    if patient is None:
        return_code("02", "00", "00001")  # person unknown
        if niss:
            _element(receiver, CORE, "Ssin", niss)
        return root
    _describe(receiver, patient)
    if patient.insurers:
        return_code("02", "00", "00003")  # known at several insurers
        _element(info, CORE, "MultipleIO", " ".join(patient.insurers))
        return root
    periods = [InsurabilityPeriod(ct, start, end) for ct, start, end in patient.periods_on(today)]
    try:
        commitment = commitment_for(requested, today, periods)
    except NoCommitment:
        return_code("02", "00", "00002")  # no right at the date
        return root
    return_code("01", "00", "00000")
    coverage = _element(insurability, CORE, "Coverage")
    _element(coverage, CORE, "Communicated", today.isoformat())
    period = _element(coverage, CORE, "Period")
    _element(period, CORE, "BeginDate", commitment.coverage.start.isoformat())
    _element(period, CORE, "EndDate", commitment.coverage.end.isoformat())
    entitlement = _element(coverage, CORE, "Entitlement")
    _element(entitlement, CORE, "Code1", commitment.entitlement.ct1)
    _element(entitlement, CORE, "Code2", commitment.entitlement.ct2)
    _element(entitlement, CORE, "ThirdPartyPayerRegime", patient.regime.value)
    seed = f"{secrets.randbelow(10**10):010d}"
    approval, check = _approval(secret, patient.niss or patient.member, requested, caller.pharmacy, seed)
    verification = _element(insurability, CORE, "Verification")
    _element(verification, CORE, "PaymentApproval", approval)
    _element(verification, CORE, "PaymentApprovalSeed", seed)
    _element(verification, CORE, "InvoicingOfficeCheckDigit", check)
    return root


def _describe(receiver: etree._Element, patient: Patient) -> None:
    if patient.niss:
        _element(receiver, CORE, "Ssin", patient.niss)
    _element(receiver, CORE, "RegNrWithMut", patient.member)
    _element(receiver, CORE, "Mutuality", patient.mutuality)
    _element(receiver, CORE, "FirstName", patient.first)
    _element(receiver, CORE, "LastName", patient.last)
    _element(receiver, CORE, "Birthday", patient.birth.isoformat())
    if patient.deceased is not None:
        from datetime import timedelta

        _element(
            receiver,
            CORE,
            "Deceased",
            (datetime.now(UTC).date() + timedelta(days=patient.deceased)).isoformat(),
        )
    if patient.sex.value in ("male", "female"):
        _element(receiver, CORE, "Sex", patient.sex.value)


def patient_fault(request: etree._Element, today: date) -> str | None:
    """The fault a per-request fault patient triggers."""
    niss = _text(request, "p:InsurabilityRequest/c:CareReceiver/c:Ssin")
    mutuality = _text(request, "p:InsurabilityRequest/c:CareReceiver/c:Mutuality")
    member = _text(request, "p:InsurabilityRequest/c:CareReceiver/c:RegNrWithMut")
    patient = population.find(today, niss, mutuality, member)
    return patient.fault if patient else None


def patient_key(request: etree._Element) -> str:
    return "|".join(
        _text(request, f"p:InsurabilityRequest/c:CareReceiver/c:{name}") or ""
        for name in ("Ssin", "Mutuality", "RegNrWithMut")
    )
