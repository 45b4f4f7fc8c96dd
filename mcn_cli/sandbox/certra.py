"""The sandbox's CertRA v2, EtkRA v2 and ETK depot v1 (CERTRA.md): certificates requested online,
validated automatically or by hand (delivered after a delay), fetched, given an encryption token,
revoked; the STS honours a revocation at once.

Strict where the real service is (the schemas' shapes, and eHealth's own schema files when
``MCN_SANDBOX_SCHEMAS`` names them, the signatures and which key must make
them, the contract sent back unchanged, the CSR's subject = the contract's DN, RSA >= 2048, one
active certificate per DN outside its replacement window). Where the real behaviour is open
(CERTRA.md §7) the sandbox chooses, and says so: its error codes other than
CERT_NOT_YET_DELIVERED are its own; a pharmacy's managers are the pharmacists authorised there
(world.py), nobody manages the tarification office (manual validation). The certificates
``mcn sandbox init`` makes (organisations, tarification office, personal) are in its register
from the start, active, as eHealth knows the certificates it issued: a new request for one of
their holders is refused (ACTIVE_CERTIFICATE_EXISTS) until its replacement window opens. The
Pharmacie de la Gare (world.GARE) has none: the one to request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from lxml import etree

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import certra, ns
from mcn_cli.ehealth.certra import (
    CERTRA,
    CERTRA_CORE,
    COMMONS,
    COMMONS1,
    ETEE,
    ETKDEPOT,
    ETKRA,
    XML_LANG,
    child,
)
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from mcn_cli.sandbox import world
from mcn_cli.sandbox.setup import load_ca
from mcn_cli.sandbox.world import Files

VALIDITY_DAYS = 3 * 365  # eHealth: valid 3 years
REPLACEMENT_DAYS = 90  # eHealth: a replacement may be asked 3 months before the end
DELAYS = {"automatic": 0.0, "manual": 600.0}  # seconds until delivery, by validation
CLOCK_SKEW = timedelta(minutes=5)
_LOCK = threading.Lock()


class Malformed(Exception):
    """A request the real service's schema refuses: a SOAP fault, not a status."""


class Refused(Exception):
    """A well-formed request the service refuses: an error status with an EteeStatusDetail."""

    def __init__(self, code: str, message: str, **parameters: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.parameters = parameters


# --- the shapes of the requests (the real XSDs, as far as mcn's operations go) -------------------

Shape = list[tuple[str, int, int, "Shape | None"]]
ANY = 1 << 30
ACTOR: Shape = [
    (q(COMMONS, "Id"), 1, ANY, None),
    (q(COMMONS, "FirstName"), 0, ANY, None),
    (q(COMMONS, "Name"), 1, 1, None),
]
CONTACT: Shape = [
    (q(CERTRA_CORE, "EmailPrivate"), 1, 1, None),
    (q(CERTRA_CORE, "EmailGeneral"), 0, 1, None),
    (q(CERTRA_CORE, "PhonePrivate"), 1, 1, None),
    (q(CERTRA_CORE, "PhoneGeneral"), 0, 1, None),
]
TEXT: Shape = [(q(CERTRA_CORE, "Value"), 1, ANY, None)]
CONTRACT: Shape = [
    (q(CERTRA_CORE, "DN"), 1, 1, None),
    (q(CERTRA_CORE, "Signer"), 1, 1, ACTOR),
    (q(CERTRA_CORE, "Text"), 1, 1, TEXT),
]
REVOCATION_CONTRACT: Shape = [
    (q(CERTRA_CORE, "DN"), 1, 1, None),
    (q(CERTRA_CORE, "Signer"), 1, 1, ACTOR),
    (q(CERTRA_CORE, "RevocationReason"), 1, 1, None),
    (q(CERTRA_CORE, "Text"), 1, 1, TEXT),
]
SIGNATURE = (q(ns.DS, "Signature"), 1, 1, None)
SHAPES: dict[str, Shape] = {
    q(CERTRA, "GenerateContractRequest"): [
        (q(CERTRA, "ContactData"), 1, 1, CONTACT),
        (q(CERTRA, "Signer"), 1, 1, ACTOR),
        (
            q(CERTRA, "CertificateIdentifier"),
            1,
            1,
            [(q(CERTRA_CORE, "Actor"), 1, 1, ACTOR), (q(CERTRA_CORE, "ApplicationId"), 0, 1, None)],
        ),
    ],
    q(CERTRA, "GenerateCertificateRequest"): [
        (
            q(CERTRA, "EHealthCSR"),
            1,
            1,
            [
                (q(CERTRA_CORE, "ContactData"), 1, 1, CONTACT),
                (q(CERTRA_CORE, "CSR"), 1, 1, None),
                (q(CERTRA_CORE, "Contract"), 1, 1, CONTRACT),
                (q(CERTRA_CORE, "BaseServiceUsage"), 0, ANY, None),
            ],
        ),
        SIGNATURE,
    ],
    q(CERTRA, "GetCertificateRequest"): [(q(CERTRA, "PublicKeyIdentifier"), 1, 1, None)],
    q(CERTRA, "GetCertificateInfoForCitizenRequest"): [SIGNATURE],
    q(CERTRA, "GenerateRevocationContractRequest"): [
        (q(CERTRA, "PublicKeyIdentifier"), 1, 1, None),
        (q(CERTRA, "Signer"), 1, 1, ACTOR),
        (q(CERTRA, "RevocationReason"), 1, 1, None),
    ],
    q(CERTRA, "RevokeRequest"): [
        (q(CERTRA, "PublicKeyIdentifier"), 1, 1, None),
        (q(CERTRA, "Contract"), 1, 1, REVOCATION_CONTRACT),
        SIGNATURE,
    ],
    q(ETKRA, "StartETKRegistrationRequest"): [(q(ETKRA, "PublicEncryptionKey"), 1, 1, None), SIGNATURE],
    q(ETKRA, "CompleteETKRegistrationRequest"): [(q(ETKRA, "ToBeRegistered"), 1, 1, None), SIGNATURE],
    q(ETKRA, "ActivateETKRequest"): [SIGNATURE],
    q(ETKDEPOT, "GetEtkRequest"): [
        (
            q(ETKDEPOT, "SearchCriteria"),
            1,
            1,
            [
                (
                    q(ETKDEPOT, "Identifier"),
                    1,
                    ANY,
                    [
                        (q(ETKDEPOT, "Type"), 1, 1, None),
                        (q(ETKDEPOT, "Value"), 1, 1, None),
                        (q(ETKDEPOT, "ApplicationID"), 0, 1, None),
                    ],
                ),
            ],
        )
    ],
}


def check_shape(element: etree._Element, shape: Shape) -> None:
    """The children of ``element`` follow ``shape`` (an XSD sequence), recursively; leaves hold
    text only. Signatures are checked by the verifier."""
    children = [c for c in element if isinstance(c.tag, str)]
    if any(not isinstance(c.tag, str) and not isinstance(c, etree._Comment) for c in element):
        raise Malformed("processing instructions or entities are not accepted")
    index = 0
    for tag, low, high, inner in shape:
        count = 0
        while index < len(children) and children[index].tag == tag and count < high:
            if inner is not None:
                check_shape(children[index], inner)
            elif tag != q(ns.DS, "Signature") and len(children[index]):
                raise Malformed(f"{etree.QName(tag).localname} must hold text only")
            index += 1
            count += 1
        if count < low:
            raise Malformed(f"{etree.QName(element).localname} lacks {etree.QName(tag).localname}")
    if index < len(children):
        raise Malformed(f"unexpected {etree.QName(children[index]).text} in {etree.QName(element).localname}")


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- answers -----------------------------------------------------------------------------------


def response(namespace: str, name: str, request: etree._Element | None, now: datetime) -> etree._Element:
    # prefixed, never a default namespace: the EteeStatusDetail's children are unqualified
    prefix = {CERTRA: "certra", ETKRA: "etkra"}.get(namespace, "ns")
    element = etree.Element(q(namespace, name), nsmap={prefix: namespace, "core": COMMONS})
    element.set("Id", certra.new_id())
    if request is not None and request.get("Id"):
        element.set("InResponseTo", request.get("Id", ""))
    element.set("IssueInstant", certra._time(now))
    status = etree.SubElement(element, q(COMMONS, "Status"))
    etree.SubElement(status, q(COMMONS, "StatusCode")).set("Value", certra.SUCCESS)
    return element


def refusal(
    namespace: str, name: str, request: etree._Element | None, error: Refused, now: datetime
) -> etree._Element:
    element = response(namespace, name, request, now)
    status = element.find(q(COMMONS, "Status"))
    assert status is not None
    status.find(q(COMMONS, "StatusCode")).set("Value", certra.REQUESTER)  # type: ignore[union-attr]
    etree.SubElement(status, q(COMMONS, "StatusMessage")).text = error.message
    detail = etree.SubElement(status, q(COMMONS, "StatusDetail"))
    etee = etree.SubElement(detail, q(ETEE, "EteeStatusDetail"), nsmap={"etee": ETEE})
    errors = etree.SubElement(etee, "Errors")
    etree.SubElement(errors, "Code").text = error.code
    etree.SubElement(errors, "Message").text = error.message
    for key, value in error.parameters.items():
        parameter = etree.SubElement(errors, "Parameters")
        etree.SubElement(parameter, "Name").text = key
        etree.SubElement(parameter, "Value").text = value
    return element


# --- the register ------------------------------------------------------------------------------


@dataclass
class Authorities:
    citizen: x509.Certificate
    ehealth: Any  # Issued: the eHealth CA's key and certificate
    root: x509.Certificate


def _ski(public_key: Any) -> str:
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest.hex().upper()


def contract_digest(contract: etree._Element) -> str:
    """What identifies a contract the sandbox issued, whatever element name and namespace
    prefixes it travels under: its DN, signer, reason and texts, exactly."""
    signer = contract.find(q(CERTRA_CORE, "Signer"))
    content = {
        "dn": contract.findtext(q(CERTRA_CORE, "DN")),
        "signer": certra._actor(signer).__dict__ if signer is not None else None,
        "reason": contract.findtext(q(CERTRA_CORE, "RevocationReason")),
        "text": [
            [v.get(XML_LANG), v.text]
            for v in contract.findall(f"{q(CERTRA_CORE, 'Text')}/{q(CERTRA_CORE, 'Value')}")
        ],
        "children": [etree.QName(c).localname for c in contract if isinstance(c.tag, str)],
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=list).encode()).hexdigest()


def contract_text(kind: str, dn: str, signer: str) -> dict[str, str]:
    """The contract's HTML5 text, in French and Dutch as eHealth's are (the sandbox's own words)."""
    from html import escape

    dn, signer = escape(dn), escape(signer)
    if kind == "revocation":
        fr = (
            f"<h1>Révocation d'un certificat eHealth</h1><p>Je soussigné(e) {signer} demande la révocation"
            f" du certificat <b>{dn}</b> et de sa clé de chiffrement (ETK).</p>"
            "<ul><li>La révocation est définitive.</li></ul>"
        )
        nl = (
            f"<h1>Intrekking van een eHealth-certificaat</h1><p>Ondergetekende {signer} vraagt de intrekking"
            f" van het certificaat <b>{dn}</b> en zijn versleutelingssleutel (ETK).</p>"
            "<ul><li>De intrekking is definitief.</li></ul>"
        )
    else:
        fr = (
            f"<h1>Demande de certificat eHealth</h1><p>Je soussigné(e) {signer} demande un certificat eHealth"
            f" pour <b>{dn}</b>.</p><ul><li>Je garde la clé privée secrète.</li>"
            "<li>Je révoque le certificat dès que la clé est compromise.</li></ul>"
        )
        nl = (
            f"<h1>Aanvraag van een eHealth-certificaat</h1><p>Ondergetekende {signer} vraagt een"
            f" eHealth-certificaat voor <b>{dn}</b>.</p><ul><li>Ik houd de private sleutel geheim.</li>"
            "<li>Ik trek het certificaat in zodra de sleutel gecompromitteerd is.</li></ul>"
        )
    return {
        "fr": f'<!DOCTYPE html><html lang="fr"><body>{fr}</body></html>',
        "nl": f'<!DOCTYPE html><html lang="nl"><body>{nl}</body></html>',
    }


class Register:
    """The CertRA's records, in the sandbox's ``certra.json`` (every CLI run starts its own server)."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.path = files.root / "certra.json"

    def load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return self.empty()

    @staticmethod
    def empty() -> dict[str, Any]:
        return {"records": {}, "contracts": {}, "delays": dict(DELAYS), "validity_days": VALIDITY_DAYS}

    def save(self, state: dict[str, Any]) -> None:
        from mcn_cli.store.secure_files import write_private

        write_private(self.path, json.dumps(state, indent=1).encode(), replace=True)


def register_issued(files: Files, issued: list[tuple[certra.Actor, x509.Certificate]]) -> None:
    """Start the register with the certificates ``mcn sandbox init`` made (for these actors), as
    eHealth knows what it issued: their real serial, DN, validity and public key identifier;
    active (or expired), no encryption token. Replaces any register of an older sandbox."""
    records: dict[str, Any] = {}
    for actor, certificate in issued:
        name = " ".join([*actor.first_names, actor.name]) if actor.type == certra.SSIN else actor.name
        dn = certra.contract_dn(actor.type, actor.value, name)
        if certra.parse_dn(dn) != certificate.subject:  # the sandbox's own bug
            raise RuntimeError(f"{certificate.subject.rfc4514_string()} is not the DN CertRA writes: {dn}")
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        pki = _ski(certificate.public_key())
        records[pki] = {
            "pki": pki,
            "dn": dn,
            "type": actor.type,
            "value": actor.value,
            "name": actor.name,
            "first_names": list(actor.first_names),
            "application_id": None,
            "requested": _time(start),
            "requester": actor.value if actor.type == certra.SSIN else None,
            "automatic": True,
            "deliver_at": _time(start),
            "status": "VALID_ACTIVE" if end > datetime.now(UTC) else "EXPIRED",
            "etk_status": "NOT_REQUESTED",
            "replaces": None,
            "csr": None,
            "contact": {"EmailPrivate": "sandbox@example.be", "PhonePrivate": "+3220000000"},
            "services": [],
            "certificate": base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode(),
            "serial": str(certificate.serial_number),
            "not_before": _time(start),
            "not_after": _time(end),
            "replacement_start": _time(end - timedelta(days=REPLACEMENT_DAYS)),
        }
    register = Register(files)
    with _LOCK:
        state = Register.empty()
        state["records"] = records
        register.save(state)


def set_delays(
    files: Files,
    *,
    automatic: float | None = None,
    manual: float | None = None,
    validity_days: int | None = None,
) -> None:
    """Tune the sandbox CertRA (tests, demos): seconds until delivery, certificate validity."""
    register = Register(files)
    with _LOCK:
        state = register.load()
        if automatic is not None:
            state["delays"]["automatic"] = automatic
        if manual is not None:
            state["delays"]["manual"] = manual
        if validity_days is not None:
            state["validity_days"] = validity_days
        register.save(state)


def deliver_now(files: Files) -> int:
    """Validate every pending request at once (eHealth's support did its checks); how many."""
    register = Register(files)
    with _LOCK:
        state = register.load()
        pending = [r for r in state["records"].values() if r["status"] == "IN_PROGRESS"]
        for record in pending:
            record["deliver_at"] = _time(datetime.now(UTC) - timedelta(seconds=1))
        register.save(state)
    return len(pending)


SCHEMAS_ENV = "MCN_SANDBOX_SCHEMAS"
SCHEMA_FILES = (
    (CERTRA, "ehealth-etee/XSD/ehealth-certra-schema-protocol-2_0.xsd"),
    (ETKRA, "ehealth-etee/XSD/ehealth-etkra-schema-protocol-2_0.xsd"),
    (ETKDEPOT, "ehealth-etee/XSD/ehealth-etkdepot-schema-protocol-1_0.xsd"),
)


def real_schemas(folder: str | None) -> etree.XMLSchema | None:
    """eHealth's own schemas, when ``MCN_SANDBOX_SCHEMAS`` names the folder holding eHealth's
    layout (``ehealth-etee/XSD``, ``ehealth-commons/XSD``, ``external/XSD``): they are not part
    of mcn, so without them the sandbox checks the shapes above alone."""
    if not folder:
        return None
    from pathlib import Path

    root = Path(folder).expanduser()
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{(root / name).as_uri()}"/>'
        for namespace, name in SCHEMA_FILES
    )
    wrapper = (
        f'<xs:schema xmlns:xs="{ns.XS}" targetNamespace="urn:mcn:sandbox:registration">{imports}</xs:schema>'
    )
    try:
        return etree.XMLSchema(etree.fromstring(wrapper.encode(), etree.XMLParser(no_network=True)))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as error:
        raise InvalidInput(
            SCHEMAS_ENV,
            "schemas",
            N_("{folder} holds no readable eHealth schemas: {error}"),
            folder=folder,
            error=str(error),
        ) from None


def _schema_check(schema: etree.XMLSchema | None, element: etree._Element, what: str) -> None:
    if schema is None:
        return
    alone = etree.fromstring(etree.tostring(element))
    if not schema.validate(alone):
        error = schema.error_log.last_error
        raise Malformed(f"the {what} does not follow eHealth's schema: {error.message if error else '?'}")


class Service:
    """The three services; ``handle`` takes a request element (the SOAP Body's child)."""

    def __init__(self, files: Files) -> None:
        import os

        self.files = files
        self.register = Register(files)
        self.schema = real_schemas(os.environ.get(SCHEMAS_ENV))
        ehealth = load_ca(files, "ehealth")
        self.authorities = Authorities(
            load_ca(files, "citizen").certificate, ehealth, load_ca(files, "root").certificate
        )

    # -- dispatch --

    def handle(
        self, path: str, action: str, request: etree._Element, now: datetime | None = None
    ) -> etree._Element:
        now = now or datetime.now(UTC)
        name = etree.QName(request).localname
        expected = certra.ACTIONS.get(name)
        namespace = etree.QName(request).namespace
        wanted = {certra.CERTRA_PATH: CERTRA, certra.ETKRA_PATH: ETKRA, certra.ETKDEPOT_PATH: ETKDEPOT}[path]
        if namespace != wanted or request.tag not in SHAPES or expected is None:
            raise Malformed(f"no operation {name} at {path}")
        if action != expected:
            raise Malformed(f"SOAPAction {action!r} does not name {name}")
        check_shape(request, SHAPES[request.tag])
        _schema_check(self.schema, request, "request")
        handler: Callable[[etree._Element, dict[str, Any], datetime], etree._Element] = getattr(
            self, "_" + name.removesuffix("Request")
        )
        answer_name = name.removesuffix("Request") + "Response"
        with _LOCK:
            state = self.register.load()
            self._deliver(state, now)
            try:
                if namespace != ETKDEPOT:
                    self._check_header(request, now)
                answer = handler(request, state, now)
            except Refused as error:
                if namespace == ETKDEPOT:
                    answer = self._depot_answer(request, None, error)
                else:
                    answer = refusal(namespace or "", answer_name, request, error, now)
            try:
                _schema_check(self.schema, answer, "answer")
            except Malformed as error:  # the sandbox's own bug: a server fault, not the client's
                raise RuntimeError(str(error)) from None
            self.register.save(state)
        return answer

    @staticmethod
    def _check_header(request: etree._Element, now: datetime) -> None:
        if not request.get("Id") or not request.get("IssueInstant"):
            raise Malformed("a request needs Id and IssueInstant")
        try:
            issued = _parse_time(request.get("IssueInstant", ""))
        except ValueError:
            raise Malformed("IssueInstant is not a dateTime") from None
        if abs(issued - now) > CLOCK_SKEW:
            raise Refused("INVALID_ISSUE_INSTANT", "the request's IssueInstant is more than 5 minutes off")

    # -- signatures --

    def _signed_by_eid(self, request: etree._Element, key: str, now: datetime) -> x509.Certificate:
        """The eID certificate that signed ``request``, with the key the operation demands:
        ``Authentication`` or ``Signature`` (non-repudiation)."""
        try:
            certificate, _ = certra.verify(request)
        except SignatureInvalid as error:
            raise Refused("INVALID_SIGNATURE", f"the request's signature does not hold: {error}") from None
        if certificate.issuer != self.authorities.citizen.subject:
            raise Refused("INVALID_SIGNER", "the request must be signed with a Belgian eID")
        try:
            certificate.verify_directly_issued_by(self.authorities.citizen)
        except Exception:  # InvalidSignature, ValueError, TypeError
            raise Refused("INVALID_SIGNER", "the eID certificate was not issued by the Citizen CA") from None
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise Refused("INVALID_SIGNER", "the eID certificate has expired")
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        common = str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        if key == "Signature" and not (usage.content_commitment and not usage.digital_signature):
            raise Refused(
                "INVALID_SIGNER",
                "this request must be signed with the eID's Signature key (non-repudiation), not " + common,
            )
        if key == "Authentication" and not (usage.digital_signature and common.endswith("(Authentication)")):
            raise Refused("INVALID_SIGNER", "this request must be signed with the eID's Authentication key")
        return certificate

    def _signed_by_ehealth(
        self, request: etree._Element, state: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        """The register's record of the eHealth certificate that signed ``request``: delivered,
        valid, not revoked."""
        try:
            certificate, _ = certra.verify(request)
        except SignatureInvalid as error:
            raise Refused("INVALID_SIGNATURE", f"the request's signature does not hold: {error}") from None
        record = state["records"].get(_ski(certificate.public_key()))
        if record is None or record.get("certificate") is None:
            raise Refused("UNKNOWN_CERTIFICATE", "the signing certificate was not issued through CertRA")
        issued = x509.load_der_x509_certificate(base64.b64decode(record["certificate"]))
        if issued != certificate:
            raise Refused("UNKNOWN_CERTIFICATE", "the signing certificate is not the one CertRA delivered")
        if record["status"] != "VALID_ACTIVE" or not (
            certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc
        ):
            raise Refused("INVALID_CERTIFICATE_STATUS", f"the signing certificate is {record['status']}")
        return record

    # -- CertRA --

    def _GenerateContract(
        self, request: etree._Element, state: dict[str, Any], now: datetime
    ) -> etree._Element:
        signer = certra._actor(request.find(q(CERTRA, "Signer")))  # type: ignore[arg-type]
        identifier = request.find(q(CERTRA, "CertificateIdentifier"))
        assert identifier is not None
        actor = certra._actor(identifier.find(q(CERTRA_CORE, "Actor")))  # type: ignore[arg-type]
        application_id = identifier.findtext(q(CERTRA_CORE, "ApplicationId"))
        _check_actor(signer, actor, application_id)
        name = " ".join([*actor.first_names, actor.name]) if actor.type == certra.SSIN else actor.name
        dn = certra.contract_dn(actor.type, actor.value, name, application_id)
        answer = response(CERTRA, "GenerateContractResponse", request, now)
        contract = child(answer, CERTRA, "Contract")
        child(contract, CERTRA_CORE, "DN", dn)
        certra.add_actor(contract, "Signer", signer, CERTRA_CORE)
        text = child(contract, CERTRA_CORE, "Text")
        signer_name = " ".join([*signer.first_names, signer.name])
        for lang, html in contract_text("request", dn, signer_name).items():
            child(text, CERTRA_CORE, "Value", html).set(XML_LANG, lang)
        state["contracts"][contract_digest(contract)] = {
            "kind": "request",
            "dn": dn,
            "type": actor.type,
            "value": actor.value,
            "name": actor.name,
            "first_names": list(actor.first_names),
            "application_id": application_id,
            "signer": signer.value,
            "issued": _time(now),
        }
        return answer

    def _GenerateCertificate(
        self, request: etree._Element, state: dict[str, Any], now: datetime
    ) -> etree._Element:
        signer_certificate = self._signed_by_eid(request, "Signature", now)
        csr_element = request.find(q(CERTRA, "EHealthCSR"))
        assert csr_element is not None
        contract = csr_element.find(q(CERTRA_CORE, "Contract"))
        assert contract is not None
        issued = state["contracts"].get(contract_digest(contract))
        if issued is None or issued["kind"] != "request":
            raise Refused("INVALID_CONTRACT", "the contract is not one CertRA generated, or it was changed")
        _check_eid_matches(signer_certificate, certra._actor(contract.find(q(CERTRA_CORE, "Signer"))))  # type: ignore[arg-type]
        try:
            csr = x509.load_der_x509_csr(
                base64.b64decode(csr_element.findtext(q(CERTRA_CORE, "CSR")) or "", validate=True)
            )
        except ValueError:
            raise Refused("INVALID_CSR", "the CSR is not a PKCS#10 request in base64") from None
        if not csr.is_signature_valid:
            raise Refused("INVALID_CSR", "the CSR's signature does not hold")
        key = csr.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
            raise Refused("INVALID_CSR", "the key must be RSA of at least 2048 bits")
        if csr.subject != certra.parse_dn(issued["dn"]):
            raise Refused("INVALID_CSR", "the CSR's subject is not the contract's DN")
        services = [s.text or "" for s in csr_element.findall(q(CERTRA_CORE, "BaseServiceUsage"))]
        if any(s not in certra.BASE_SERVICES for s in services):
            raise Refused("INVALID_BASE_SERVICE", "unknown base service")
        pki = _ski(key)
        if pki in state["records"]:
            raise Refused("DUPLICATE_PUBLIC_KEY", "this public key is registered already")
        replaces = None
        for other in state["records"].values():
            if not _same_holder(other, issued) or other["status"] not in ("IN_PROGRESS", "VALID_ACTIVE"):
                continue
            if other["status"] == "IN_PROGRESS":
                raise Refused("REQUEST_IN_PROGRESS", "a request for this DN is in progress already")
            start = _parse_time(other["replacement_start"])
            if now < start:
                raise Refused(
                    "ACTIVE_CERTIFICATE_EXISTS",
                    "an active certificate exists for this DN; a replacement may be requested from "
                    + _time(start),
                    ReplacementPeriodStartDate=_time(start),
                )
            replaces = other["pki"]
        automatic = _manages(signer_certificate, issued)
        delay = state["delays"]["automatic" if automatic else "manual"]
        contact = csr_element.find(q(CERTRA_CORE, "ContactData"))
        assert contact is not None
        state["records"][pki] = {
            "pki": pki,
            "dn": issued["dn"],
            "type": issued["type"],
            "value": issued["value"],
            "name": issued["name"],
            "first_names": issued["first_names"],
            "application_id": issued["application_id"],
            "requested": _time(now),
            "requester": certra._actor(contract.find(q(CERTRA_CORE, "Signer"))).value,  # type: ignore[arg-type]
            "automatic": automatic,
            "deliver_at": _time(now + timedelta(seconds=delay)),
            "status": "IN_PROGRESS",
            "etk_status": "NOT_REQUESTED",
            "replaces": replaces,
            "csr": base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode(),
            "contact": {etree.QName(c).localname: c.text or "" for c in contact if isinstance(c.tag, str)},
            "services": services,
            "certificate": None,
        }
        answer = response(CERTRA, "GenerateCertificateResponse", request, now)
        child(answer, CERTRA, "PublicKeyIdentifier", pki)
        child(answer, CERTRA, "AutomaticallyValidated", "true" if automatic else "false")
        if replaces:
            child(answer, CERTRA, "ReplacesCertificate", replaces)
        return answer

    def _deliver(self, state: dict[str, Any], now: datetime) -> None:
        """Issue the certificates whose validation is over."""
        for record in state["records"].values():
            if record["status"] != "IN_PROGRESS" or _parse_time(record["deliver_at"]) > now:
                continue
            csr = x509.load_der_x509_csr(base64.b64decode(record["csr"]))
            ca = self.authorities.ehealth
            start = now - timedelta(minutes=5)
            certificate = (
                x509.CertificateBuilder()
                .subject_name(csr.subject)
                .issuer_name(ca.certificate.subject)
                .public_key(csr.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(start + timedelta(days=state["validity_days"]))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
                )
                .add_extension(
                    x509.KeyUsage(True, True, True, False, False, False, False, False, False), critical=True
                )
                .sign(ca.key, hashes.SHA256())
            )
            end = certificate.not_valid_after_utc
            record.update(
                status="VALID_ACTIVE",
                certificate=base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode(),
                serial=str(certificate.serial_number),
                not_before=_time(certificate.not_valid_before_utc),
                not_after=_time(end),
                replacement_start=_time(end - timedelta(days=REPLACEMENT_DAYS)),
            )
        for record in state["records"].values():
            if record["status"] == "VALID_ACTIVE" and _parse_time(record["not_after"]) <= now:
                record["status"] = "EXPIRED"

    def _GetCertificate(
        self, request: etree._Element, state: dict[str, Any], now: datetime
    ) -> etree._Element:
        pki = _pki(request.findtext(q(CERTRA, "PublicKeyIdentifier")))
        record = state["records"].get(pki)
        if record is None:
            raise Refused("CERT_NOT_FOUND", "no certificate request with this public key identifier")
        if record["status"] == "IN_PROGRESS":
            raise Refused(certra.NOT_YET_DELIVERED, "the certificate has not been delivered yet")
        if record["certificate"] is None:
            raise Refused("CERT_REFUSED", f"the certificate request is {record['status']}")
        answer = response(CERTRA, "GetCertificateResponse", request, now)
        for der in (
            base64.b64decode(record["certificate"]),
            self.authorities.ehealth.certificate.public_bytes(serialization.Encoding.DER),
        ):
            child(answer, CERTRA, "X509Certificate", base64.b64encode(der).decode())
        return answer

    def _GetCertificateInfoForCitizen(
        self, request: etree._Element, state: dict[str, Any], now: datetime
    ) -> etree._Element:
        certificate = self._signed_by_eid(request, "Authentication", now)
        niss = _eid_niss(certificate)
        answer = response(CERTRA, "GetCertificateInfoForCitizenResponse", request, now)
        for record in sorted(state["records"].values(), key=lambda r: r["requested"]):
            if _may_manage(niss, record):
                _info(answer, record, now)
        return answer

    def _GenerateRevocationContract(
        self, request: etree._Element, state: dict[str, Any], now: datetime
    ) -> etree._Element:
        pki = _pki(request.findtext(q(CERTRA, "PublicKeyIdentifier")))
        signer = certra._actor(request.find(q(CERTRA, "Signer")))  # type: ignore[arg-type]
        reason = request.findtext(q(CERTRA, "RevocationReason")) or ""
        if reason not in certra.REVOCATION_REASONS:
            raise Malformed(f"RevocationReason {reason!r} is not one of the schema's")
        record = state["records"].get(pki)
        if record is None:
            raise Refused("CERT_NOT_FOUND", "no certificate with this public key identifier")
        if record["status"] != "VALID_ACTIVE":
            raise Refused("CERT_NOT_REVOCABLE", f"the certificate is {record['status']}")
        if signer.type != certra.SSIN or not _may_manage(signer.value, record):
            raise Refused("NOT_AUTHORIZED", "the signer may not revoke this certificate")
        answer = response(CERTRA, "GenerateRevocationContractResponse", request, now)
        contract = child(answer, CERTRA, "Contract")
        child(contract, CERTRA_CORE, "DN", record["dn"])
        certra.add_actor(contract, "Signer", signer, CERTRA_CORE)
        child(contract, CERTRA_CORE, "RevocationReason", reason)
        text = child(contract, CERTRA_CORE, "Text")
        for lang, html in contract_text(
            "revocation", record["dn"], " ".join([*signer.first_names, signer.name])
        ).items():
            child(text, CERTRA_CORE, "Value", html).set(XML_LANG, lang)
        state["contracts"][contract_digest(contract)] = {
            "kind": "revocation",
            "pki": pki,
            "signer": signer.value,
        }
        return answer

    def _Revoke(self, request: etree._Element, state: dict[str, Any], now: datetime) -> etree._Element:
        certificate = self._signed_by_eid(request, "Signature", now)
        pki = _pki(request.findtext(q(CERTRA, "PublicKeyIdentifier")))
        contract = request.find(q(CERTRA, "Contract"))
        assert contract is not None
        issued = state["contracts"].get(contract_digest(contract))
        if issued is None or issued["kind"] != "revocation" or issued["pki"] != pki:
            raise Refused(
                "INVALID_CONTRACT", "the revocation contract is not one CertRA generated for this certificate"
            )
        _check_eid_matches(certificate, certra._actor(contract.find(q(CERTRA_CORE, "Signer"))))  # type: ignore[arg-type]
        record = state["records"][pki]
        if record["status"] != "VALID_ACTIVE":
            raise Refused("CERT_NOT_REVOCABLE", f"the certificate is {record['status']}")
        record["status"] = "REVOKED"
        if record["etk_status"] not in ("NOT_REQUESTED",):
            record["etk_status"] = "REVOKED"
        record["revoked"] = _time(now)
        del state["contracts"][contract_digest(contract)]
        files_state = self.files.state()
        revoked = {str(s) for s in files_state.get("revoked", [])}  # type: ignore[union-attr]
        revoked.add(record["serial"])
        files_state["revoked"] = sorted(revoked)
        self.files.save_state(files_state)  # the STS refuses it from now on
        return response(CERTRA, "RevokeResponse", request, now)

    # -- EtkRA --

    def _StartETKRegistration(
        self, request: etree._Element, state: dict[str, Any], now: datetime
    ) -> etree._Element:
        record = self._signed_by_ehealth(request, state, now)
        try:
            key = serialization.load_der_public_key(
                base64.b64decode(request.findtext(q(ETKRA, "PublicEncryptionKey")) or "", validate=True)
            )
        except ValueError:
            raise Refused("INVALID_PUBLIC_KEY", "PublicEncryptionKey is not a DER public key") from None
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size != 2048:
            raise Refused("INVALID_PUBLIC_KEY", "the encryption key must be RSA of 2048 bits")
        serial = bytearray(secrets.token_bytes(16))
        serial[0] = (serial[0] & 0x7F) | 0x01  # a positive integer of 16 bytes
        challenge = key.encrypt(bytes(serial), padding.PKCS1v15()) + hashlib.sha256(serial).digest()
        record["etk_challenge"] = {
            "serial": bytes(serial).hex(),
            "key": base64.b64encode(
                key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            ).decode(),
        }
        if record["etk_status"] == "NOT_REQUESTED":
            record["etk_status"] = "IN_REQUEST"
        answer = response(ETKRA, "StartETKRegistrationResponse", request, now)
        child(answer, ETKRA, "Challenge", base64.b64encode(challenge).decode())
        return answer

    def _CompleteETKRegistration(
        self, request: etree._Element, state: dict[str, Any], now: datetime
    ) -> etree._Element:
        record = self._signed_by_ehealth(request, state, now)
        pending = record.get("etk_challenge")
        if not pending:
            raise Refused("NO_ETK_REGISTRATION", "StartETKRegistration first")
        try:
            built = x509.load_der_x509_certificate(
                base64.b64decode(request.findtext(q(ETKRA, "ToBeRegistered")) or "", validate=True)
            )
        except ValueError:
            raise Refused("INVALID_CERTIFICATE", "ToBeRegistered is not a DER certificate") from None
        authentication = x509.load_der_x509_certificate(base64.b64decode(record["certificate"]))
        _check_etk_certificate(built, authentication, pending)
        record.pop("etk_challenge")
        ca = self.authorities.ehealth
        etk = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(built.public_bytes(serialization.Encoding.DER))
            .add_signer(ca.certificate, ca.key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )
        replacing = any(
            r is not record and _same_holder(r, record) and r["etk_status"] == "VALID_ACTIVE"
            for r in state["records"].values()
        )
        record["etk"] = base64.b64encode(etk).decode()
        record["etk_serial"] = str(built.serial_number)
        record["etk_status"] = "WAIT_FOR_ACTIVATION" if replacing else "VALID_ACTIVE"
        answer = response(ETKRA, "CompleteETKRegistrationResponse", request, now)
        child(answer, ETKRA, "ETK", record["etk"])
        child(answer, ETKRA, "ToBeActivated", "true" if replacing else "false")
        return answer

    def _ActivateETK(self, request: etree._Element, state: dict[str, Any], now: datetime) -> etree._Element:
        record = self._signed_by_ehealth(request, state, now)
        if record["etk_status"] != "WAIT_FOR_ACTIVATION":
            raise Refused("NO_ETK_TO_ACTIVATE", f"the ETK is {record['etk_status']}")
        for other in state["records"].values():
            if other is not record and _same_holder(other, record) and other["etk_status"] == "VALID_ACTIVE":
                other["etk_status"] = "EXPIRED"
        record["etk_status"] = "VALID_ACTIVE"
        return response(ETKRA, "ActivateETKResponse", request, now)

    # -- ETK depot --

    def _GetEtk(self, request: etree._Element, state: dict[str, Any], now: datetime) -> etree._Element:
        identifier = request.find(f"{q(ETKDEPOT, 'SearchCriteria')}/{q(ETKDEPOT, 'Identifier')}")
        assert identifier is not None
        type_ = identifier.findtext(q(ETKDEPOT, "Type"))
        value = identifier.findtext(q(ETKDEPOT, "Value"))
        application_id = identifier.findtext(q(ETKDEPOT, "ApplicationID"))
        found = [
            r
            for r in state["records"].values()
            if r["type"] == type_
            and r["value"] == value
            and r.get("application_id") == application_id
            and r["etk_status"] == "VALID_ACTIVE"
        ]
        if not found:
            raise Refused("NO_ETK_FOUND", "no active ETK for this identifier")
        return self._depot_answer(request, found[-1]["etk"], None)

    @staticmethod
    def _depot_answer(request: etree._Element, etk: str | None, error: Refused | None) -> etree._Element:
        answer = etree.Element(q(ETKDEPOT, "GetEtkResponse"), nsmap={"etkdepot": ETKDEPOT, "core": COMMONS1})
        answer.set("Id", certra.new_id())
        status = etree.SubElement(answer, q(COMMONS1, "Status"))
        etree.SubElement(status, "Code").text = certra.DEPOT_SUCCESS
        etree.SubElement(status, "Message").text = "Success"
        status[-1].set("Lang", "EN")
        import copy

        criteria = request.find(q(ETKDEPOT, "SearchCriteria"))
        given = (
            copy.deepcopy(criteria) if criteria is not None else etree.Element(q(ETKDEPOT, "SearchCriteria"))
        )
        given.tag = q(ETKDEPOT, "GivenSearchCriteria")
        answer.append(given)
        if error is not None:
            failure = child(answer, ETKDEPOT, "Error")
            child(failure, ETKDEPOT, "Code", error.code)
            child(failure, ETKDEPOT, "Message", error.message)
        else:
            child(answer, ETKDEPOT, "ETK", etk)
        return answer


# --- rules -------------------------------------------------------------------------------------


def _pki(text: str | None) -> str:
    value = (text or "").strip()
    try:
        if len(bytes.fromhex(value)) != 20:
            raise ValueError
    except ValueError:
        raise Malformed("PublicKeyIdentifier must be 20 bytes of hex") from None
    return value.upper()


def _same_holder(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """The same DN, or the same identifier whatever name the request gave: eHealth writes the
    contract's DN itself, so its DN for an identifier does not vary; the sandbox takes the name
    from the request, so a changed name must not open a second active certificate."""
    return one["dn"] == other["dn"] or (one["type"], one["value"], one.get("application_id")) == (
        other["type"],
        other["value"],
        other.get("application_id"),
    )


def _check_actor(signer: certra.Actor, actor: certra.Actor, application_id: str | None) -> None:
    from mcn_cli.domain.identifiers import parse_niss, parse_pharmacy_nihii

    try:
        if signer.type != certra.SSIN:
            raise Refused("INVALID_SIGNER", "the signer is identified by SSIN")
        parse_niss(signer.value)
        if actor.type == certra.SSIN:
            parse_niss(actor.value)
            if (actor.value, actor.first_names, actor.name) != (
                signer.value,
                signer.first_names,
                signer.name,
            ):
                raise Refused("INVALID_ACTOR", "a personal certificate's actor must be the signer")
            if application_id:
                raise Refused("INVALID_APPLICATION_ID", "only organisations may use an ApplicationId")
        elif actor.type in (certra.PHARMACY, certra.OFFICE):
            parse_pharmacy_nihii(actor.value)
            if application_id is not None and not certra.APPLICATION_ID.fullmatch(application_id):
                raise Refused("INVALID_APPLICATION_ID", "an ApplicationId is [0-9A-Z-_]{1,30}")
        else:
            raise Refused("UNKNOWN_IDENTIFIER_TYPE", f"unknown identifier type {actor.type}")
    except InvalidInput as error:
        raise Refused("INVALID_IDENTIFIER", str(error)) from None
    if not actor.name.strip():
        raise Refused("INVALID_ACTOR", "the actor needs a name")


def _eid_niss(certificate: x509.Certificate) -> str:
    values = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return str(values[0].value) if values else ""


def _check_eid_matches(certificate: x509.Certificate, signer: certra.Actor) -> None:
    """The contract's signer is the eID's holder, exactly: NISS, first names and name."""
    given = certificate.subject.get_attributes_for_oid(NameOID.GIVEN_NAME)
    surname = certificate.subject.get_attributes_for_oid(NameOID.SURNAME)
    if (
        _eid_niss(certificate) != signer.value
        or not given
        or " ".join(signer.first_names) != given[0].value
        or not surname
        or signer.name != surname[0].value
    ):
        raise Refused("SIGNER_MISMATCH", "the contract's signer is not the holder of the eID that signed")


def _manages(certificate: x509.Certificate, contract: dict[str, Any]) -> bool:
    """Validated automatically: the person for themselves, a manager for an organisation."""
    niss = _eid_niss(certificate)
    if contract["type"] == certra.SSIN:
        return contract["value"] == niss and world.person(niss) is not None
    if contract["type"] == certra.PHARMACY:
        pharmacy = world.pharmacy(contract["value"])
        return pharmacy is not None and niss in pharmacy.authorised
    return False  # nobody is known to manage an office's certificates: eHealth's support checks


def _may_manage(niss: str, record: dict[str, Any]) -> bool:
    if record["type"] == certra.SSIN:
        return record["value"] == niss
    pharmacy = world.pharmacy(record["value"]) if record["type"] == certra.PHARMACY else None
    return record.get("requester") == niss or (pharmacy is not None and niss in pharmacy.authorised)


def _check_etk_certificate(
    built: x509.Certificate, authentication: x509.Certificate, pending: dict[str, str]
) -> None:
    """CERTRA.md §4.3: serial = the challenge's, subject = issuer = the authentication subject,
    its validity, critical KeyUsage keyEncipherment + dataEncipherment, signed by the auth key,
    for the encryption key registered at the start."""
    key = serialization.load_der_public_key(base64.b64decode(pending["key"]))
    problems = []
    if built.serial_number != int(pending["serial"], 16):
        problems.append("its serial is not the challenge's")
    if built.subject != authentication.subject or built.issuer != authentication.subject:
        problems.append("its subject and issuer must be the authentication certificate's subject")
    if built.public_key().public_numbers() != key.public_numbers():  # type: ignore[union-attr]
        problems.append("its key is not the encryption key registered")
    if (built.not_valid_before_utc, built.not_valid_after_utc) != (
        authentication.not_valid_before_utc,
        authentication.not_valid_after_utc,
    ):
        problems.append("its validity is not the authentication certificate's")
    try:
        usage = built.extensions.get_extension_for_class(x509.KeyUsage)
        if not (usage.critical and usage.value.key_encipherment and usage.value.data_encipherment):
            problems.append("its KeyUsage must be critical keyEncipherment + dataEncipherment")
    except x509.ExtensionNotFound:
        problems.append("it has no KeyUsage")
    try:
        built.verify_directly_issued_by(authentication)
    except Exception:  # InvalidSignature, ValueError, TypeError
        problems.append("it is not signed by the authentication key")
    if problems:
        raise Refused("INVALID_ETK_CERTIFICATE", "; ".join(problems))


def _info(parent: etree._Element, record: dict[str, Any], now: datetime) -> None:
    info = child(parent, CERTRA, "CertificateInfo")
    child(info, CERTRA_CORE, "RequestedDate", record["requested"])
    child(info, CERTRA_CORE, "PublicKeyIdentifier", record["pki"])
    entity = child(info, CERTRA_CORE, "CertificateEntity")
    entity.set("EntityType", "NaturalPerson" if record["type"] == certra.SSIN else "Organization")
    identifier = child(entity, CERTRA_CORE, "CertificateIdentifier")
    certra.add_actor(
        identifier,
        "Actor",
        certra.Actor(record["type"], record["value"], record["name"], tuple(record["first_names"])),
        CERTRA_CORE,
    )
    if record.get("application_id"):
        child(identifier, CERTRA_CORE, "ApplicationId", record["application_id"])
    child(info, CERTRA_CORE, "AuthenticationCertificateStatus", record["status"])
    child(info, CERTRA_CORE, "ETKStatus", record["etk_status"])
    child(info, CERTRA_CORE, "AutomaticallyValidated", "true" if record["automatic"] else "false")
    if record.get("certificate"):
        certificate = x509.load_der_x509_certificate(base64.b64decode(record["certificate"]))
        details = child(info, CERTRA_CORE, "AuthenticationCertificateDetails")
        child(details, CERTRA_CORE, "SerialNumber", record["serial"])
        child(details, CERTRA_CORE, "DN", record["dn"])
        child(details, CERTRA_CORE, "IssuerDN", certificate.issuer.rfc4514_string())
        child(details, CERTRA_CORE, "ValidNotBefore", record["not_before"])
        child(details, CERTRA_CORE, "ValidNotAfter", record["not_after"])
    active = record["status"] == "VALID_ACTIVE"
    child(info, CERTRA_CORE, "Revocable", "true" if active else "false")
    replaceable = active and now >= _parse_time(record["replacement_start"])
    child(info, CERTRA_CORE, "Replaceable", "true" if replaceable else "false")
    if record.get("replacement_start"):
        child(info, CERTRA_CORE, "ReplacementPeriodStartDate", record["replacement_start"])
    contact = child(info, CERTRA_CORE, "ContactData")
    for name in ("EmailPrivate", "EmailGeneral", "PhonePrivate", "PhoneGeneral"):
        if record["contact"].get(name) is not None:
            child(contact, CERTRA_CORE, name, record["contact"][name])
    for service in record["services"]:
        child(info, CERTRA_CORE, "BaseServiceUsage", service)
