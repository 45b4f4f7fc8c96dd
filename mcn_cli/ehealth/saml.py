"""SAML 1.1 for the eHealth STS: what a session asks for (the attribute table), the holder-of-key
``samlp:Request`` of the SAML variant, and the assertion the STS issues.

Everything here follows ``../shared/docs/STS.md`` §2 and §4 (the eHealth connector's template,
e-Contract and egelke clients, a real acceptance token). The token checks are in ``token.py``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import dn, ns, xmldsig
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import Signer
from mcn_cli.ehealth.xmldsig import Reference, Refusal, SignatureInvalid

MAX_VALIDITY = timedelta(hours=12)
AUTHENTICATION_METHOD = "urn:oasis:names:tc:SAML:1.0:am:X509-PKI"

# A pharmacy session (STS.md §2 table): rows 1-4 are claimed (identification namespace) and
# designated, rows 5-7 designated only (certified namespace).
CLAIM_CERT_HOLDER_SSIN = "urn:be:fgov:ehealth:1.0:certificateholder:person:ssin"
CLAIM_PHARMACY = "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number"
CLAIM_SSIN = "urn:be:fgov:person:ssin"
CLAIM_HOLDER = "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder"
CERTIFIED_RECOGNISED = "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean"
CERTIFIED_HOLDER_NIHII = "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder:certified:nihii11"
CERTIFIED_LINKED = (
    "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:person:ssin:ehealth:1.0:pharmacy-holder:boolean"
)

# A tarification office identifies with its organisation certificate alone. No public source
# gives its attributes (STS.md §7 question 7): these names are mcn's guess, shaped like the
# pharmacy's, and the sandbox's.
CLAIM_OT = "urn:be:fgov:ehealth:1.0:certificateholder:otdpharmacy:nihii-number"
CERTIFIED_OT = "urn:be:fgov:ehealth:1.0:otdpharmacy:nihii-number:recognisedotdpharmacy:boolean"


@dataclass(frozen=True)
class Attribute:
    """One row of what a session asks: designated always, claimed when it has a value."""

    name: str
    namespace: str
    value: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def pharmacy_attributes(user_niss: str, pharmacy_nihii: str, holder_niss: str) -> tuple[Attribute, ...]:
    """The 7 attributes of a pharmacy session, in the connector's order."""
    identification, certified = ns.IDENTIFICATION_NS, ns.CERTIFIED_NS
    return (
        Attribute(CLAIM_CERT_HOLDER_SSIN, identification, user_niss),
        Attribute(CLAIM_PHARMACY, identification, pharmacy_nihii),
        Attribute(CLAIM_SSIN, identification, user_niss),
        Attribute(CLAIM_HOLDER, identification, holder_niss),
        Attribute(CERTIFIED_RECOGNISED, certified),
        Attribute(CERTIFIED_HOLDER_NIHII, certified),
        Attribute(CERTIFIED_LINKED, certified),
    )


def office_attributes(office_nihii: str) -> tuple[Attribute, ...]:
    return (
        Attribute(CLAIM_OT, ns.IDENTIFICATION_NS, office_nihii),
        Attribute(CERTIFIED_OT, ns.CERTIFIED_NS),
    )


# The booleans that must be "true" for a session to be usable, by kind.
REQUIRED_TRUE = {
    "pharmacy": ((ns.CERTIFIED_NS, CERTIFIED_RECOGNISED), (ns.CERTIFIED_NS, CERTIFIED_LINKED)),
    "ot": ((ns.CERTIFIED_NS, CERTIFIED_OT),),
}
KNOWN_NAMESPACES = {a.name: a.namespace for a in (*pharmacy_attributes("", "", ""), *office_attributes(""))}


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_ms(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def der64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


_UNREADABLE = {
    "holder-of-key": N_("the holder-of-key certificate is unreadable"),
    "request signature": N_("the request signature's certificate is unreadable"),
    "token signer": N_("the token signer's certificate is unreadable"),
}


def certificate_from(text: str | None, what: str) -> x509.Certificate:
    """The certificate of base64 ``text``; ``what`` is one of ``_UNREADABLE``'s keys."""
    unreadable = _UNREADABLE.get(what, N_("a certificate in the message is unreadable"))
    try:
        der = base64.b64decode("".join((text or "").split()), validate=True)
    except ValueError:
        raise SignatureInvalid(unreadable) from None
    try:
        return xmldsig.certificate(der)
    except SignatureInvalid:
        raise SignatureInvalid(unreadable) from None


def _attribute(parent: etree._Element, name: str, namespace: str, value: str, *, typed: bool = True) -> None:
    """An Attribute with its value: typed xs:string in a request, plain as eHealth's tokens carry it."""
    attribute = etree.SubElement(
        parent, q(ns.SAML, "Attribute"), AttributeName=name, AttributeNamespace=namespace
    )
    if typed:
        value_element = etree.SubElement(
            attribute, q(ns.SAML, "AttributeValue"), nsmap={"xsi": ns.XSI, "xs": ns.XS}
        )
        value_element.set(q(ns.XSI, "type"), "xs:string")
    else:
        value_element = etree.SubElement(attribute, q(ns.SAML, "AttributeValue"))
    value_element.text = value


def _name_identifier(parent: etree._Element, value: str, qualifier: str) -> None:
    name = etree.SubElement(
        parent, q(ns.SAML, "NameIdentifier"), Format=ns.X509_SUBJECT, NameQualifier=qualifier
    )
    name.text = value


def key_info(certificate: x509.Certificate) -> etree._Element:
    """ds:KeyInfo/ds:X509Data/ds:X509Certificate."""
    info = etree.Element(q(ns.DS, "KeyInfo"), nsmap={"ds": ns.DS})
    data = etree.SubElement(info, q(ns.DS, "X509Data"))
    etree.SubElement(data, q(ns.DS, "X509Certificate")).text = der64(certificate)
    return info


# --- the SAML variant's request ---------------------------------------------------------------


def attribute_query(
    identification: x509.Certificate,
    holder_of_key: x509.Certificate,
    attributes: Sequence[Attribute],
    *,
    now: datetime | None = None,
    validity: timedelta = MAX_VALIDITY,
) -> etree._Element:
    """The unsigned samlp:Request for a holder-of-key token (the connector's legacy template).
    Names are the identification certificate's, in Java's RFC 1779 form."""
    now = now or datetime.now(UTC)
    subject, issuer = dn.rfc1779(identification.subject), dn.rfc1779(identification.issuer)
    request = etree.Element(
        q(ns.SAMLP, "Request"),
        nsmap={"samlp": ns.SAMLP, "saml": ns.SAML, "ds": ns.DS},
        IssueInstant=_time(now),
        MajorVersion="1",
        MinorVersion="1",
        RequestID=f"request-{uuid.uuid4()}",
    )
    query = etree.SubElement(request, q(ns.SAMLP, "AttributeQuery"))
    query_subject = etree.SubElement(query, q(ns.SAML, "Subject"))
    _name_identifier(query_subject, subject, issuer)
    confirmation = etree.SubElement(query_subject, q(ns.SAML, "SubjectConfirmation"))
    etree.SubElement(confirmation, q(ns.SAML, "ConfirmationMethod")).text = ns.HOLDER_OF_KEY
    data = etree.SubElement(confirmation, q(ns.SAML, "SubjectConfirmationData"))
    inner = etree.SubElement(
        data,
        q(ns.SAML, "Assertion"),
        AssertionID=f"assertion-{uuid.uuid4()}",
        IssueInstant=_time(now),
        Issuer=subject,
        MajorVersion="1",
        MinorVersion="1",
    )
    etree.SubElement(
        inner, q(ns.SAML, "Conditions"), NotBefore=_time(now), NotOnOrAfter=_time(now + validity)
    )
    statement = etree.SubElement(inner, q(ns.SAML, "AttributeStatement"))
    _name_identifier(etree.SubElement(statement, q(ns.SAML, "Subject")), subject, issuer)
    for attribute in attributes:
        if attribute.value is not None:
            _attribute(statement, attribute.name, attribute.namespace, attribute.value)
    confirmation.append(key_info(holder_of_key))
    for attribute in attributes:
        etree.SubElement(
            query,
            q(ns.SAML, "AttributeDesignator"),
            AttributeName=attribute.name,
            AttributeNamespace=attribute.namespace,
        )
    return request


def sign_request(request: etree._Element, signer: Signer, certificate: x509.Certificate) -> None:
    """The enveloped signature by the holder-of-key key, first child, KeyInfo = its certificate."""
    xmldsig.sign(
        [Reference(f"#{request.get('RequestID')}", request, enveloped=True)],
        signer,
        key_info(certificate),
        lambda signature: request.insert(0, signature),
    )


class ClaimRefused(Refusal):
    """The STS side: a request whose claims the STS will not certify (a SAML error status). Its
    text goes over the wire as the sandbox STS's status message: English, never translated."""


@dataclass(frozen=True)
class Claimed:
    """What a request asks, as the STS reads it (either variant)."""

    context: str  # the RequestID (SAML) or the Context (WS-Trust)
    identification_subject: str  # as the client wrote it
    holder_of_key: x509.Certificate
    claims: dict[str, str]  # by attribute name
    designators: tuple[tuple[str, str | None], ...]  # (name, namespace; None when not sent)
    not_on_or_after: datetime | None = None
    identification_issuer: str = ""  # the NameQualifier (SAML variant)


def read_query(request: etree._Element) -> Claimed:
    """The STS side: read a signed-over samlp:Request (direct children only)."""
    query = xmldsig.one(request, q(ns.SAMLP, "AttributeQuery"), "AttributeQuery")
    subject = xmldsig.one(query, q(ns.SAML, "Subject"), "Subject")
    confirmation = xmldsig.one(subject, q(ns.SAML, "SubjectConfirmation"), "SubjectConfirmation")
    if confirmation.findtext(q(ns.SAML, "ConfirmationMethod")) != ns.HOLDER_OF_KEY:
        raise SignatureInvalid(N_("only holder-of-key tokens are issued"))
    key = xmldsig.one(confirmation, q(ns.DS, "KeyInfo"), "holder-of-key KeyInfo")
    hok = certificate_from(
        key.findtext(f"{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}"), "holder-of-key"
    )
    data = xmldsig.one(confirmation, q(ns.SAML, "SubjectConfirmationData"), "SubjectConfirmationData")
    inner = xmldsig.one(data, q(ns.SAML, "Assertion"), "claims assertion")
    claims: dict[str, str] = {}
    for statement in inner.findall(q(ns.SAML, "AttributeStatement")):
        for attribute in statement.findall(q(ns.SAML, "Attribute")):
            name = attribute.get("AttributeName", "")
            if attribute.get("AttributeNamespace") != ns.IDENTIFICATION_NS:
                raise ClaimRefused("claim {name} is not in the identification namespace", name=name)
            if name in claims:
                raise ClaimRefused("claim {name} is made twice", name=name)
            claims[name] = (attribute.findtext(q(ns.SAML, "AttributeValue")) or "").strip()
    designators = tuple(
        (d.get("AttributeName", ""), d.get("AttributeNamespace"))
        for d in query.findall(q(ns.SAML, "AttributeDesignator"))
    )
    name = xmldsig.one(subject, q(ns.SAML, "NameIdentifier"), "NameIdentifier")
    return Claimed(
        request.get("RequestID", ""),
        (name.text or "").strip(),
        hok,
        claims,
        designators,
        identification_issuer=name.get("NameQualifier", ""),
    )


def verify_request_signature(request: etree._Element, certificate: x509.Certificate) -> None:
    """The STS side: the request's enveloped signature holds, made by ``certificate``, which its
    KeyInfo names (as every real client sends it)."""
    signature = request.find(q(ns.DS, "Signature"))
    if signature is None:
        raise SignatureInvalid(N_("the request is not signed with the holder-of-key key"))
    named = signature.findtext(f"{q(ns.DS, 'KeyInfo')}/{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}")
    if named is None:
        raise SignatureInvalid(N_("the request signature has no KeyInfo with the holder-of-key certificate"))
    if certificate_from(named, "request signature") != certificate:
        raise SignatureInvalid(N_("the request is signed with another key than the holder-of-key one"))

    def resolve(identifier: str) -> etree._Element:
        if request.get("RequestID") != identifier:
            raise SignatureInvalid(N_("the request signature does not cover the request"))
        return request

    xmldsig.verify(signature, resolve, certificate.public_key())


# --- the STS side: issuing an assertion shaped like eHealth's ----------------------------------


@dataclass(frozen=True)
class Subject:
    """Whom a token is about: the identification certificate's names, as tokens carry them."""

    name: str
    qualifier: str

    @classmethod
    def of(cls, certificate: x509.Certificate) -> Subject:
        return cls(dn.java_string(certificate.subject), dn.java_string(certificate.issuer))


def issue_assertion(
    signer: Signer,
    signer_certificate: x509.Certificate,
    subject: Subject,
    holder_of_key: x509.Certificate,
    attributes: Sequence[tuple[str, str, str]],
    *,
    now: datetime,
    not_before: datetime,
    not_on_or_after: datetime,
    issuer: str,
) -> etree._Element:
    """A signed assertion: Conditions, AuthenticationStatement (holder-of-key), AttributeStatement
    (``attributes`` as (namespace, name, value), in order), Signature with the signer's certificate."""
    assertion_id = f"_{uuid.uuid4().hex}"
    assertion = etree.Element(
        q(ns.SAML, "Assertion"),
        nsmap={"saml": ns.SAML},
        AssertionID=assertion_id,
        IssueInstant=_time_ms(now),
        Issuer=issuer,
        MajorVersion="1",
        MinorVersion="1",
    )
    etree.SubElement(
        assertion,
        q(ns.SAML, "Conditions"),
        NotBefore=_time_ms(not_before),
        NotOnOrAfter=_time_ms(not_on_or_after),
    )
    authentication = etree.SubElement(
        assertion,
        q(ns.SAML, "AuthenticationStatement"),
        AuthenticationInstant=_time_ms(now),
        AuthenticationMethod=AUTHENTICATION_METHOD,
    )
    authenticated = etree.SubElement(authentication, q(ns.SAML, "Subject"))
    _name_identifier(authenticated, subject.name, subject.qualifier)
    confirmation = etree.SubElement(authenticated, q(ns.SAML, "SubjectConfirmation"))
    etree.SubElement(confirmation, q(ns.SAML, "ConfirmationMethod")).text = ns.HOLDER_OF_KEY
    confirmation.append(key_info(holder_of_key))
    statement = etree.SubElement(assertion, q(ns.SAML, "AttributeStatement"))
    _name_identifier(etree.SubElement(statement, q(ns.SAML, "Subject")), subject.name, subject.qualifier)
    for namespace, name, value in attributes:
        _attribute(statement, name, namespace, value, typed=False)
    xmldsig.sign(
        [Reference(f"#{assertion_id}", assertion, enveloped=True)],
        signer,
        key_info(signer_certificate),
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
