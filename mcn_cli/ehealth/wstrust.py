"""WS-Trust 1.3 messages of eHealth's STS (``/IAM/SecurityTokenService/v1``, STS.md §3).

The request (RST) asks for a SAML 1.1 holder-of-key token: claims as ``auth:ClaimType`` (with
``auth:Value`` for the claimed ones, no namespaces), the lifetime, ``PublicKey`` as key type and
the holder-of-key certificate as ``UseKey``. When that certificate is not the one that signed the
request, the STS answers with a ``SignChallenge``; the client echoes the challenge signed with the
holder-of-key key, and the STS then returns the token in ``RequestedSecurityToken``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from lxml import etree

from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import ns, saml, xmldsig
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.saml import Attribute, Claimed
from mcn_cli.ehealth.xmldsig import SignatureInvalid

WST = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
AUTH = "http://docs.oasis-open.org/wsfed/authorization/200706"
CLAIMS_DIALECT = "http://docs.oasis-open.org/wsfed/authorization/200706/authclaims"
ISSUE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue"
RENEW = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Renew"
PUBLIC_KEY = "http://docs.oasis-open.org/ws-sx/wstrust/200512/PublicKey"  # sic: "wstrust", as sent
SOAP_ACTION = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecurityToken"
CHALLENGE_ACTION = "urn:be:fgov:ehealth:sts:protocol:v1:Challenge"


def _time(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def issue_request(
    holder_of_key: x509.Certificate,
    attributes: Sequence[Attribute],
    *,
    now: datetime | None = None,
    validity: timedelta = saml.MAX_VALIDITY,
) -> etree._Element:
    """The RequestSecurityToken body (the connector's wstrust template, children in its order)."""
    now = now or datetime.now(UTC)
    request = etree.Element(
        q(WST, "RequestSecurityToken"),
        nsmap={"wst": WST, "auth": AUTH, "wsu": ns.WSU, "wsse": ns.WSSE, "ds": ns.DS},
        Context=f"urn:uuid:{uuid.uuid4()}",
    )
    etree.SubElement(request, q(WST, "TokenType")).text = ns.SAML_TOKEN
    etree.SubElement(request, q(WST, "RequestType")).text = ISSUE
    claims = etree.SubElement(request, q(WST, "Claims"), Dialect=CLAIMS_DIALECT)
    for attribute in attributes:
        claim = etree.SubElement(claims, q(AUTH, "ClaimType"), Uri=attribute.name)
        if attribute.value is not None:
            etree.SubElement(claim, q(AUTH, "Value")).text = attribute.value
    lifetime = etree.SubElement(request, q(WST, "Lifetime"))
    etree.SubElement(lifetime, q(ns.WSU, "Created")).text = _time(now)
    etree.SubElement(lifetime, q(ns.WSU, "Expires")).text = _time(now + validity)
    etree.SubElement(request, q(WST, "KeyType")).text = PUBLIC_KEY
    use_key = etree.SubElement(request, q(WST, "UseKey"))
    reference = etree.SubElement(use_key, q(ns.WSSE, "SecurityTokenReference"))
    data = etree.SubElement(reference, q(ns.DS, "X509Data"))
    etree.SubElement(data, q(ns.DS, "X509Certificate")).text = saml.der64(holder_of_key)
    return request


def renew_request(assertion: etree._Element) -> etree._Element:
    """A Renew request for ``assertion``, embedded as it is (the connector's renew template)."""
    request = etree.Element(
        q(WST, "RequestSecurityToken"),
        nsmap={"wst": WST, "wsu": ns.WSU, "wsse": ns.WSSE},
        Context=f"urn:uuid:{uuid.uuid4()}",
    )
    etree.SubElement(request, q(WST, "TokenType")).text = ns.SAML_TOKEN
    etree.SubElement(request, q(WST, "RequestType")).text = RENEW
    target = etree.SubElement(request, q(WST, "RenewTarget"))
    reference = etree.SubElement(target, q(ns.WSSE, "SecurityTokenReference"))
    etree.SubElement(reference, q(ns.WSSE, "Embedded")).append(assertion)
    return request


def challenge_answer(context: str, challenge: str) -> etree._Element:
    """The reply to a SignChallenge: the same Context and challenge (signed by the caller)."""
    answer = etree.Element(q(WST, "RequestSecurityTokenResponse"), nsmap={"wst": WST}, Context=context)
    response = etree.SubElement(answer, q(WST, "SignChallengeResponse"))
    etree.SubElement(response, q(WST, "Challenge")).text = challenge
    return answer


@dataclass(frozen=True)
class Challenge:
    context: str
    challenge: str


def read_challenge(body_child: etree._Element) -> Challenge | None:
    """The STS's SignChallenge, when its answer is one."""
    if body_child.tag != q(WST, "RequestSecurityTokenResponse"):
        return None
    sign = body_child.find(q(WST, "SignChallenge"))
    if sign is None:
        return None
    challenge = sign.findtext(q(WST, "Challenge"))
    if not challenge:
        raise SignatureInvalid(N_("the STS's challenge is empty"))
    return Challenge(body_child.get("Context", ""), challenge)


def read_challenge_answer(body_child: etree._Element) -> Challenge:
    """The STS side: the client's SignChallengeResponse."""
    if body_child.tag != q(WST, "RequestSecurityTokenResponse"):
        raise SignatureInvalid(N_("the challenge answer is not a RequestSecurityTokenResponse"))
    response = body_child.find(q(WST, "SignChallengeResponse"))
    challenge = None if response is None else response.findtext(q(WST, "Challenge"))
    if not challenge:
        raise SignatureInvalid(N_("the challenge answer holds no challenge"))
    return Challenge(body_child.get("Context", ""), challenge)


def request_type(request: etree._Element) -> str:
    """The STS side: Issue or Renew (anything else is refused)."""
    if request.tag != q(WST, "RequestSecurityToken"):
        raise SignatureInvalid(N_("the body is not a wst:RequestSecurityToken"))
    if xmldsig.one(request, q(WST, "TokenType"), "TokenType").text != ns.SAML_TOKEN:
        raise SignatureInvalid(N_("only SAML 1.1 tokens are issued"))
    kind = xmldsig.one(request, q(WST, "RequestType"), "RequestType").text
    if kind not in (ISSUE, RENEW):
        raise SignatureInvalid(N_("only Issue and Renew requests are served"))
    return kind


def renew_target(request: etree._Element) -> etree._Element:
    """The STS side: the assertion a Renew request embeds."""
    target = xmldsig.one(request, q(WST, "RenewTarget"), "RenewTarget")
    reference = xmldsig.one(target, q(ns.WSSE, "SecurityTokenReference"), "RenewTarget reference")
    embedded = xmldsig.one(reference, q(ns.WSSE, "Embedded"), "Embedded token")
    return xmldsig.one(embedded, q(ns.SAML, "Assertion"), "embedded assertion")


def read_request(request: etree._Element) -> Claimed:
    """The STS side: read an RST for a SAML 1.1 holder-of-key token (direct children only)."""
    if request_type(request) != ISSUE:
        raise SignatureInvalid(N_("not an Issue request"))
    if xmldsig.one(request, q(WST, "KeyType"), "KeyType").text != PUBLIC_KEY:
        raise SignatureInvalid(N_("only holder-of-key (PublicKey) tokens are issued"))
    reference = xmldsig.one(
        xmldsig.one(request, q(WST, "UseKey"), "UseKey"),
        q(ns.WSSE, "SecurityTokenReference"),
        "UseKey reference",
    )
    encoded = reference.findtext(f"{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}")
    hok = saml.certificate_from(encoded, "holder-of-key")
    claims: dict[str, str] = {}
    designators: list[tuple[str, str | None]] = []
    for claim in xmldsig.one(request, q(WST, "Claims"), "Claims").findall(q(AUTH, "ClaimType")):
        name = claim.get("Uri", "")
        designators.append((name, None))
        values = claim.findall(q(AUTH, "Value"))
        if values:
            claims[name] = ";".join((v.text or "").strip() for v in values)
    lifetime = xmldsig.one(request, q(WST, "Lifetime"), "Lifetime")
    from mcn_cli.ehealth.wssec import parse_time

    expires = parse_time(lifetime.findtext(q(ns.WSU, "Expires")))
    return Claimed(request.get("Context", ""), "", hok, claims, tuple(designators), expires)


def issued(context: str, assertion: etree._Element) -> etree._Element:
    """The STS's final answer: the token inside RequestedSecurityToken."""
    answer = etree.Element(q(WST, "RequestSecurityTokenResponse"), nsmap={"wst": WST}, Context=context)
    etree.SubElement(answer, q(WST, "TokenType")).text = ns.SAML_TOKEN
    etree.SubElement(answer, q(WST, "RequestedSecurityToken")).append(assertion)
    return answer


def sign_challenge(context: str, challenge: str) -> etree._Element:
    """The STS side: ask the caller to prove the holder-of-key key."""
    answer = etree.Element(q(WST, "RequestSecurityTokenResponse"), nsmap={"wst": WST}, Context=context)
    sign = etree.SubElement(answer, q(WST, "SignChallenge"))
    etree.SubElement(sign, q(WST, "Challenge")).text = challenge
    return answer


def requested_token(body_child: etree._Element) -> etree._Element:
    """The client side: the assertion inside the final answer (also inside a collection)."""
    responses = (
        body_child.findall(q(WST, "RequestSecurityTokenResponse"))
        if body_child.tag == q(WST, "RequestSecurityTokenResponseCollection")
        else [body_child]
    )
    if len(responses) != 1 or responses[0].tag != q(WST, "RequestSecurityTokenResponse"):
        raise SignatureInvalid(N_("the STS answered without a RequestSecurityTokenResponse"))
    requested = responses[0].findall(q(WST, "RequestedSecurityToken"))
    if len(requested) != 1:
        raise SignatureInvalid(N_("the STS's answer holds no RequestedSecurityToken"))
    assertions = requested[0].findall(q(ns.SAML, "Assertion"))
    if len(assertions) != 1:
        raise SignatureInvalid(N_("the STS's answer holds no SAML 1.1 assertion"))
    return assertions[0]
