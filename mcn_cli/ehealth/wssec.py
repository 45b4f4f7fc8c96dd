"""WS-Security for SOAP 1.1: sign an envelope (Timestamp + Body) and verify one.

The key is named either by an X.509 BinarySecurityToken or by a reference to a SAML 1.1
assertion carried in the same header (holder-of-key). Verification accepts only a message
whose signed Body is *the* SOAP Body and whose signed Timestamp is *the* header's Timestamp.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import ns, xmldsig
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import Signer
from mcn_cli.ehealth.xmldsig import Reference, SignatureInvalid

WSU_ID = q(ns.WSU, "Id")
DEFAULT_TTL = timedelta(seconds=60)  # what eHealth's clients send (WSS4J's default)
CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(minutes=5)  # the longest Timestamp a client is known to send (egelke)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_time(text: str | None) -> datetime:
    if not text:
        raise SignatureInvalid(N_("a timestamp is missing"))
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SignatureInvalid(N_("bad timestamp {text!r}"), text=text) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def envelope(body_child: etree._Element) -> etree._Element:
    """A SOAP 1.1 envelope with an empty header around ``body_child``."""
    root = etree.Element(q(ns.SOAP, "Envelope"), nsmap={"soapenv": ns.SOAP, "wsu": ns.WSU})
    etree.SubElement(root, q(ns.SOAP, "Header"))
    body = etree.SubElement(root, q(ns.SOAP, "Body"))
    body.append(body_child)
    return root


def _parts(root: etree._Element) -> tuple[etree._Element, etree._Element]:
    if root.tag != q(ns.SOAP, "Envelope"):
        raise SignatureInvalid(N_("not a SOAP 1.1 envelope"))
    headers = root.findall(q(ns.SOAP, "Header"))
    bodies = root.findall(q(ns.SOAP, "Body"))
    if len(headers) != 1 or len(bodies) != 1:
        raise SignatureInvalid(N_("the envelope must have one Header and one Body"))
    if len(list(root.iter(q(ns.SOAP, "Body")))) != 1:
        raise SignatureInvalid(N_("a second Body is hidden in the envelope"))
    return headers[0], bodies[0]


def sign_envelope(
    root: etree._Element,
    signer: Signer,
    *,
    assertion: etree._Element | None = None,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> etree._Element:
    """Add a wsse:Security header signed by ``signer``: Timestamp, then the signer's certificate as
    a BinarySecurityToken (or ``assertion``, which then names the key), then the Signature over
    Body, Timestamp and BinarySecurityToken (STS.md §2)."""
    if root.find(q(ns.SOAP, "Header")) is None:
        root.insert(0, etree.Element(q(ns.SOAP, "Header")))
    header, body = _parts(root)
    now = now or datetime.now(UTC)
    security = etree.Element(q(ns.WSSE, "Security"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    security.set(q(ns.SOAP, "mustUnderstand"), "1")
    header.insert(0, security)
    key_info = etree.Element(q(ns.DS, "KeyInfo"), nsmap={"ds": ns.DS})
    reference = etree.SubElement(key_info, q(ns.WSSE, "SecurityTokenReference"), nsmap={"wsse": ns.WSSE})
    if assertion is not None:
        security.append(assertion)
        reference.set(q(ns.WSSE11, "TokenType"), ns.SAML_TOKEN)
        identifier = etree.SubElement(reference, q(ns.WSSE, "KeyIdentifier"), ValueType=ns.SAML_ID)
        identifier.text = assertion.get("AssertionID")
    timestamp = etree.SubElement(security, q(ns.WSU, "Timestamp"))
    timestamp.set(WSU_ID, f"TS-{uuid.uuid4().hex}")
    etree.SubElement(timestamp, q(ns.WSU, "Created")).text = _time(now)
    etree.SubElement(timestamp, q(ns.WSU, "Expires")).text = _time(now + ttl)
    if assertion is None:
        token = etree.SubElement(
            security, q(ns.WSSE, "BinarySecurityToken"), EncodingType=ns.BASE64, ValueType=ns.X509V3
        )
        token.set(WSU_ID, f"X509-{uuid.uuid4().hex}")
        token.text = base64.b64encode(signer.certificate.public_bytes(serialization.Encoding.DER)).decode()
        etree.SubElement(reference, q(ns.WSSE, "Reference"), URI=f"#{token.get(WSU_ID)}", ValueType=ns.X509V3)
    body.set(WSU_ID, f"id-{uuid.uuid4().hex}")
    references = [Reference(f"#{body.get(WSU_ID)}", body), Reference(f"#{timestamp.get(WSU_ID)}", timestamp)]
    if assertion is None:
        references.append(Reference(f"#{token.get(WSU_ID)}", token))  # real clients sign the BST too
    xmldsig.sign(
        references,
        signer,
        key_info,
        security.append,
        signature_id=f"SIG-{uuid.uuid4().hex}",
    )
    return root


@dataclass(frozen=True)
class Verified:
    """A message whose signature holds: who signed it and what it says."""

    certificate: x509.Certificate  # the signing key's certificate (the holder-of-key one for SAML)
    body: etree._Element
    assertion: etree._Element | None
    created: datetime


def _ids(root: etree._Element) -> None:
    seen: set[str] = set()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for name in (WSU_ID, "Id", "ID", "AssertionID"):
            value = element.get(name)
            if value is None:
                continue
            if value in seen:
                raise SignatureInvalid(N_("the id {value!r} appears twice"), value=value)
            seen.add(value)


def verify_envelope(
    data: bytes | etree._Element,
    *,
    now: datetime | None = None,
    holder_of_key: Callable[[etree._Element], x509.Certificate] | None = None,
    allow_sha1: bool = False,
) -> Verified:
    """Verify a signed envelope. ``holder_of_key`` checks a SAML assertion (issuer signature,
    validity) and returns its holder-of-key certificate; without it SAML-signed messages fail."""
    root = xmldsig.parse(data) if isinstance(data, bytes) else data
    header, body = _parts(root)
    securities = header.findall(q(ns.WSSE, "Security"))
    if len(securities) != 1:
        raise SignatureInvalid(N_("the header must hold one wsse:Security"))
    security = securities[0]
    _ids(root)
    signatures = security.findall(q(ns.DS, "Signature"))
    timestamps = security.findall(q(ns.WSU, "Timestamp"))
    if len(signatures) != 1 or len(timestamps) != 1:
        raise SignatureInvalid(N_("wsse:Security must hold one Signature and one Timestamp"))
    signature, timestamp = signatures[0], timestamps[0]
    now = now or datetime.now(UTC)
    created = parse_time(timestamp.findtext(q(ns.WSU, "Created")))
    expires = parse_time(timestamp.findtext(q(ns.WSU, "Expires")))
    if created > now + CLOCK_SKEW:
        raise SignatureInvalid(N_("the message was created in the future"))
    if expires <= now - CLOCK_SKEW:
        raise SignatureInvalid(N_("the message's timestamp has expired"))
    if expires - created > MAX_AGE:  # with the expiry above, nothing older than 10 min passes
        raise SignatureInvalid(N_("the message's timestamp is too long-lived to prove it is fresh"))

    reference = signature.find(f"{q(ns.DS, 'KeyInfo')}/{q(ns.WSSE, 'SecurityTokenReference')}")
    if reference is None:
        raise SignatureInvalid(N_("the signature names no security token"))
    assertion: etree._Element | None = None
    token: etree._Element | None = None
    direct = reference.find(q(ns.WSSE, "Reference"))
    identifier = reference.find(q(ns.WSSE, "KeyIdentifier"))
    if direct is not None:
        uri = direct.get("URI") or ""
        token = xmldsig.find_by_id(root, WSU_ID, uri.removeprefix("#"))
        if token.getparent() is not security or token.tag != q(ns.WSSE, "BinarySecurityToken"):
            raise SignatureInvalid(N_("the signing token is not a BinarySecurityToken of this header"))
        try:
            certificate = xmldsig.certificate(base64.b64decode("".join((token.text or "").split())))
        except (ValueError, SignatureInvalid):
            raise SignatureInvalid(
                N_("the BinarySecurityToken is not a readable X.509 certificate")
            ) from None
    elif identifier is not None and identifier.get("ValueType") == ns.SAML_ID:
        assertion = xmldsig.find_by_id(root, "AssertionID", (identifier.text or "").strip())
        if assertion.getparent() is not security or holder_of_key is None:
            raise SignatureInvalid(N_("the SAML assertion is not usable here"))
        certificate = holder_of_key(assertion)
    else:
        raise SignatureInvalid(N_("unsupported security token reference"))

    def resolve(identifier_value: str) -> etree._Element:
        return xmldsig.find_by_id(root, WSU_ID, identifier_value)

    signed = xmldsig.verify(signature, resolve, certificate.public_key(), allow_sha1=allow_sha1)
    if not any(element is body for element in signed):
        raise SignatureInvalid(N_("the SOAP Body is not signed"))
    if not any(element is timestamp for element in signed):
        raise SignatureInvalid(N_("the Timestamp is not signed"))
    if token is not None and not any(element is token for element in signed):
        raise SignatureInvalid(N_("the BinarySecurityToken is not signed"))
    return Verified(certificate, body, assertion, created)


def to_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def body_payload(verified: Verified) -> Any:
    children = list(verified.body)
    if len(children) != 1:
        raise SignatureInvalid(N_("the Body must hold one element"))
    return children[0]
