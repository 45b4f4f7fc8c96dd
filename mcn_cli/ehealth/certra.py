"""eHealth's certificate registration services: CertRA v2, EtkRA v2 and the ETK depot v1
(CERTRA.md). One implementation of the messages for the client and the sandbox.

A CertRA/EtkRA request is the SOAP Body's only element, with no WS-Security: when the service
wants to know who asks, the request carries an enveloped XML signature as its last child
(RSA-SHA256 or ECDSA-SHA256, exclusive C14N, SHA-256, Reference ``#<Id>``, KeyInfo/X509Data with
the signer's certificate; CERTRA.md §1). Which key signs is the caller's business: the eID
Authentication key, the eID Signature key, or the new eHealth certificate's key.
"""

from __future__ import annotations

import base64
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from lxml import etree

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import ns, xmldsig
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import Signer
from mcn_cli.ehealth.xmldsig import Reference, SignatureInvalid

# --- namespaces, paths, actions (CERTRA.md §1) ----------------------------------------------------

CERTRA = "urn:be:fgov:ehealth:certra:protocol:v2"
CERTRA_CORE = "urn:be:fgov:ehealth:certra:core:v2"
ETKRA = "urn:be:fgov:ehealth:etkra:protocol:v2"
ETEE = "urn:be:fgov:ehealth:etee:commons:core:v2"
COMMONS = "urn:be:fgov:ehealth:commons:core:v2"
PROTOCOL = "urn:be:fgov:ehealth:commons:protocol:v2"
ETKDEPOT = "urn:be:fgov:ehealth:etkdepot:1_0:protocol"
COMMONS1 = "urn:be:fgov:ehealth:commons:1_0:core"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

SUCCESS = "urn:be:fgov:ehealth:2.0:status:Success"
REQUESTER = "urn:be:fgov:ehealth:2.0:status:Requester"
RESPONDER = "urn:be:fgov:ehealth:2.0:status:Responder"
DEPOT_SUCCESS = "200"

CERTRA_PATH = "/CertRa/v2"
ETKRA_PATH = "/EtkRa/v2"
ETKDEPOT_PATH = "/EtkDepot/v1"

_CERTRA_ACTION = "urn:be:fgov:ehealth:certra:protocol:v2:"
_ETEE_CERTRA_ACTION = "urn:be:fgov:ehealth:etee:certra:protocol:v2:"
_ETKRA_ACTION = "urn:be:fgov:ehealth:etee:etkra:protocol:v2:"
# The SOAPActions as eHealth's connector sends them, verbatim (RaUtils; casing inconsistent).
ACTIONS = {
    "GetCertificateInfoForCitizenRequest": _CERTRA_ACTION + "getCertificateInfoForCitizen",
    "GenerateContractRequest": _CERTRA_ACTION + "generateContract",
    "GenerateRevocationContractRequest": _CERTRA_ACTION + "generateRevocationContract",
    "GenerateCertificateRequest": _ETEE_CERTRA_ACTION + "generatecertificate",
    "GetCertificateRequest": _ETEE_CERTRA_ACTION + "getcertificate",
    "RevokeRequest": _ETEE_CERTRA_ACTION + "revoke",
    "StartETKRegistrationRequest": _ETKRA_ACTION + "startETKRegistration",
    "CompleteETKRegistrationRequest": _ETKRA_ACTION + "completeETKregistration",
    "ActivateETKRequest": _ETKRA_ACTION + "activateETK",
    # EtkDepot-v1.wsdl (e-Contract mycarenet-ehealth-etk): soap:operation soapAction=""
    "GetEtkRequest": "",
}

REVOCATION_REASONS = ("keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation")
BASE_SERVICES = ("tsa", "consultrn", "codage", "other")
APPLICATION_ID = re.compile(r"[0-9A-Z_-]{1,30}")
NOT_YET_DELIVERED = "CERT_NOT_YET_DELIVERED"

# Identifier types of the actors mcn registers (FH IdentifierType.java)
SSIN = "SSIN"
PHARMACY = "NIHII-PHARMACY"
OFFICE = "NIHII-OTD_PHARMACY"
CERTRA_TYPES = (SSIN, PHARMACY, OFFICE)


class CertRaError(Exception):
    """A non-success status from CertRA/EtkRA/the depot: the code and message kept as sent."""

    def __init__(self, code: str, message: str, status: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# --- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """commons ActorType: one Id (Type, value), optional first names, a name."""

    type: str
    value: str
    name: str
    first_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contact:
    email: str
    phone: str
    email_general: str | None = None
    phone_general: str | None = None


@dataclass(frozen=True)
class Contract:
    """A GenerateContract or GenerateRevocationContract answer's Contract, kept as sent (the
    element is sent back as is) with what mcn reads of it."""

    element: etree._Element
    dn: str
    signer: Actor
    texts: dict[str, str]  # xml:lang -> HTML
    reason: str | None = None

    def text(self, language: str) -> tuple[str, str]:
        """The (language, HTML) to show: the user's language, else French, Dutch, any."""
        for wanted in (language, "fr", "nl", "en"):
            if wanted in self.texts:
                return wanted, self.texts[wanted]
        lang = next(iter(self.texts))
        return lang, self.texts[lang]


@dataclass(frozen=True)
class Registered:
    public_key_identifier: str
    automatically_validated: bool
    replaces: str | None


@dataclass(frozen=True)
class CertificateInfo:
    public_key_identifier: str
    requested: datetime
    actor: Actor
    application_id: str | None
    entity_type: str | None
    status: str
    etk_status: str
    automatically_validated: bool
    revocable: bool
    replaceable: bool
    replacement_start: datetime | None
    serial: str | None = None
    dn: str | None = None
    issuer_dn: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    contact: Contact | None = None
    services: tuple[str, ...] = field(default=())


# --- building ----------------------------------------------------------------------------------


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def new_id() -> str:
    return "_" + uuid.uuid4().hex


def request(namespace: str, name: str, now: datetime | None = None) -> etree._Element:
    """An empty request element (commons RequestType: Id and IssueInstant)."""
    element = etree.Element(q(namespace, name), nsmap={None: namespace})
    element.set("Id", new_id())
    element.set("IssueInstant", _time(now or datetime.now(UTC)))
    return element


def child(parent: etree._Element, namespace: str, name: str, text: str | None = None) -> etree._Element:
    """A child element in ``namespace``, with ``text`` when given (client and sandbox build with it)."""
    element = etree.SubElement(parent, q(namespace, name))
    if text is not None:
        element.text = text
    return element


def add_actor(parent: etree._Element, name: str, actor: Actor, namespace: str) -> etree._Element:
    """``name`` of commons ActorType in ``namespace``: its Id, FirstName* and Name are commons'."""
    element = child(parent, namespace, name)
    child(element, COMMONS, "Id", actor.value).set("Type", actor.type)
    for first in actor.first_names:
        child(element, COMMONS, "FirstName", first)
    child(element, COMMONS, "Name", actor.name)
    return element


def add_contact(parent: etree._Element, contact: Contact, namespace: str) -> None:
    element = child(parent, namespace, "ContactData")
    child(element, CERTRA_CORE, "EmailPrivate", contact.email)
    if contact.email_general:
        child(element, CERTRA_CORE, "EmailGeneral", contact.email_general)
    child(element, CERTRA_CORE, "PhonePrivate", contact.phone)
    if contact.phone_general:
        child(element, CERTRA_CORE, "PhoneGeneral", contact.phone_general)


def generate_contract(
    contact: Contact, signer: Actor, actor: Actor, application_id: str | None = None
) -> etree._Element:
    element = request(CERTRA, "GenerateContractRequest")
    add_contact(element, contact, CERTRA)
    add_actor(element, "Signer", signer, CERTRA)
    identifier = child(element, CERTRA, "CertificateIdentifier")
    add_actor(identifier, "Actor", actor, CERTRA_CORE)
    if application_id:
        child(identifier, CERTRA_CORE, "ApplicationId", application_id)
    return element


def _echo(parent: etree._Element, contract: etree._Element) -> None:
    """The contract as it was returned, renamed into the place the request wants it."""
    import copy

    echoed = copy.deepcopy(contract)
    echoed.tag = q(CERTRA_CORE if parent.tag == q(CERTRA, "EHealthCSR") else CERTRA, "Contract")
    parent.append(echoed)


def generate_certificate(
    contact: Contact, csr_der: bytes, contract: Contract, services: Sequence[str] = ()
) -> etree._Element:
    element = request(CERTRA, "GenerateCertificateRequest")
    csr = child(element, CERTRA, "EHealthCSR")
    add_contact(csr, contact, CERTRA_CORE)
    child(csr, CERTRA_CORE, "CSR", base64.b64encode(csr_der).decode())
    _echo(csr, contract.element)
    for service in services:
        child(csr, CERTRA_CORE, "BaseServiceUsage", service)
    return element


def get_certificate(public_key_identifier: str) -> etree._Element:
    element = request(CERTRA, "GetCertificateRequest")
    child(element, CERTRA, "PublicKeyIdentifier", public_key_identifier)
    return element


def info_for_citizen() -> etree._Element:
    return request(CERTRA, "GetCertificateInfoForCitizenRequest")


def generate_revocation_contract(public_key_identifier: str, signer: Actor, reason: str) -> etree._Element:
    if reason not in REVOCATION_REASONS:
        raise InvalidInput(
            "reason",
            "choice",
            N_("must be one of {choices}, got {value!r}"),
            choices=", ".join(REVOCATION_REASONS),
            value=reason,
        )
    element = request(CERTRA, "GenerateRevocationContractRequest")
    child(element, CERTRA, "PublicKeyIdentifier", public_key_identifier)
    add_actor(element, "Signer", signer, CERTRA)
    child(element, CERTRA, "RevocationReason", reason)
    return element


def revoke(public_key_identifier: str, contract: Contract) -> etree._Element:
    element = request(CERTRA, "RevokeRequest")
    child(element, CERTRA, "PublicKeyIdentifier", public_key_identifier)
    _echo(element, contract.element)
    return element


def start_etk(public_key_der: bytes) -> etree._Element:
    element = request(ETKRA, "StartETKRegistrationRequest")
    child(element, ETKRA, "PublicEncryptionKey", base64.b64encode(public_key_der).decode())
    return element


def complete_etk(certificate_der: bytes) -> etree._Element:
    element = request(ETKRA, "CompleteETKRegistrationRequest")
    child(element, ETKRA, "ToBeRegistered", base64.b64encode(certificate_der).decode())
    return element


def activate_etk() -> etree._Element:
    return request(ETKRA, "ActivateETKRequest")


def get_etk(type_: str, value: str, application_id: str | None = None) -> etree._Element:
    """The depot's v1 request: no Id, no IssueInstant (commons 1.0 RequestType is empty)."""
    element = etree.Element(q(ETKDEPOT, "GetEtkRequest"), nsmap={None: ETKDEPOT})
    criteria = child(element, ETKDEPOT, "SearchCriteria")
    identifier = child(criteria, ETKDEPOT, "Identifier")
    child(identifier, ETKDEPOT, "Type", type_)
    child(identifier, ETKDEPOT, "Value", value)
    if application_id:
        child(identifier, ETKDEPOT, "ApplicationID", application_id)
    return element


# --- the enveloped signature ---------------------------------------------------------------------


def sign(element: etree._Element, signer: Signer, chain: Sequence[x509.Certificate] = ()) -> etree._Element:
    """Append the enveloped ds:Signature over the whole request (Reference ``#<Id>``) as its last
    child; KeyInfo/X509Data holds the signer's certificate then its chain."""
    key_info = etree.Element(q(ns.DS, "KeyInfo"))
    data = etree.SubElement(key_info, q(ns.DS, "X509Data"))
    for certificate in (signer.certificate, *chain):
        etree.SubElement(data, q(ns.DS, "X509Certificate")).text = base64.b64encode(
            certificate.public_bytes(serialization.Encoding.DER)
        ).decode()
    xmldsig.sign(
        [Reference("#" + element.get("Id", ""), element, enveloped=True)], signer, key_info, element.append
    )
    return element


def verify(element: etree._Element) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Check a request's enveloped signature (the last child, over the whole request by its Id);
    returns the signer's certificate and the rest of KeyInfo's chain, or raises SignatureInvalid."""
    signatures = element.findall(q(ns.DS, "Signature"))
    children = [c for c in element if isinstance(c.tag, str)]
    if len(signatures) != 1 or children[-1] is not signatures[0]:
        raise SignatureInvalid("the request must end with one enveloped ds:Signature")
    signature = signatures[0]
    if len(list(element.iter(q(ns.DS, "Signature")))) != 1:
        raise SignatureInvalid("a second ds:Signature is hidden in the request")
    request_id = element.get("Id") or ""
    references = signature.findall(f"{q(ns.DS, 'SignedInfo')}/{q(ns.DS, 'Reference')}")
    if len(references) != 1 or references[0].get("URI") != "#" + request_id or not request_id:
        raise SignatureInvalid("the signature must reference the whole request by its Id")
    if not any(t.get("Algorithm") == ns.ENVELOPED for t in references[0].iter(q(ns.DS, "Transform"))):
        raise SignatureInvalid("the request's signature must be enveloped")
    texts = [
        (c.text or "").strip()
        for c in signature.findall(
            f"{q(ns.DS, 'KeyInfo')}/{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}"
        )
    ]
    if not texts:
        raise SignatureInvalid("the signature's KeyInfo carries no X509Certificate")
    try:
        certificates = [
            xmldsig.certificate(base64.b64decode("".join(t.split()), validate=True)) for t in texts
        ]
    except ValueError:
        raise SignatureInvalid("an X509Certificate is not base64") from None

    def resolve(value: str) -> etree._Element:
        if value != request_id:
            raise SignatureInvalid(f"the reference #{value} is not the request")
        return element

    xmldsig.verify(signature, resolve, certificates[0].public_key())
    return certificates[0], certificates[1:]


# --- reading answers ---------------------------------------------------------------------------


def check_status(answer: etree._Element) -> None:
    """Raise CertRaError unless the answer's commons Status is Success: the first EteeStatusDetail
    error's Code and Message when there is one (CERT_NOT_YET_DELIVERED first when it is among
    them), else the status code and message."""
    status = answer.find(q(COMMONS, "Status"))
    if status is None:
        raise CertRaError("NO_STATUS", "the answer carries no Status")
    code = status.find(q(COMMONS, "StatusCode"))
    value = code.get("Value", "") if code is not None else ""
    if value == SUCCESS:
        return
    message = (status.findtext(q(COMMONS, "StatusMessage")) or "").strip()
    errors = status.findall(f"{q(COMMONS, 'StatusDetail')}/{q(ETEE, 'EteeStatusDetail')}/Errors")
    # CERT_NOT_YET_DELIVERED wherever it stands among the errors (the connector looks at them all)
    pending = [e for e in errors if (e.findtext("Code") or "").strip() == NOT_YET_DELIVERED]
    error = (pending or errors or [None])[0]
    if error is not None:
        raise CertRaError(
            (error.findtext("Code") or "").strip(), (error.findtext("Message") or message).strip(), value
        )
    raise CertRaError(value.rsplit(":", 1)[-1] or "UNKNOWN", message, value)


def _actor(element: etree._Element) -> Actor:
    ident = element.find(q(COMMONS, "Id"))
    if ident is None:
        raise CertRaError("MALFORMED", "an actor without Id")
    return Actor(
        ident.get("Type", ""),
        (ident.text or "").strip(),
        (element.findtext(q(COMMONS, "Name")) or "").strip(),
        tuple((f.text or "").strip() for f in element.findall(q(COMMONS, "FirstName"))),
    )


def read_contract(answer: etree._Element) -> Contract:
    check_status(answer)
    element = answer.find(q(answer.tag.split("}")[0][1:], "Contract"))
    if element is None:
        raise CertRaError("MALFORMED", "the answer carries no Contract")
    signer = element.find(q(CERTRA_CORE, "Signer"))
    text = element.find(q(CERTRA_CORE, "Text"))
    dn_text = element.findtext(q(CERTRA_CORE, "DN"))
    if signer is None or text is None or dn_text is None:
        raise CertRaError("MALFORMED", "the Contract lacks DN, Signer or Text")
    texts = {v.get(XML_LANG, ""): v.text or "" for v in text.findall(q(CERTRA_CORE, "Value"))}
    if not texts:
        raise CertRaError("MALFORMED", "the Contract has no text to show")
    reason = element.findtext(q(CERTRA_CORE, "RevocationReason"))
    return Contract(element, dn_text, _actor(signer), texts, reason)


def _bool(text: str | None) -> bool:
    return (text or "").strip() in ("true", "1")


def read_registered(answer: etree._Element) -> Registered:
    check_status(answer)
    pki = answer.findtext(q(CERTRA, "PublicKeyIdentifier"))
    if not pki:
        raise CertRaError("MALFORMED", "the answer carries no PublicKeyIdentifier")
    replaces = answer.findtext(q(CERTRA, "ReplacesCertificate"))
    return Registered(
        pki.strip().upper(), _bool(answer.findtext(q(CERTRA, "AutomaticallyValidated"))), replaces
    )


def read_certificates(answer: etree._Element) -> list[x509.Certificate]:
    check_status(answer)
    found = [
        x509.load_der_x509_certificate(base64.b64decode("".join((e.text or "").split())))
        for e in answer.findall(q(CERTRA, "X509Certificate"))
    ]
    if not found:
        raise CertRaError("MALFORMED", "the answer carries no certificate")
    return found


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def read_infos(answer: etree._Element) -> list[CertificateInfo]:
    check_status(answer)
    infos = []
    for info in answer.findall(q(CERTRA, "CertificateInfo")):

        def text(name: str, parent: etree._Element = info) -> str | None:
            value = parent.findtext(q(CERTRA_CORE, name))
            return value.strip() if value is not None else None

        entity = info.find(q(CERTRA_CORE, "CertificateEntity"))
        identifier = entity.find(q(CERTRA_CORE, "CertificateIdentifier")) if entity is not None else None
        actor_element = identifier.find(q(CERTRA_CORE, "Actor")) if identifier is not None else None
        if entity is None or identifier is None or actor_element is None:
            raise CertRaError("MALFORMED", "a CertificateInfo without its entity")
        details = info.find(q(CERTRA_CORE, "AuthenticationCertificateDetails"))
        contact = info.find(q(CERTRA_CORE, "ContactData"))
        infos.append(
            CertificateInfo(
                public_key_identifier=(text("PublicKeyIdentifier") or "").upper(),
                requested=_when(text("RequestedDate")) or datetime.now(UTC),
                actor=_actor(actor_element),
                application_id=text("ApplicationId", identifier),
                entity_type=entity.get("EntityType"),
                status=text("AuthenticationCertificateStatus") or "",
                etk_status=text("ETKStatus") or "",
                automatically_validated=_bool(text("AutomaticallyValidated")),
                revocable=_bool(text("Revocable")),
                replaceable=_bool(text("Replaceable")),
                replacement_start=_when(text("ReplacementPeriodStartDate")),
                serial=text("SerialNumber", details) if details is not None else None,
                dn=text("DN", details) if details is not None else None,
                issuer_dn=text("IssuerDN", details) if details is not None else None,
                not_before=_when(text("ValidNotBefore", details)) if details is not None else None,
                not_after=_when(text("ValidNotAfter", details)) if details is not None else None,
                contact=Contact(
                    text("EmailPrivate", contact) or "",
                    text("PhonePrivate", contact) or "",
                    text("EmailGeneral", contact),
                    text("PhoneGeneral", contact),
                )
                if contact is not None
                else None,
                services=tuple(
                    (s.text or "").strip() for s in info.findall(q(CERTRA_CORE, "BaseServiceUsage"))
                ),
            )
        )
    return infos


def read_challenge(answer: etree._Element) -> bytes:
    check_status(answer)
    value = answer.findtext(q(ETKRA, "Challenge"))
    if not value:
        raise CertRaError("MALFORMED", "the answer carries no Challenge")
    return base64.b64decode("".join(value.split()))


def read_etk(answer: etree._Element) -> tuple[bytes, bool]:
    check_status(answer)
    value = answer.findtext(q(ETKRA, "ETK"))
    if not value:
        raise CertRaError("MALFORMED", "the answer carries no ETK")
    return base64.b64decode("".join(value.split())), _bool(answer.findtext(q(ETKRA, "ToBeActivated")))


def read_depot_etk(answer: etree._Element) -> bytes:
    """The depot's answer (commons 1.0 Status: Code 200 is success)."""
    status = answer.find(q(COMMONS1, "Status"))
    # commons 1.0 core has no elementFormDefault: Status's children are unqualified
    code = (status.findtext("Code") or "").strip() if status is not None else ""
    if code != DEPOT_SUCCESS:
        message = (status.findtext("Message") or "").strip() if status is not None else ""
        raise CertRaError(code or "NO_STATUS", message)
    error = answer.find(q(ETKDEPOT, "Error"))
    if error is not None:
        raise CertRaError(
            (error.findtext(q(ETKDEPOT, "Code")) or "").strip(),
            (error.findtext(q(ETKDEPOT, "Message")) or "").strip(),
        )
    value = answer.findtext(q(ETKDEPOT, "ETK"))
    if not value:
        raise CertRaError("NOT_FOUND", "the depot holds no ETK for this identifier")
    return base64.b64decode("".join(value.split()))


# --- distinguished names (CERTRA.md §2.3) ---------------------------------------------------------

EHEALTH_OU = "eHealth-platform Belgium"
_ATTRIBUTES = {
    "CN": NameOID.COMMON_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "C": NameOID.COUNTRY_NAME,
}


def plain_upper(name: str) -> str:
    """A name as eHealth's DN carries it: upper case, accents stripped."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def contract_dn(type_: str, value: str, name: str, application_id: str | None = None) -> str:
    """eHealth's DN string: ``CN=<TYPE>\\=<id>[, <APPID>], OU=eHealth-platform Belgium, OU=<NAME>,
    OU=<TYPE>\\=<id>[, OU=<APPID>], O=Federal Government, C=BE`` (the connector escapes ``=``)."""
    label = f"{type_}\\={value}"
    parts = [
        f"CN={label}" + (f"\\, {application_id}" if application_id else ""),
        f"OU={EHEALTH_OU}",
        f"OU={_escape(plain_upper(name))}",
        f"OU={label}",
    ]
    if application_id:
        parts.append(f"OU={application_id}")
    return ", ".join([*parts, "O=Federal Government", "C=BE"])


def _escape(value: str) -> str:
    return re.sub(r'([,+"\\<>;=])', r"\\\1", value)


def parse_dn(text: str) -> x509.Name:
    """A contract's DN string as an X.509 name (the string lists the most specific part first)."""
    parts: list[str] = []
    current = ""
    escaped = False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    if escaped:
        raise InvalidInput("dn", "format", N_("the contract's DN ends with a lone backslash"))
    parts.append(current)
    attributes = []
    for part in parts:
        key, sep, raw = part.strip().partition("=")
        if not sep or key.strip().upper() not in _ATTRIBUTES:
            raise InvalidInput(
                "dn", "format", N_("the contract's DN has an unknown part {part!r}"), part=part
            )
        value = re.sub(r"\\(.)", r"\1", raw.strip())
        attributes.append(x509.NameAttribute(_ATTRIBUTES[key.strip().upper()], value))
    return x509.Name(list(reversed(attributes)))


# --- talking to the services ---------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    """Where CertRA, EtkRA and the ETK depot answer, and how to reach them."""

    certra: str
    etkra: str
    depot: str
    verify: str | bool
    timeout: float
    contact: str = ""
    max_answer_bytes: int = 4 * 1024 * 1024


def services(settings: object) -> Services:
    """eHealth's addresses (CERTRA.md §1) in acc/prod, the sandbox's own in the sandbox."""
    from mcn_cli.ehealth import endpoints

    environment = endpoints.resolve(settings)  # type: ignore[arg-type]
    if environment.name == "sandbox":
        from mcn_cli.sandbox import runtime

        host = runtime.base_url()
    else:
        host = endpoints.HOSTS[environment.name]
    return Services(
        host + CERTRA_PATH,
        host + ETKRA_PATH,
        host + ETKDEPOT_PATH,
        environment.verify,
        environment.timeout,
        environment.contact,
        environment.max_answer_bytes,
    )


def call(url: str, element: etree._Element, where: Services) -> etree._Element:
    """POST ``element`` as the SOAP Body (no WS-Security) with its SOAPAction; the answer's one
    Body element. A SOAP fault: CertRaError with the fault's code (the service refused the
    message's form), or ServiceUnavailable when the server failed."""
    from mcn_cli.domain.errors import ServiceUnavailable
    from mcn_cli.ehealth import transport, wssec

    action = ACTIONS[etree.QName(element).localname]
    payload = wssec.to_bytes(wssec.envelope(element))
    try:
        root, _ = transport.post(
            url,
            payload,
            action,
            verify=where.verify,
            timeout=where.timeout,
            contact=where.contact,
            max_answer_bytes=where.max_answer_bytes,
        )
    except transport.SoapFaultError as error:
        if error.fault.code.split(":")[-1] == "Server":
            raise ServiceUnavailable(
                N_("eHealth's certificate service failed: {reason}"), reason=error.fault.message
            ) from None
        raise CertRaError(error.fault.code, error.fault.message) from None
    body = root.find(q(ns.SOAP, "Body"))
    children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise ServiceUnavailable(N_("eHealth's certificate service answered with an empty SOAP Body"))
    return children[0]


# --- the encryption token (CERTRA.md §4) ----------------------------------------------------------


def solve_challenge(challenge: bytes, encryption_key: Any) -> int:
    """The serial hidden in StartETKRegistration's challenge: RSA/ECB/PKCS1 ciphertext followed by
    the SHA-256 of the serial; the serial is the first 16 clear bytes, and the hash is over those
    16 bytes only (the connector's CertificateUtils.obtainSerialNumber), whatever follows them."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import padding

    if len(challenge) <= 32:
        raise CertRaError("INVALID_CHALLENGE", "the challenge is too short")
    try:
        clear = encryption_key.decrypt(challenge[:-32], padding.PKCS1v15())
    except ValueError:
        raise CertRaError(
            "INVALID_CHALLENGE", "the challenge does not decrypt with the encryption key"
        ) from None
    serial = clear[:16]
    if hashlib.sha256(serial).digest() != challenge[-32:]:
        raise CertRaError("INVALID_CHALLENGE", "the challenge's hash does not match its decrypted serial")
    return int.from_bytes(serial, "big")


def etk_certificate(
    authentication_key: Any, authentication: x509.Certificate, encryption_key: Any, serial: int
) -> x509.Certificate:
    """CERTRA.md §4.3: subject = issuer = the authentication certificate's subject, the challenge's
    serial, the authentication certificate's validity, critical KeyUsage keyEncipherment +
    dataEncipherment, signed by the authentication key."""
    from cryptography.hazmat.primitives import hashes

    return (
        x509.CertificateBuilder()
        .subject_name(authentication.subject)
        .issuer_name(authentication.subject)
        .public_key(encryption_key.public_key())
        .serial_number(serial)
        .not_valid_before(authentication.not_valid_before_utc)
        .not_valid_after(authentication.not_valid_after_utc)
        .add_extension(
            x509.KeyUsage(False, False, True, True, False, False, False, False, False), critical=True
        )
        .sign(authentication_key, hashes.SHA256())
    )


# --- the contract's text -------------------------------------------------------------------------


def readable(html: str, width: int = 88) -> str:
    """An HTML contract as plain text: paragraphs and headings on their own lines, list items
    with a dash, tags and scripts dropped, entities decoded, lines wrapped at ``width``."""
    import textwrap
    from html.parser import HTMLParser

    blocks = {
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "br",
        "tr",
        "table",
        "ul",
        "ol",
        "section",
        "article",
        "header",
        "footer",
        "title",
        "li",
        "dt",
        "dd",
        "pre",
        "blockquote",
    }

    class Reader(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.lines: list[str] = []
            self.current = ""
            self.skip = 0
            self.prefix = ""

        def flush(self) -> None:
            text = " ".join(self.current.split())
            if text:
                self.lines += textwrap.wrap(
                    text, width, initial_indent=self.prefix, subsequent_indent=" " * len(self.prefix)
                ) or [""]
            self.current = ""
            self.prefix = ""

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "style", "head"):
                self.skip += 1
            elif tag in blocks:
                self.flush()
                if tag == "li":
                    self.prefix = "- "
                if tag in ("h1", "h2", "h3", "p", "ul", "ol", "table") and self.lines and self.lines[-1]:
                    self.lines.append("")

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style", "head"):
                self.skip = max(0, self.skip - 1)
            elif tag in blocks:
                self.flush()

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.current += data

    reader = Reader()
    reader.feed(html)
    reader.close()
    reader.flush()
    while reader.lines and not reader.lines[0]:
        reader.lines.pop(0)
    return "\n".join(reader.lines).rstrip()
