"""The sandbox STS: checks a holder-of-key attribute query as eHealth does, then issues a signed
SAML 1.1 assertion (at most 12 hours), or refuses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from lxml import etree

from mcn_cli.ehealth import ns, saml, wssec
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import KeystoreSigner
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from mcn_cli.sandbox import world
from mcn_cli.sandbox.setup import load_ca
from mcn_cli.sandbox.world import Files


class Refused(Exception):
    """A request the STS answers with a failure status (the caller's fault)."""


@dataclass
class Authority:
    """What the sandbox STS trusts and signs with."""

    citizen: x509.Certificate
    ehealth: x509.Certificate
    signer: KeystoreSigner
    revoked: set[int]

    @classmethod
    def load(cls, files: Files) -> Authority:
        sts = load_ca(files, "sts")
        return cls(
            load_ca(files, "citizen").certificate,
            load_ca(files, "ehealth").certificate,
            KeystoreSigner(sts.key, sts.certificate),
            files.revoked(),
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


def answer(request_body: bytes, authority: Authority, now: datetime | None = None) -> etree._Element:
    """The samlp:Response for a WS-Security-signed samlp:Request, or raise SignatureInvalid/Refused."""
    now = now or datetime.now(UTC)
    verified = wssec.verify_envelope(request_body, now=now)
    request = wssec.body_payload(verified)
    if request.tag != q(ns.SAMLP, "Request"):
        raise SignatureInvalid("the body is not a samlp:Request")
    claimed = saml.read_query(request)
    try:
        return _issue(claimed, request, verified.certificate, authority, now)
    except Refused as refusal:
        return saml.response(claimed.request_id, now, None, status="Requester", message=str(refusal))


def _issue(
    claimed: saml.Claimed,
    request: etree._Element,
    identification: x509.Certificate,
    authority: Authority,
    now: datetime,
) -> etree._Element:
    kind = authority.check_certificate(identification, now, "identification")
    hok = claimed.holder_of_key
    authority.check_certificate(hok, now, "holder-of-key")
    if hok != identification and not saml.verify_request_signature(request, hok):
        raise Refused("the request is not signed with the holder-of-key key")
    office = _ou_value(hok, "NIHII-OTD_PHARMACY=")
    if office is not None:
        return _issue_office(claimed, identification, office, authority, now)
    niss = user_niss(identification, kind)
    if claimed.claims.get(saml.CLAIM_SSIN) != niss:
        raise Refused("the claimed NISS is not the identification certificate's")
    nihii = _ou_value(hok, "NIHII-PHARMACY=")
    if nihii is None or claimed.claims.get(saml.CLAIM_PHARMACY) != nihii:
        raise Refused("the holder-of-key certificate is not the claimed pharmacy's")
    pharmacy = world.pharmacy(nihii)
    holder = world.person(pharmacy.holder) if pharmacy else None
    recognised = pharmacy is not None
    linked = pharmacy is not None and niss in pharmacy.authorised
    not_on_or_after = min(
        now + saml.MAX_VALIDITY, identification.not_valid_after_utc, hok.not_valid_after_utc
    )
    attributes = {(ns.IDENTIFICATION_NS, name): value for name, value in claimed.claims.items()}
    attributes[(ns.CERTIFIED_NS, saml.CERTIFIED_RECOGNISED)] = "true" if recognised else "false"
    attributes[(ns.CERTIFIED_NS, saml.CERTIFIED_LINKED)] = "true" if linked else "false"
    if holder is not None and saml.CERTIFIED_HOLDER_NIHII in claimed.designators:
        attributes[(ns.CERTIFIED_NS, saml.CERTIFIED_HOLDER_NIHII)] = holder.nihii11
    assertion = saml.issue_assertion(
        authority.signer,
        "urn:be:fgov:ehealth:sts:sandbox",
        claimed.identification_subject,
        hok,
        attributes,
        now=now,
        not_on_or_after=not_on_or_after,
    )
    return saml.response(claimed.request_id, now, assertion)


def _issue_office(
    claimed: saml.Claimed, identification: x509.Certificate, office: str, authority: Authority, now: datetime
) -> etree._Element:
    """A tarification office identifies with its organisation certificate alone."""
    if identification != claimed.holder_of_key:
        raise Refused("a tarification office identifies with its own organisation certificate")
    if claimed.claims.get(saml.CLAIM_OT) != office:
        raise Refused("the claimed office is not the certificate's")
    attributes = {(ns.IDENTIFICATION_NS, name): value for name, value in claimed.claims.items()}
    attributes[(ns.CERTIFIED_NS, saml.CERTIFIED_OT)] = "true" if office == world.OT_NIHII else "false"
    assertion = saml.issue_assertion(
        authority.signer,
        "urn:be:fgov:ehealth:sts:sandbox",
        claimed.identification_subject,
        identification,
        attributes,
        now=now,
        not_on_or_after=min(now + saml.MAX_VALIDITY, identification.not_valid_after_utc),
    )
    return saml.response(claimed.request_id, now, assertion)
