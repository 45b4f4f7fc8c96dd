"""The sandbox STS: both of eHealth's variants (SAML 1.1 ``samlp:Request`` and WS-Trust 1.3 with
its sign challenge), checking a request as strictly as the real service is known to, then issuing
an assertion shaped like eHealth's (STS.md §2-4), or refusing.

Where a public source leaves the real service's behaviour open (STS.md §7), the sandbox takes the
strict reading: the NameIdentifier must be the identification certificate's subject in Java's
RFC 1779 form, every attribute of a pharmacy session must be designated, an unknown attribute is
refused, and the holder link is certified only for the pharmacy's titular pharmacist claimed by
a pharmacist authorised there.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from lxml import etree

from mcn_cli.ehealth import dn, ns, saml, wssec, wstrust
from mcn_cli.ehealth import token as tokens
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.saml import Claimed
from mcn_cli.ehealth.signers import KeystoreSigner
from mcn_cli.ehealth.trust import STS_ISSUER, StsTrust
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from mcn_cli.sandbox import world
from mcn_cli.sandbox.setup import load_ca
from mcn_cli.sandbox.world import Files

MAX_LIFETIME = timedelta(hours=24)  # what eHealth's acceptance STS was seen to honour
BACKDATE = timedelta(minutes=5)  # NotBefore, as in real tokens
CHALLENGE_SECONDS = 300.0
MAX_PENDING = 1000
MAX_PENDING_EACH = 10  # open challenges per identification certificate

PHARMACY = saml.pharmacy_attributes("", "", "")
OFFICE = saml.office_attributes("")


class Refused(Exception):
    """A request the STS refuses (the caller's fault)."""


@dataclass
class Authority:
    """What the sandbox STS trusts and signs with."""

    citizen: x509.Certificate
    ehealth: x509.Certificate
    signer: KeystoreSigner
    revoked: set[int]
    trust: StsTrust  # for the tokens it is asked to renew

    @classmethod
    def load(cls, files: Files) -> Authority:
        sts = load_ca(files, "sts")
        return cls(
            load_ca(files, "citizen").certificate,
            load_ca(files, "ehealth").certificate,
            KeystoreSigner(sts.key, sts.certificate),
            files.revoked(),
            world.sts_trust(files),
        )

    def check_certificate(self, certificate: x509.Certificate, now: datetime, what: str) -> str:
        """Chain, validity and revocation; returns "eid" or "ehealth" by issuer."""
        for kind, issuer in (("eid", self.citizen), ("ehealth", self.ehealth)):
            if certificate.issuer != issuer.subject:
                continue
            try:
                certificate.verify_directly_issued_by(issuer)
            except Exception as error:  # InvalidSignature, ValueError, TypeError
                raise Refused(f"the {what} certificate was not issued by a trusted CA ({error})") from None
            if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
                raise Refused(f"the {what} certificate has expired or is not valid yet")
            if certificate.serial_number in self.revoked:
                raise Refused(f"the {what} certificate has been revoked")
            return kind
        raise Refused(f"the {what} certificate comes from an unknown CA")


def _ou_value(certificate: x509.Certificate, prefix: str) -> str | None:
    for attribute in certificate.subject:
        value = str(attribute.value)
        if value.startswith(prefix):
            return value[len(prefix) :]
    return None


def user_niss(certificate: x509.Certificate, kind: str) -> str:
    if kind == "eid":
        values = certificate.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)
        if values:
            return str(values[0].value)
    elif (niss := _ou_value(certificate, "SSIN=")) is not None:
        return niss
    raise Refused("the identification certificate names no person (eID or SSIN= certificate expected)")


# --- the two variants -------------------------------------------------------------------------


def answer_saml(request_body: bytes, authority: Authority, now: datetime | None = None) -> etree._Element:
    """The samlp:Response for a WS-Security-signed samlp:Request, or raise SignatureInvalid."""
    now = now or datetime.now(UTC)
    verified = wssec.verify_envelope(request_body, now=now)
    request = wssec.body_payload(verified)
    if request.tag != q(ns.SAMLP, "Request"):
        raise SignatureInvalid("the body is not a samlp:Request")
    try:
        claimed = saml.read_query(request)
        identification = verified.certificate
        if (claimed.identification_subject, claimed.identification_issuer) != (
            dn.rfc1779(identification.subject),
            dn.rfc1779(identification.issuer),
        ):
            raise Refused(
                "the NameIdentifier and its NameQualifier are not the identification certificate's "
                "subject and issuer (RFC 1779 form expected)"
            )
        hok = claimed.holder_of_key
        if hok != identification or request.find(q(ns.DS, "Signature")) is not None:
            saml.verify_request_signature(request, hok)
        assertion = _issue(claimed, identification, authority, now)
    except (Refused, saml.ClaimRefused, SignatureInvalid) as refusal:
        # everything past the WS-Security header is answered in SAML: a Requester status
        return saml.response(
            request.get("RequestID", ""), now, None, status="Requester", message=str(refusal)
        )
    return saml.response(claimed.context, now, assertion)


@dataclass(frozen=True)
class Pending:
    claimed: Claimed
    identification: x509.Certificate
    challenge: str
    deadline: float


class Challenges:
    """Sign challenges waiting for their answer, by Context (in memory, a few minutes)."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def open(self, claimed: Claimed, identification: x509.Certificate) -> str:
        challenge = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            for context in [c for c, p in self._pending.items() if p.deadline < now]:
                del self._pending[context]
            mine = sum(1 for p in self._pending.values() if p.identification == identification)
            if len(self._pending) >= MAX_PENDING or mine >= MAX_PENDING_EACH:
                raise Refused("too many open challenges: answer them, or wait a few minutes")
            if claimed.context in self._pending:
                raise Refused("this Context is in use")
            self._pending[claimed.context] = Pending(
                claimed, identification, challenge, now + CHALLENGE_SECONDS
            )
        return challenge

    def close(self, context: str, challenge: str, signer: x509.Certificate) -> Pending:
        """The pending request, once answered with its challenge by its holder-of-key key; a wrong
        answer leaves it open for the right one."""
        with self._lock:
            pending = self._pending.get(context)
            if pending is None or pending.deadline < time.monotonic():
                raise Refused("no open challenge for this Context (expired or never sent)")
            if signer != pending.claimed.holder_of_key:
                raise Refused("the challenge answer is not signed with the holder-of-key key")
            if not secrets.compare_digest(pending.challenge, challenge):
                raise Refused("the challenge answered is not the one sent")
            del self._pending[context]
        return pending


def answer_wstrust(
    request_body: bytes,
    action: str,
    authority: Authority,
    challenges: Challenges,
    now: datetime | None = None,
) -> etree._Element:
    """The RSTR (a challenge or the token) for a WS-Trust message; Refused or SignatureInvalid
    are answered as SOAP faults by the server."""
    now = now or datetime.now(UTC)
    verified = wssec.verify_envelope(request_body, now=now)
    try:
        return _answer_wstrust(verified, action, authority, challenges, now)
    except SignatureInvalid as error:  # the header held; the request itself is malformed
        raise InvalidRequest(str(error)) from None


class InvalidRequest(Exception):
    """A WS-Trust message that is not a request the STS serves (a wst:InvalidRequest fault)."""


def _answer_wstrust(
    verified: wssec.Verified, action: str, authority: Authority, challenges: Challenges, now: datetime
) -> etree._Element:
    payload = wssec.body_payload(verified)
    if action == wstrust.CHALLENGE_ACTION:
        answer = wstrust.read_challenge_answer(payload)
        pending = challenges.close(answer.context, answer.challenge, verified.certificate)
        assertion = _issue(pending.claimed, pending.identification, authority, now)
        return wstrust.issued(answer.context, assertion)
    identification = verified.certificate
    if wstrust.request_type(payload) == wstrust.RENEW:
        claimed = _renewal(payload, identification, authority, now)
    else:
        claimed = wstrust.read_request(payload)
    if claimed.holder_of_key != identification:
        authority.check_certificate(identification, now, "identification")
        authority.check_certificate(claimed.holder_of_key, now, "holder-of-key")
        _attributes(claimed, identification, authority, now)  # refuse early, before the challenge
        return wstrust.sign_challenge(claimed.context, challenges.open(claimed, identification))
    return wstrust.issued(claimed.context, _issue(claimed, identification, authority, now))


def _renewal(
    request: etree._Element, identification: x509.Certificate, authority: Authority, now: datetime
) -> Claimed:
    """What a Renew asks: the embedded token's attributes again, for its own subject only."""
    assertion = wstrust.renew_target(request)
    try:
        token = tokens.verify(assertion, authority.trust, now)
    except SignatureInvalid as error:
        raise Refused(f"the token to renew is not valid: {error}") from None
    subject = assertion.findtext(
        f"{q(ns.SAML, 'AuthenticationStatement')}/{q(ns.SAML, 'Subject')}/{q(ns.SAML, 'NameIdentifier')}"
    )
    if subject != saml.Subject.of(identification).name:
        raise Refused("the renewal is not signed by the token's own subject")
    claims = {
        name: value
        for (namespace, name), value in token.attributes.items()
        if namespace == ns.IDENTIFICATION_NS
    }
    return Claimed(
        request.get("Context", ""),
        "",
        token.holder_of_key,
        claims,
        tuple((name, namespace) for namespace, name in token.attributes),
        now + saml.MAX_VALIDITY,
    )


# --- the decision, the same for both ----------------------------------------------------------


def _expected(kind: str) -> Sequence[saml.Attribute]:
    return OFFICE if kind == "ot" else PHARMACY


def _designated(claimed: Claimed, kind: str) -> list[tuple[str, str]]:
    """The designated attributes as (namespace, name), in request order, all known and all there."""
    known = {a.name: a.namespace for a in _expected(kind)}
    designated: list[tuple[str, str]] = []
    for name, namespace in claimed.designators:
        if name not in known:
            raise Refused(f"unknown attribute {name}")
        if namespace is not None and namespace != known[name]:
            raise Refused(f"attribute {name} is not in namespace {namespace}")
        if (known[name], name) in designated:
            raise Refused(f"attribute {name} is designated twice")
        designated.append((known[name], name))
    for name in claimed.claims:
        if known.get(name) != ns.IDENTIFICATION_NS:
            raise Refused(f"unknown claim {name}")
    for attribute in _expected(kind):
        if attribute.key not in designated:
            raise Refused(f"the designator {attribute.name} is missing")
        if attribute.namespace == ns.IDENTIFICATION_NS and not claimed.claims.get(attribute.name):
            raise Refused(f"the claim {attribute.name} is missing")
    return designated


def _attributes(
    claimed: Claimed, identification: x509.Certificate, authority: Authority, now: datetime
) -> list[tuple[str, str, str]]:
    """What the token will say, as (namespace, name, value) in request order."""
    kind = authority.check_certificate(identification, now, "identification")
    hok = claimed.holder_of_key
    authority.check_certificate(hok, now, "holder-of-key")
    office = _ou_value(hok, "NIHII-OTD_PHARMACY=")
    certified: dict[str, str] = {}
    if office is not None:
        designated = _designated(claimed, "ot")
        if identification != hok:
            raise Refused("a tarification office identifies with its own organisation certificate")
        if claimed.claims.get(saml.CLAIM_OT) != office:
            raise Refused("the claimed office is not the certificate's")
        certified[saml.CERTIFIED_OT] = "true" if office == world.OT_NIHII else "false"
    else:
        designated = _designated(claimed, "pharmacy")
        niss = user_niss(identification, kind)
        if (
            claimed.claims.get(saml.CLAIM_SSIN) != niss
            or claimed.claims.get(saml.CLAIM_CERT_HOLDER_SSIN) != niss
        ):
            raise Refused("the claimed NISS is not the identification certificate's")
        nihii = _ou_value(hok, "NIHII-PHARMACY=")
        if nihii is None or claimed.claims.get(saml.CLAIM_PHARMACY) != nihii:
            raise Refused("the holder-of-key certificate is not the claimed pharmacy's")
        pharmacy = world.pharmacy(nihii)
        holder_niss = claimed.claims.get(saml.CLAIM_HOLDER, "")
        holder = world.person(holder_niss)
        certified[saml.CERTIFIED_RECOGNISED] = "true" if pharmacy is not None else "false"
        linked = pharmacy is not None and holder_niss == pharmacy.holder and niss in pharmacy.authorised
        certified[saml.CERTIFIED_LINKED] = "true" if linked else "false"
        if holder is not None:
            certified[saml.CERTIFIED_HOLDER_NIHII] = holder.nihii11
    attributes: list[tuple[str, str, str]] = []
    for namespace, name in designated:
        value = claimed.claims.get(name) if namespace == ns.IDENTIFICATION_NS else certified.get(name)
        if value is not None:  # what the STS cannot certify it leaves out
            attributes.append((namespace, name, value))
    return attributes


def _issue(
    claimed: Claimed, identification: x509.Certificate, authority: Authority, now: datetime
) -> etree._Element:
    attributes = _attributes(claimed, identification, authority, now)
    hok = claimed.holder_of_key
    requested = claimed.not_on_or_after or now + saml.MAX_VALIDITY
    not_on_or_after = min(
        requested, now + MAX_LIFETIME, identification.not_valid_after_utc, hok.not_valid_after_utc
    )
    if not_on_or_after <= now:
        raise Refused("the requested lifetime has already ended")
    return saml.issue_assertion(
        authority.signer,
        authority.signer.certificate,
        saml.Subject.of(identification),
        hok,
        attributes,
        now=now,
        not_before=now - BACKDATE,
        not_on_or_after=not_on_or_after,
        issuer=STS_ISSUER,
    )
