"""SAML 1.1 for the eHealth STS: the holder-of-key attribute query and the assertion it returns.

The request follows the eHealth connector's template (an AttributeQuery whose subject carries
a self-issued assertion with the claimed attributes and, as holder-of-key, the organisation
certificate). The STS answers with an assertion it signs; the client checks that signature,
the validity window and the certified booleans before using the token.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from mcn_cli.ehealth import ns, xmldsig
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import Signer
from mcn_cli.ehealth.xmldsig import Reference, SignatureInvalid

MAX_VALIDITY = timedelta(hours=12)

# What a pharmacy claims (identification namespace) and asks to be certified.
CLAIM_CERT_HOLDER_SSIN = "urn:be:fgov:ehealth:1.0:certificateholder:person:ssin"
CLAIM_SSIN = "urn:be:fgov:person:ssin"
CLAIM_PHARMACY = "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number"
CLAIM_HOLDER = "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder"
CERTIFIED_RECOGNISED = "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean"
CERTIFIED_HOLDER_NIHII = "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder:certified:nihii11"
CERTIFIED_LINKED = (
    "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:person:ssin:ehealth:1.0:pharmacy-holder:boolean"
)
PHARMACY_DESIGNATORS = (CERTIFIED_RECOGNISED, CERTIFIED_HOLDER_NIHII, CERTIFIED_LINKED)
REQUIRED_TRUE = (CERTIFIED_RECOGNISED, CERTIFIED_LINKED)

# A tarification office identifies with its organisation certificate alone.
CLAIM_OT = "urn:be:fgov:ehealth:1.0:certificateholder:otdpharmacy:nihii-number"
CERTIFIED_OT = "urn:be:fgov:ehealth:1.0:otdpharmacy:nihii-number:recognisedotdpharmacy:boolean"
OT_DESIGNATORS = (CERTIFIED_OT,)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _der64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def subject_dn(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def _attribute(parent: etree._Element, name: str, namespace: str, value: str) -> None:
    attribute = etree.SubElement(
        parent, q(ns.SAML, "Attribute"), AttributeName=name, AttributeNamespace=namespace
    )
    value_element = etree.SubElement(
        attribute, q(ns.SAML, "AttributeValue"), nsmap={"xsi": ns.XSI, "xs": ns.XS}
    )
    value_element.set(q(ns.XSI, "type"), "xs:string")
    value_element.text = value


def _name_identifier(parent: etree._Element, certificate: x509.Certificate) -> None:
    name = etree.SubElement(
        parent,
        q(ns.SAML, "NameIdentifier"),
        Format=ns.X509_SUBJECT,
        NameQualifier=certificate.issuer.rfc4514_string(),
    )
    name.text = subject_dn(certificate)


def _key_info(parent: etree._Element, certificate: x509.Certificate) -> None:
    key_info = etree.SubElement(parent, q(ns.DS, "KeyInfo"), nsmap={"ds": ns.DS})
    data = etree.SubElement(key_info, q(ns.DS, "X509Data"))
    etree.SubElement(data, q(ns.DS, "X509Certificate")).text = _der64(certificate)


def attribute_query(
    identification: x509.Certificate,
    holder_of_key: x509.Certificate,
    claims: Mapping[str, str],
    designators: Sequence[str],
    *,
    now: datetime | None = None,
    validity: timedelta = MAX_VALIDITY,
) -> etree._Element:
    """The unsigned samlp:Request for a holder-of-key token."""
    now = now or datetime.now(UTC)
    request_id = f"request-{uuid.uuid4()}"
    request = etree.Element(
        q(ns.SAMLP, "Request"),
        nsmap={"samlp": ns.SAMLP, "saml": ns.SAML, "ds": ns.DS},
        IssueInstant=_time(now),
        MajorVersion="1",
        MinorVersion="1",
        RequestID=request_id,
    )
    query = etree.SubElement(request, q(ns.SAMLP, "AttributeQuery"))
    subject = etree.SubElement(query, q(ns.SAML, "Subject"))
    _name_identifier(subject, identification)
    confirmation = etree.SubElement(subject, q(ns.SAML, "SubjectConfirmation"))
    etree.SubElement(confirmation, q(ns.SAML, "ConfirmationMethod")).text = ns.HOLDER_OF_KEY
    data = etree.SubElement(confirmation, q(ns.SAML, "SubjectConfirmationData"))
    inner = etree.SubElement(
        data,
        q(ns.SAML, "Assertion"),
        AssertionID=f"assertion-{uuid.uuid4()}",
        IssueInstant=_time(now),
        Issuer=subject_dn(identification),
        MajorVersion="1",
        MinorVersion="1",
    )
    etree.SubElement(
        inner, q(ns.SAML, "Conditions"), NotBefore=_time(now), NotOnOrAfter=_time(now + validity)
    )
    statement = etree.SubElement(inner, q(ns.SAML, "AttributeStatement"))
    _name_identifier(etree.SubElement(statement, q(ns.SAML, "Subject")), identification)
    for name, value in claims.items():
        _attribute(statement, name, ns.IDENTIFICATION_NS, value)
    _key_info(confirmation, holder_of_key)
    for name in designators:
        etree.SubElement(
            query, q(ns.SAML, "AttributeDesignator"), AttributeName=name, AttributeNamespace=ns.CERTIFIED_NS
        )
    return request


def sign_request(request: etree._Element, signer: Signer) -> None:
    """Sign the request with the holder-of-key key (when it differs from the identification key)."""
    xmldsig.sign(
        [Reference(f"#{request.get('RequestID')}", request, enveloped=True)],
        signer,
        None,
        lambda signature: request.insert(0, signature),
    )


def _request_resolver(request: etree._Element):  # noqa: ANN202
    def resolve(identifier: str) -> etree._Element:
        if request.get("RequestID") != identifier:
            raise SignatureInvalid("the request signature does not cover the request")
        return request

    return resolve


def verify_request_signature(request: etree._Element, certificate: x509.Certificate) -> bool:
    """True when the request carries a valid signature by ``certificate``; False when unsigned."""
    signature = request.find(q(ns.DS, "Signature"))
    if signature is None:
        return False
    xmldsig.verify(signature, _request_resolver(request), certificate.public_key())
    return True


@dataclass(frozen=True)
class Claimed:
    """What an attribute query asks, as the STS reads it."""

    request_id: str
    identification_subject: str
    holder_of_key: x509.Certificate
    claims: dict[str, str]
    designators: tuple[str, ...]


def read_query(request: etree._Element) -> Claimed:
    query = request.find(q(ns.SAMLP, "AttributeQuery"))
    if query is None:
        raise SignatureInvalid("not an attribute query")
    subject = query.find(q(ns.SAML, "Subject"))
    confirmation = None if subject is None else subject.find(q(ns.SAML, "SubjectConfirmation"))
    if subject is None or confirmation is None:
        raise SignatureInvalid("the query has no subject confirmation")
    if confirmation.findtext(q(ns.SAML, "ConfirmationMethod")) != ns.HOLDER_OF_KEY:
        raise SignatureInvalid("only holder-of-key tokens are issued")
    encoded = confirmation.findtext(
        f"{q(ns.DS, 'KeyInfo')}/{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}"
    )
    try:
        hok = x509.load_der_x509_certificate(base64.b64decode("".join((encoded or "").split())))
    except ValueError:
        raise SignatureInvalid("the holder-of-key certificate is unreadable") from None
    claims = {
        a.get("AttributeName", ""): (a.findtext(q(ns.SAML, "AttributeValue")) or "").strip()
        for a in confirmation.iter(q(ns.SAML, "Attribute"))
        if a.get("AttributeNamespace") == ns.IDENTIFICATION_NS
    }
    designators = tuple(d.get("AttributeName", "") for d in query.findall(q(ns.SAML, "AttributeDesignator")))
    return Claimed(
        request.get("RequestID", ""),
        (subject.findtext(q(ns.SAML, "NameIdentifier")) or "").strip(),
        hok,
        claims,
        designators,
    )


# --- the STS side: issuing an assertion ------------------------------------------------------


def issue_assertion(
    signer: Signer,
    issuer: str,
    subject: str,
    holder_of_key: x509.Certificate,
    attributes: Mapping[tuple[str, str], str],
    *,
    now: datetime,
    not_on_or_after: datetime,
) -> etree._Element:
    assertion_id = f"_{uuid.uuid4().hex}"
    assertion = etree.Element(
        q(ns.SAML, "Assertion"),
        nsmap={"saml": ns.SAML},
        AssertionID=assertion_id,
        IssueInstant=_time(now),
        Issuer=issuer,
        MajorVersion="1",
        MinorVersion="1",
    )
    etree.SubElement(
        assertion, q(ns.SAML, "Conditions"), NotBefore=_time(now), NotOnOrAfter=_time(not_on_or_after)
    )
    statement = etree.SubElement(assertion, q(ns.SAML, "AttributeStatement"))
    saml_subject = etree.SubElement(statement, q(ns.SAML, "Subject"))
    name = etree.SubElement(saml_subject, q(ns.SAML, "NameIdentifier"), Format=ns.X509_SUBJECT)
    name.text = subject
    confirmation = etree.SubElement(saml_subject, q(ns.SAML, "SubjectConfirmation"))
    etree.SubElement(confirmation, q(ns.SAML, "ConfirmationMethod")).text = ns.HOLDER_OF_KEY
    _key_info(confirmation, holder_of_key)
    for (namespace, attribute), value in attributes.items():
        _attribute(statement, attribute, namespace, value)
    xmldsig.sign(
        [Reference(f"#{assertion_id}", assertion, enveloped=True)],
        signer,
        None,
        assertion.append,
    )
    return assertion


def response(
    in_response_to: str,
    now: datetime,
    assertion: etree._Element | None,
    status: str = "Success",
    message: str | None = None,
) -> etree._Element:
    root = etree.Element(
        q(ns.SAMLP, "Response"),
        nsmap={"samlp": ns.SAMLP, "saml": ns.SAML},
        ResponseID=f"_{uuid.uuid4().hex}",
        InResponseTo=in_response_to,
        IssueInstant=_time(now),
        MajorVersion="1",
        MinorVersion="1",
    )
    status_element = etree.SubElement(root, q(ns.SAMLP, "Status"))
    etree.SubElement(status_element, q(ns.SAMLP, "StatusCode"), Value=f"samlp:{status}")
    if message:
        etree.SubElement(status_element, q(ns.SAMLP, "StatusMessage")).text = message
    if assertion is not None:
        root.append(assertion)
    return root


# --- the client side: checking the token -------------------------------------------------------


class TokenRefused(Exception):
    """The STS refused, or its token is unusable (signature, window, booleans)."""


@dataclass(frozen=True)
class Token:
    xml: bytes
    assertion_id: str
    not_before: datetime
    not_on_or_after: datetime
    holder_of_key: x509.Certificate
    attributes: dict[str, str]  # certified and identification attributes, by name

    def element(self) -> etree._Element:
        return xmldsig.parse(self.xml)


def _parse_time(text: str | None) -> datetime:
    from mcn_cli.ehealth.wssec import parse_time

    return parse_time(text)


def holder_of_key_of(assertion: etree._Element) -> x509.Certificate:
    path = f"{q(ns.DS, 'KeyInfo')}/{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}"
    encoded = assertion.findtext(f".//{q(ns.SAML, 'SubjectConfirmation')}/{path}")
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join((encoded or "").split())))
    except ValueError:
        raise SignatureInvalid("the assertion has no readable holder-of-key certificate") from None


def check_assertion(
    assertion: etree._Element,
    sts_certificate: x509.Certificate,
    now: datetime,
    *,
    skew: timedelta = timedelta(minutes=5),
) -> Token:
    """Verify the STS's signature and the validity window; read the attributes."""
    if assertion.tag != q(ns.SAML, "Assertion"):
        raise SignatureInvalid("not a SAML 1.1 assertion")
    signature = assertion.find(q(ns.DS, "Signature"))
    if signature is None:
        raise SignatureInvalid("the assertion is not signed")
    assertion_id = assertion.get("AssertionID", "")

    def resolve(identifier: str) -> etree._Element:
        if identifier != assertion_id:
            raise SignatureInvalid("the signature does not cover the assertion")
        return assertion

    xmldsig.verify(signature, resolve, sts_certificate.public_key())
    conditions = assertion.find(q(ns.SAML, "Conditions"))
    if conditions is None:
        raise SignatureInvalid("the assertion has no validity window")
    not_before = _parse_time(conditions.get("NotBefore"))
    not_on_or_after = _parse_time(conditions.get("NotOnOrAfter"))
    if not_before > now + skew:
        raise SignatureInvalid("the token is not valid yet (check the clock)")
    if not_on_or_after <= now:
        raise SignatureInvalid("the token has expired")
    attributes = {
        a.get("AttributeName", ""): (a.findtext(q(ns.SAML, "AttributeValue")) or "").strip()
        for a in assertion.iter(q(ns.SAML, "Attribute"))
    }
    return Token(
        etree.tostring(assertion),
        assertion_id,
        not_before,
        not_on_or_after,
        holder_of_key_of(assertion),
        attributes,
    )


def check_token(token: Token) -> str:
    """Refuse a token in which a certified boolean is not true; returns whose token it is:
    "pharmacy" or "ot" (a tarification office)."""
    if CERTIFIED_OT in token.attributes:
        if token.attributes[CERTIFIED_OT] != "true":
            raise TokenRefused("eHealth does not certify a recognised tarification office")
        return "ot"
    for name in REQUIRED_TRUE:
        value = token.attributes.get(name)
        if value != "true":
            what = (
                "a recognised pharmacy" if name == CERTIFIED_RECOGNISED else "linked to the pharmacy's holder"
            )
            raise TokenRefused(
                f"eHealth does not certify {what} ({name.rsplit(':', 2)[-2]} = {value or 'absent'})"
            )
    return "pharmacy"
