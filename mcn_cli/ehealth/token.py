"""Checking an STS token before a session rests on it (STS.md §4 "Validate").

The assertion's own signature must hold, made by a certificate that chains to the STS trust
anchors and carries the STS's name; Issuer, validity window (with clock skew) and holder-of-key
certificate must be the expected ones; every designated attribute must be there, the claimed
ones echoed unchanged, and the certified booleans ``true``. Everything is read from the signed
assertion's own children, never from anywhere below its signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from lxml import etree

from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import ns, saml, xmldsig
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.saml import Attribute
from mcn_cli.ehealth.trust import StsTrust
from mcn_cli.ehealth.xmldsig import Refusal, SignatureInvalid

CLOCK_SKEW = timedelta(minutes=5)


class TokenRefused(Refusal):
    """The token is genuine but does not give the session asked for (a boolean, a missing
    attribute, another holder). English source text with parameters (``as_message()``)."""


@dataclass(frozen=True)
class Token:
    xml: bytes  # the assertion as the STS sent it
    assertion_id: str
    not_before: datetime
    not_on_or_after: datetime
    holder_of_key: x509.Certificate
    attributes: dict[tuple[str, str], str]  # (namespace, name) -> value

    def value(self, name: str, namespace: str = ns.CERTIFIED_NS) -> str | None:
        return self.attributes.get((namespace, name))


def _time(text: str | None) -> datetime:
    from mcn_cli.ehealth.wssec import parse_time

    return parse_time(text)


def verify(data: bytes | etree._Element, trust: StsTrust, now: datetime) -> Token:
    """Signature, signer, Issuer, window and holder-of-key certificate of an assertion."""
    assertion = xmldsig.parse(data) if isinstance(data, bytes) else data
    if assertion.tag != q(ns.SAML, "Assertion"):
        raise SignatureInvalid(N_("not a SAML 1.1 assertion"))
    if (assertion.get("MajorVersion"), assertion.get("MinorVersion")) != ("1", "1"):
        raise SignatureInvalid(N_("not a SAML 1.1 assertion"))
    if any(not isinstance(node.tag, str) for node in assertion.iter()):
        # a comment (or processing instruction, entity) is not signed under exclusive C14N
        # without comments, but would cut the text read around it
        raise SignatureInvalid(N_("the token holds a comment, processing instruction or entity"))
    signature = xmldsig.one(assertion, q(ns.DS, "Signature"), "signature")
    key = xmldsig.one(signature, q(ns.DS, "KeyInfo"), "signature KeyInfo")
    signer = saml.certificate_from(
        key.findtext(f"{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}"), "token signer"
    )
    trust.check_signer(signer, now)
    assertion_id = assertion.get("AssertionID", "")

    def resolve(identifier: str) -> etree._Element:
        if identifier != assertion_id:
            raise SignatureInvalid(N_("the signature does not cover the assertion"))
        return assertion

    xmldsig.verify(signature, resolve, signer.public_key())
    if assertion.get("Issuer") != trust.issuer:
        raise SignatureInvalid(
            N_("the token's Issuer is {issuer!r}, not {expected!r}"),
            issuer=assertion.get("Issuer"),
            expected=trust.issuer,
        )
    conditions = xmldsig.one(assertion, q(ns.SAML, "Conditions"), "Conditions")
    not_before = _time(conditions.get("NotBefore"))
    not_on_or_after = _time(conditions.get("NotOnOrAfter"))
    if not_before > now + CLOCK_SKEW:
        raise SignatureInvalid(N_("the token is not valid yet (check the computer's clock)"))
    if not_on_or_after <= now - CLOCK_SKEW:
        raise SignatureInvalid(N_("the token has expired"))
    authentication = xmldsig.one(assertion, q(ns.SAML, "AuthenticationStatement"), "AuthenticationStatement")
    subject = xmldsig.one(authentication, q(ns.SAML, "Subject"), "authentication Subject")
    confirmation = xmldsig.one(subject, q(ns.SAML, "SubjectConfirmation"), "SubjectConfirmation")
    if confirmation.findtext(q(ns.SAML, "ConfirmationMethod")) != ns.HOLDER_OF_KEY:
        raise SignatureInvalid(N_("the token is not a holder-of-key token"))
    hok_key = xmldsig.one(confirmation, q(ns.DS, "KeyInfo"), "holder-of-key KeyInfo")
    holder_of_key = saml.certificate_from(
        hok_key.findtext(f"{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}"), "holder-of-key"
    )
    attributes: dict[tuple[str, str], str] = {}
    for statement in assertion.findall(q(ns.SAML, "AttributeStatement")):
        for attribute in statement.findall(q(ns.SAML, "Attribute")):
            key_ = (attribute.get("AttributeNamespace", ""), attribute.get("AttributeName", ""))
            if key_ in attributes:
                raise SignatureInvalid(N_("attribute {name} appears twice in the token"), name=key_[1])
            values = attribute.findall(q(ns.SAML, "AttributeValue"))
            attributes[key_] = ";".join((v.text or "").strip() for v in values)
    xml = data if isinstance(data, bytes) else etree.tostring(assertion)
    return Token(xml, assertion_id, not_before, not_on_or_after, holder_of_key, attributes)


def kind_of(token: Token) -> str:
    """ "pharmacy" or "ot", by the certified booleans; TokenRefused when one is not true."""
    kind = "ot" if (ns.CERTIFIED_NS, saml.CERTIFIED_OT) in token.attributes else "pharmacy"
    for key in saml.REQUIRED_TRUE[kind]:
        value = token.attributes.get(key)
        if value != "true":
            raise TokenRefused(
                _MEANING.get(key[1], N_("eHealth does not certify {attribute} ({name} = {value})")),
                attribute=key[1],
                name=key[1].rsplit(":", 2)[-2],
                value=value or "absent",
            )
    return kind


_MEANING = {
    saml.CERTIFIED_RECOGNISED: N_("eHealth does not certify a recognised pharmacy ({name} = {value})"),
    saml.CERTIFIED_LINKED: N_(
        "eHealth does not certify this pharmacist linked to the pharmacy and its holder ({name} = {value})"
    ),
    saml.CERTIFIED_OT: N_("eHealth does not certify a recognised tarification office ({name} = {value})"),
}


def check_session(token: Token, asked: Sequence[Attribute], holder_of_key: x509.Certificate) -> str:
    """The token gives the session asked for: our holder-of-key certificate, every designated
    attribute non-empty, every claim echoed unchanged, the booleans true. Returns the kind."""
    if token.holder_of_key != holder_of_key:
        raise TokenRefused(N_("the token names another holder-of-key certificate than ours"))
    for attribute in asked:
        value = token.attributes.get(attribute.key)
        if not value:
            raise TokenRefused(N_("the token lacks the designated attribute {name}"), name=attribute.name)
        if attribute.value is not None and value != attribute.value:
            raise TokenRefused(
                N_("the token certifies {name} = {value}, not the claimed {claimed}"),
                name=attribute.name,
                value=value,
                claimed=attribute.value,
            )
    return kind_of(token)
