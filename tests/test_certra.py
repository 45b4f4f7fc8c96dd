"""Certificates through eHealth's CertRA v2 / EtkRA v2 / ETK depot (issue 15), in the sandbox.

Every message mcn sends and every answer the sandbox gives is validated against eHealth's real
schemas (``../shared/reference/ehealth/ehealth-etee``); the enveloped signatures are checked by
``xmlsec1`` against the certificate that must have made them (the eID's Signature key for
GenerateCertificate and Revoke, its Authentication key for GetCertificateInfoForCitizen, the new
eHealth certificate for EtkRA). The flow runs end to end: request → contract → pending → fetch →
ETK → STS login → revoke → STS refusal.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from lxml import etree

from mcn_cli.ehealth import certra, ns, transport, xmldsig
from mcn_cli.ehealth import keystore as p12
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import KeystoreSigner
from mcn_cli.sandbox import certra as sandbox_certra
from mcn_cli.sandbox import pki
from mcn_cli.sandbox.world import ANNE, GARE, OT_NIHII, PARC, PIETER, Files
from mcn_cli.status import ExitStatus
from tests.conftest import REFERENCE, SANDBOX_PIN, needs_reference
from tests.test_wssec import xmlsec1

PASSWORD = "keystore-pass-1"
ETEE_XSD = REFERENCE / "ehealth" / "ehealth-etee" / "XSD"
CONTACT = ("--email", "parc@example.be", "--phone", "+32 2 123 45 67")


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    """CertRA protocol v2, EtkRA protocol v2 and ETK depot v1, the real files, in one set."""
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{(ETEE_XSD / name).as_uri()}"/>'
        for namespace, name in (
            (certra.CERTRA, "ehealth-certra-schema-protocol-2_0.xsd"),
            (certra.ETKRA, "ehealth-etkra-schema-protocol-2_0.xsd"),
            (certra.ETKDEPOT, "ehealth-etkdepot-schema-protocol-1_0.xsd"),
        )
    )
    wrapper = f'<xs:schema xmlns:xs="{ns.XS}" targetNamespace="urn:mcn:test:certra">{imports}</xs:schema>'
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), etree.XMLParser(no_network=True)))


def assert_valid(schema: etree.XMLSchema, element: etree._Element) -> None:
    alone = etree.fromstring(etree.tostring(element))
    if not schema.validate(alone):
        raise AssertionError(f"{etree.QName(element).localname} is invalid: {schema.error_log}")


@dataclass
class Exchange:
    action: str
    request: bytes
    response: bytes | None

    def body(self, data: bytes) -> etree._Element:
        root = etree.fromstring(data)
        return next(c for c in root.find(q(ns.SOAP, "Body")) if isinstance(c.tag, str))

    @property
    def sent(self) -> etree._Element:
        return self.body(self.request)

    @property
    def answer(self) -> etree._Element:
        assert self.response is not None
        return self.body(self.response)

    @property
    def name(self) -> str:
        return etree.QName(self.sent).localname


@pytest.fixture
def wire(monkeypatch) -> list[Exchange]:
    """Every registration exchange, as sent and received."""
    seen: list[Exchange] = []
    real = transport.post

    def recording(url, payload, action, **kwargs):
        exchange = Exchange(action, payload, None)
        if any(p in url for p in ("/CertRa/", "/EtkRa/", "/EtkDepot/")):
            seen.append(exchange)
        try:
            root, answered = real(url, payload, action, **kwargs)
        except transport.SoapFaultError as error:
            exchange.response = error.response
            raise
        exchange.response = answered.response
        return root, answered

    monkeypatch.setattr(transport, "post", recording)
    return seen


@pytest.fixture
def online(sandbox, monkeypatch) -> Files:
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    monkeypatch.setenv("MCN_NEW_KEYSTORE_PASSWORD", PASSWORD)
    monkeypatch.setenv("MCN_KEYSTORE_PASSWORD", PASSWORD)
    monkeypatch.setenv("MCN_ORG_PASSWORD", PASSWORD)
    if REFERENCE.is_dir():  # the sandbox checks requests and its answers with eHealth's own schemas too
        monkeypatch.setenv("MCN_SANDBOX_SCHEMAS", str(REFERENCE / "ehealth"))
    return sandbox


def request_org(mcn, pharmacy, *extra: str):
    return mcn(
        "cert",
        "request",
        "--org",
        "--nihii",
        pharmacy.nihii,
        "--name",
        pharmacy.name,
        *CONTACT,
        "--accept",
        "--json",
        *extra,
    )


def request_gare(mcn, *extra: str):
    """The Pharmacie de la Gare has no certificate after mcn sandbox init: the one to request."""
    return request_org(mcn, GARE, *extra)


def open_replacement_window(files: Files, type_: str, value: str) -> str:
    """As if time had passed: the active certificate mcn sandbox init made for this holder enters
    its replacement window (its public key identifier)."""
    register = sandbox_certra.Register(files)
    state = register.load()
    (record,) = [
        r
        for r in state["records"].values()
        if (r["type"], r["value"], r["status"]) == (type_, value, "VALID_ACTIVE")
    ]
    record["replacement_start"] = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    register.save(state)
    return record["pki"]


def eid(files: Files, niss: str, which: str = "") -> x509.Certificate:
    return pki.load_certificate(files.root / "eid" / f"{niss}{which}.pem")


def xmlsec1_verifies(document: bytes, element: str, certificate: x509.Certificate, tmp_path: Path) -> bool:
    """xmlsec1 checks the request's enveloped signature with ``certificate``'s key only."""
    return xmlsec1(
        document,
        certificate,
        tmp_path,
        "--id-attr:Id",
        element,
        "--node-xpath",
        "//*[local-name()='Signature']",
    )


# --- the flow end to end ----------------------------------------------------------------------------


@needs_reference
def test_request_pending_fetch_etk_login_revoke_refused(mcn, online, wire, schema, mcn_home, tmp_path):
    sandbox_certra.set_delays(online, automatic=3600)  # eHealth takes its time even when automatic
    requested = request_gare(mcn)
    assert requested.code == 0, requested.err
    data = requested.json()
    keystore = Path(data["keystore"])
    assert keystore == mcn_home / "data" / "keystores" / f"NIHII-PHARMACY={GARE.nihii}.p12"
    assert data["automatically_validated"] is True  # Anne is authorised at the Gare
    assert "Demande de certificat eHealth" in requested.err  # the contract, shown as text
    assert "<h1>" not in requested.err and "<p>" not in requested.err
    form = json.loads(keystore.with_name(keystore.stem + ".request.json").read_text())
    assert form["public_key_identifier"] == data["public_key_identifier"]

    # the CSR says what the contract says, and its key is the one eHealth registered
    contract = next(e for e in wire if e.name == "GenerateContractRequest").answer
    dn = contract.findtext(f"{q(certra.CERTRA, 'Contract')}/{q(certra.CERTRA_CORE, 'DN')}")
    generate = next(e for e in wire if e.name == "GenerateCertificateRequest").sent
    csr_der = base64.b64decode(generate.findtext(f".//{q(certra.CERTRA_CORE, 'CSR')}"))
    csr = x509.load_der_x509_csr(csr_der)
    assert csr.subject == certra.parse_dn(dn)
    assert csr.subject.rfc4514_string() == (
        "CN=NIHII-PHARMACY=35101726,OU=eHealth-platform Belgium,OU=PHARMACIE DE LA GARE,"
        "OU=NIHII-PHARMACY=35101726,O=Federal Government,C=BE"
    )
    assert csr.public_key().key_size == 2048 and csr.signature_hash_algorithm.name == "sha256"
    ski = x509.SubjectKeyIdentifier.from_public_key(csr.public_key()).digest.hex().upper()
    assert ski == data["public_key_identifier"]

    pending = mcn("cert", "fetch", "--json")
    assert pending.code == 0, pending.err
    assert [r["state"] for r in pending.json()] == ["pending"]
    assert "still pending" in mcn("cert", "fetch").out
    assert (
        next(e for e in wire if e.name == "GetCertificateRequest")
        .answer.find(f".//{q(certra.ETEE, 'EteeStatusDetail')}/Errors/Code")
        .text
        == "CERT_NOT_YET_DELIVERED"
    )

    assert sandbox_certra.deliver_now(online) == 1
    fetched = mcn("cert", "fetch", "--json")
    assert fetched.code == 0, fetched.err
    result = fetched.json()[0]
    assert result["state"] == "installed" and result["etk_in_depot"] is True
    store = p12.read(keystore.read_bytes(), PASSWORD)
    auth = store.get("authentication")
    assert auth.certificate.subject == csr.subject
    assert [c.subject.rfc4514_string() for c in auth.chain] == [
        "CN=mcn sandbox eHealth CA,C=BE",
        "CN=mcn sandbox Root CA,C=BE",
    ]
    encryption = store.get(result["encryption_serial"])
    assert encryption.certificate.issuer == auth.certificate.subject
    assert encryption.certificate.not_valid_after_utc == auth.certificate.not_valid_after_utc
    usage = encryption.certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_encipherment and usage.value.data_encipherment
    assert Path(result["etk"]).read_bytes() == base64.b64decode(
        next(e for e in wire if e.name == "CompleteETKRegistrationRequest").answer.findtext(
            q(certra.ETKRA, "ETK")
        )
    )

    status = mcn("cert", "status", "--json")
    assert status.code == 0, status.err
    ours = data["public_key_identifier"]
    assert [(i["status"], i["etk_status"]) for i in status.json() if i["public_key_identifier"] == ours] == [
        ("VALID_ACTIVE", "VALID_ACTIVE")
    ]
    # besides what mcn sandbox init made for Anne: the Parc's and her own, known to eHealth too
    assert {(i["holder"], i["status"]) for i in status.json() if i["public_key_identifier"] != ours} >= {
        (f"NIHII-PHARMACY={PARC.nihii}", "VALID_ACTIVE"),
        (f"SSIN={ANNE.niss}", "VALID_ACTIVE"),
    }

    login = mcn("login", "--org", str(keystore), "--json")
    assert login.code == 0, login.err
    assert login.json()["pharmacy"] == GARE.nihii

    revoked = mcn("cert", "revoke", str(keystore), "--reason", "keyCompromise", "--accept", "--json")
    assert revoked.code == 0, revoked.err
    assert "Révocation d'un certificat eHealth" in revoked.err
    assert mcn("cert", "show", str(keystore), "--json").json()["state"] == "revoked"
    refused = mcn("login", "--org", str(keystore), "--session", "again")
    assert refused.code == ExitStatus.AUTH_NEEDED and "revoked" in refused.err
    after = mcn("cert", "status", "--json").json()
    assert [(i["status"], i["etk_status"]) for i in after if i["public_key_identifier"] == ours] == [
        ("REVOKED", "REVOKED")
    ]

    # every message, both ways, against the real schemas; every signature with xmlsec1
    names = [e.name for e in wire]
    for wanted in (
        "GenerateContractRequest",
        "GenerateCertificateRequest",
        "GetCertificateRequest",
        "StartETKRegistrationRequest",
        "CompleteETKRegistrationRequest",
        "GetEtkRequest",
        "GetCertificateInfoForCitizenRequest",
        "GenerateRevocationContractRequest",
        "RevokeRequest",
    ):
        assert wanted in names
    signature, authentication = eid(online, ANNE.niss, "-signature"), eid(online, ANNE.niss)
    signers = {  # which key must have signed, and one that must not verify
        "GenerateCertificateRequest": (signature, authentication),
        "RevokeRequest": (signature, authentication),
        "GetCertificateInfoForCitizenRequest": (authentication, signature),
        "StartETKRegistrationRequest": (auth.certificate, signature),
        "CompleteETKRegistrationRequest": (auth.certificate, authentication),
    }
    for exchange in wire:
        assert exchange.action == certra.ACTIONS[exchange.name]
        assert_valid(schema, exchange.sent)
        assert_valid(schema, exchange.answer)
        if exchange.name in signers:
            element = f"{etree.QName(exchange.sent).namespace}:{exchange.name}"
            right, wrong = signers[exchange.name]
            assert xmlsec1_verifies(exchange.request, element, right, tmp_path), exchange.name
            assert not xmlsec1_verifies(exchange.request, element, wrong, tmp_path), exchange.name
        else:
            assert exchange.sent.find(q(ns.DS, "Signature")) is None  # unsigned operations
    signature_cn = eid(online, ANNE.niss, "-signature").subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert signature_cn[0].value == "Anne Lambert (Signature)"


@needs_reference
def test_manual_validation_for_an_office_whose_manager_is_unknown(mcn, online, wire, schema):
    open_replacement_window(online, "NIHII-OTD_PHARMACY", OT_NIHII)  # its renewal, then
    result = mcn(
        "cert",
        "request",
        "--ot",
        "--nihii",
        OT_NIHII,
        "--name",
        "Office de tarification Test",
        *CONTACT,
        "--accept",
        "--json",
    )
    assert result.code == 0, result.err
    assert result.json()["automatically_validated"] is False
    assert mcn("cert", "fetch", "--json").json()[0]["state"] == "pending"
    status = mcn("cert", "status")
    assert status.code == 0 and f"NIHII-OTD_PHARMACY={OT_NIHII}" in status.out
    assert "IN_PROGRESS" in status.out and "manual" in status.out
    sandbox_certra.deliver_now(online)
    fetched = mcn("cert", "fetch")
    assert (
        fetched.code == 0
        and "installed in" in fetched.out
        and "published in eHealth's ETK depot" in fetched.out
    )
    for exchange in wire:
        assert_valid(schema, exchange.sent)
        assert_valid(schema, exchange.answer)


@needs_reference
def test_renewal_inside_the_window_replaces_the_keystore_and_activates_the_new_etk(mcn, online, wire, schema):
    sandbox_certra.set_delays(online, validity_days=60)  # delivered already inside its last 90 days
    first = request_gare(mcn).json()
    assert mcn("cert", "fetch").code == 0
    listed = mcn("cert", "list")
    assert "warning" in listed.err and "request its replacement now" in listed.err
    second = request_gare(mcn)
    assert second.code == 0, second.err
    assert Path(second.json()["keystore"]).name == f"NIHII-PHARMACY={GARE.nihii}.next.p12"
    assert second.json()["replaces"] == first["public_key_identifier"]
    fetched = mcn("cert", "fetch", "--json")
    assert fetched.code == 0, fetched.err
    keystore = Path(fetched.json()[0]["keystore"])
    assert keystore.name == f"NIHII-PHARMACY={GARE.nihii}.p12"
    assert keystore.with_name(f"NIHII-PHARMACY={GARE.nihii}.previous.p12").exists()
    states = {i["name"]: i["state"] for i in mcn("cert", "list", "--json").json()}
    assert states[f"NIHII-PHARMACY={GARE.nihii}.previous"] == "replaced"
    assert states[f"NIHII-PHARMACY={GARE.nihii}"] == "installed"
    assert "ActivateETKRequest" in [e.name for e in wire]
    statuses = {i["public_key_identifier"]: i for i in mcn("cert", "status", "--json").json()}
    assert statuses[second.json()["public_key_identifier"]]["etk_status"] == "VALID_ACTIVE"
    assert statuses[first["public_key_identifier"]]["etk_status"] == "EXPIRED"
    for exchange in wire:
        assert_valid(schema, exchange.sent)
        assert_valid(schema, exchange.answer)


# --- refused before anything is sent ---------------------------------------------------------------


def test_local_refusals_send_nothing(mcn, online, wire, mcn_home):
    cases = [
        (("--personal", "--niss", PIETER.niss, *CONTACT), "not-the-signer", "a personal certificate is for"),
        (
            ("--personal", "--niss", ANNE.niss, "--name", "Marie Curie", *CONTACT),
            "Marie Curie",
            "the eID names",
        ),
        (("--org", "--nihii", "27150202", "--name", "X", *CONTACT), "nihii", "check"),
        (("--org", "--nihii", PARC.nihii, "--name", PARC.name, "--key", "ec", *CONTACT), "key", "RSA"),
        (("--org", "--nihii", PARC.nihii, "--name", PARC.name), "contact", "--email and --phone"),
        (
            ("--org", "--nihii", PARC.nihii, "--name", PARC.name, "--application-id", "bad id", *CONTACT),
            "application",
            "[0-9A-Z-_]",
        ),
    ]
    for args, *needles in cases:
        result = mcn("cert", "request", *args, "--accept")
        assert result.code == ExitStatus.BAD_INPUT, (args, result.err)
        assert any(n in result.err for n in needles), (args, result.err)
    assert wire == []  # nothing went to eHealth
    assert not (mcn_home / "data" / "keystores").exists() or not list(
        (mcn_home / "data" / "keystores").iterdir()
    )


def test_a_second_request_while_active_is_refused_locally_then_by_the_sandbox(mcn, online, wire, tmp_path):
    assert request_gare(mcn).code == 0
    assert mcn("cert", "fetch").code == 0
    sent = len(wire)
    again = request_gare(mcn)
    assert again.code == ExitStatus.BAD_INPUT
    assert "a replacement may be requested from" in again.err and len(wire) == sent
    # the sandbox refuses it as well when asked from another folder (no local certificate there)
    from mcn_cli.actions import registration
    from mcn_cli.ehealth.certificates import ORG, Holder

    with pytest.raises(registration.CertificateRefused) as refused:
        registration.request(
            Holder(ORG, GARE.nihii, GARE.name),
            lambda: PASSWORD,
            certra.Contact("a@example.be", "021234567"),
            lambda contract: True,
            lambda: SANDBOX_PIN,
            folder=tmp_path / "elsewhere",
        )
    assert refused.value.code == "ACTIVE_CERTIFICATE_EXISTS"
    assert "ACTIVE_CERTIFICATE_EXISTS" in str(refused.value) and "from" in str(refused.value)
    assert not list((tmp_path / "elsewhere").glob("*.p12"))  # the key of a refused request is not kept


@needs_reference
def test_the_certificates_sandbox_init_made_are_known_to_its_certra(mcn, online, wire, schema, tmp_path):
    """Right after mcn sandbox init, eHealth knows the Parc's certificate: a request for it is
    refused (nothing kept), as the real CertRA refuses one outside the replacement window; inside
    the window the same request is a renewal."""
    chain = online.org_keystore(PARC.nihii).with_suffix(".crt").read_bytes()
    made = x509.load_pem_x509_certificates(chain)[0]
    known = {i["public_key_identifier"]: i for i in mcn("cert", "status", "--json").json()}
    ski = x509.SubjectKeyIdentifier.from_public_key(made.public_key()).digest.hex().upper()
    assert known[ski]["status"] == "VALID_ACTIVE" and known[ski]["serial"] == str(made.serial_number)
    assert certra.parse_dn(known[ski]["dn"]) == made.subject

    refused = request_org(mcn, PARC)
    assert refused.code == ExitStatus.POLICY_REFUSED, refused.err
    assert "eHealth refused (ACTIVE_CERTIFICATE_EXISTS)" in refused.err
    assert "a replacement may be requested from" in refused.err
    answer = next(e for e in wire if e.name == "GenerateCertificateRequest").answer
    code = answer.findtext(f".//{q(certra.ETEE, 'EteeStatusDetail')}/Errors/Code")
    assert code == "ACTIVE_CERTIFICATE_EXISTS"
    keystores = online.root.parent / "keystores"
    assert not keystores.exists() or not list(keystores.glob("*.p12"))  # the refused key is not kept
    # a different name for the same pharmacy changes nothing
    assert request_org(mcn, dataclasses.replace(PARC, name="Parc")).code == ExitStatus.POLICY_REFUSED

    open_replacement_window(online, "NIHII-PHARMACY", PARC.nihii)
    renewed = request_org(mcn, PARC)
    assert renewed.code == 0, renewed.err
    assert renewed.json()["replaces"] == ski and renewed.json()["automatically_validated"] is True
    fetched = mcn("cert", "fetch", "--json")
    assert fetched.code == 0, fetched.err
    assert [r["state"] for r in fetched.json()] == ["installed"]
    login = mcn("login", "--org", fetched.json()[0]["keystore"], "--json")
    assert login.code == 0 and login.json()["pharmacy"] == PARC.nihii, login.err
    for exchange in wire:
        assert_valid(schema, exchange.sent)
        assert_valid(schema, exchange.answer)


def test_an_answer_lost_on_the_way_leaves_a_request_fetch_can_finish(mcn, online, monkeypatch):
    from mcn_cli.domain.errors import ServiceUnavailable

    real = certra.call

    def lost(url, element, where):
        answer = real(url, element, where)
        if etree.QName(element).localname == "GenerateCertificateRequest":
            raise ServiceUnavailable("the connection broke")  # eHealth registered it, mcn never heard
        return answer

    monkeypatch.setattr(certra, "call", lost)
    assert request_gare(mcn).code == ExitStatus.SERVICE_UNAVAILABLE
    monkeypatch.setattr(certra, "call", real)
    fetched = mcn("cert", "fetch", "--json")
    assert fetched.code == 0, fetched.err
    assert fetched.json()[0]["state"] == "installed"


def test_refusing_the_contract_sends_no_certificate_request(mcn, online, wire, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    result = mcn("cert", "request", "--org", "--nihii", PARC.nihii, "--name", PARC.name, *CONTACT)
    assert result.code == ExitStatus.BAD_INPUT and "not accepted" in result.err
    assert [e.name for e in wire] == ["GenerateContractRequest"]


# --- the sandbox refuses what the real service refuses -----------------------------------------------


@pytest.fixture
def service(online) -> certra.Services:
    from mcn_cli.store.settings import load

    return certra.services(load())


def _contract(service: certra.Services, signer: certra.Actor, actor: certra.Actor) -> certra.Contract:
    contact = certra.Contact("a@example.be", "021234567")
    return certra.read_contract(
        certra.call(service.certra, certra.generate_contract(contact, signer, actor), service)
    )


def _card(files: Files, niss: str, which: str = "") -> KeystoreSigner:
    return KeystoreSigner(
        pki.load_key(files.root / "eid" / f"{niss}{which}.key"),
        pki.load_certificate(files.root / "eid" / f"{niss}{which}.pem"),
    )


ANNE_ACTOR = certra.Actor("SSIN", ANNE.niss, "Lambert", ("Anne",))
PARC_ACTOR = certra.Actor("NIHII-PHARMACY", PARC.nihii, PARC.name)


def _generate(files, service, contract, *, key=None, subject=None, signer=None, change=None):
    key = key or pki.rsa_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject or certra.parse_dn(contract.dn))
        .sign(key, hashes.SHA256())
    )
    message = certra.generate_certificate(
        certra.Contact("a@example.be", "021234567"), csr.public_bytes(serialization.Encoding.DER), contract
    )
    if change:
        change(message)
    certra.sign(message, signer or _card(files, ANNE.niss, "-signature"))
    return certra.read_registered(certra.call(service.certra, message, service))


@needs_reference
def test_the_sandbox_refuses_wrong_keys_changed_contracts_and_foreign_subjects(online, service, schema, wire):
    contract = _contract(service, ANNE_ACTOR, PARC_ACTOR)
    cases = {
        "INVALID_SIGNER": {"signer": _card(online, ANNE.niss)},  # the Authentication key
        "SIGNER_MISMATCH": {"signer": _card(online, PIETER.niss, "-signature")},
        "INVALID_CSR": {"key": pki.rsa_key(1024)},
        "INVALID_CONTRACT": {
            "change": lambda m: m.find(f".//{q(certra.CERTRA_CORE, 'DN')}").__setattr__("text", "CN=other")
        },
    }
    for code, kwargs in cases.items():
        with pytest.raises(certra.CertRaError) as refused:
            _generate(online, service, contract, **kwargs)
        assert refused.value.code == code, (code, refused.value)
    other = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NIHII-PHARMACY=27150201")])
    with pytest.raises(certra.CertRaError) as refused:
        _generate(online, service, contract, subject=other)
    assert refused.value.code == "INVALID_CSR" and "DN" in refused.value.message
    for exchange in wire:  # the refusals too are what the schema allows
        assert_valid(schema, exchange.sent)
        assert_valid(schema, exchange.answer)


@needs_reference
def test_the_depot_answers_an_unknown_holder_within_its_schema(online, service, schema, wire):
    with pytest.raises(certra.CertRaError) as missing:
        certra.read_depot_etk(
            certra.call(service.depot, certra.get_etk("NIHII-PHARMACY", PARC.nihii), service)
        )
    assert missing.value.code == "NO_ETK_FOUND"
    assert_valid(schema, wire[0].sent)
    assert_valid(schema, wire[0].answer)


def test_the_sandbox_faults_on_messages_the_schema_refuses(online, service, monkeypatch):
    monkeypatch.delenv("MCN_SANDBOX_SCHEMAS", raising=False)  # its own checks, without eHealth's files
    message = certra.get_certificate("00" * 20)
    etree.SubElement(message, q(certra.CERTRA, "Extra")).text = "x"
    with pytest.raises(certra.CertRaError) as fault:
        certra.call(service.certra, message, service)
    assert "unexpected" in fault.value.message
    unsigned = certra.info_for_citizen()
    with pytest.raises(certra.CertRaError) as fault:
        certra.call(service.certra, unsigned, service)
    assert "lacks Signature" in fault.value.message
    with pytest.raises(certra.CertRaError) as fault:
        certra.call(service.certra, certra.get_certificate("ABCD"), service)
    assert "20 bytes" in fault.value.message


@needs_reference
def test_with_ehealths_schemas_the_sandbox_refuses_what_only_they_see(online, service):
    contact = certra.Contact("a@example.be", "021234567")
    message = certra.generate_contract(contact, ANNE_ACTOR, PARC_ACTOR)
    identifier = message.find(f".//{q(certra.COMMONS, 'Id')}")
    del identifier.attrib["Type"]  # commons IdType: Type is required
    with pytest.raises(certra.CertRaError) as fault:
        certra.call(service.certra, message, service)
    assert fault.value.code == "soapenv:Client" and "eHealth's schema" in fault.value.message


def test_a_tampered_request_signature_is_refused(online, service):
    message = certra.sign(certra.info_for_citizen(), _card(online, ANNE.niss))
    message.set("IssueInstant", (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    with pytest.raises(certra.CertRaError) as refused:
        certra.read_infos(certra.call(service.certra, message, service))
    assert refused.value.code == "INVALID_SIGNATURE"
    with pytest.raises(xmldsig.SignatureInvalid):
        certra.verify(message)


# --- pieces ------------------------------------------------------------------------------------------


def test_the_contract_dn_round_trips_through_the_csr():
    dn = certra.contract_dn("NIHII-PHARMACY", "27150201", "Pharmacie du Parc Élysée", "APP-1")
    assert dn == (
        "CN=NIHII-PHARMACY\\=27150201\\, APP-1, OU=eHealth-platform Belgium, OU=PHARMACIE DU PARC ELYSEE, "
        "OU=NIHII-PHARMACY\\=27150201, OU=APP-1, O=Federal Government, C=BE"
    )
    name = certra.parse_dn(dn)
    assert name.rfc4514_string().startswith("CN=NIHII-PHARMACY=27150201\\, APP-1,OU=eHealth-platform Belgium")
    assert next(a.oid for a in name) == NameOID.COUNTRY_NAME


def test_html_contracts_read_as_text():
    html = (
        "<!DOCTYPE html><html><head><title>t</title><style>p{}</style></head><body><h1>Contrat</h1>"
        "<p>Je soussign&eacute; <b>Anne</b>\n   Lambert.</p><ul><li>un</li><li>deux</li></ul>"
        "<script>alert(1)</script></body></html>"
    )
    assert certra.readable(html) == "Contrat\n\nJe soussigné Anne Lambert.\n\n- un\n- deux"


def test_the_challenge_is_decrypted_and_checked():
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import padding

    key = pki.rsa_key()
    serial = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
    good = key.public_key().encrypt(serial, padding.PKCS1v15()) + hashlib.sha256(serial).digest()
    assert certra.solve_challenge(good, key) == int.from_bytes(serial, "big")
    with pytest.raises(certra.CertRaError):
        certra.solve_challenge(good[:-1] + b"\0", key)


@needs_reference
def test_a_failing_depot_does_not_lose_the_registered_encryption_key(mcn, online, monkeypatch):
    """The depot lookup only checks: once EtkRA registered the ETK, its key reaches the keystore
    even when the depot is down (else the ETK would stand at eHealth with its key thrown away)."""
    from mcn_cli.domain.errors import ServiceUnavailable
    from mcn_cli.domain.messages import N_

    assert request_gare(mcn).code == 0
    real = certra.call

    def depot_down(url, element, where):
        if url == where.depot:
            raise ServiceUnavailable(N_("eHealth's certificate service failed: {reason}"), reason="down")
        return real(url, element, where)

    monkeypatch.setattr(certra, "call", depot_down)
    fetched = mcn("cert", "fetch", "--json")
    assert fetched.code == 0, fetched.err
    (result,) = fetched.json()
    assert result["state"] == "installed" and result["etk_in_depot"] is False
    keystore = p12.read(Path(result["keystore"]).read_bytes(), PASSWORD)
    assert keystore.get(result["encryption_serial"]) is not None


@needs_reference
def test_fetch_from_cron_goes_on_past_a_request_ehealth_refuses(mcn, online):
    """One pending request eHealth will not deliver (refused by its support, or never received)
    must not keep the others from being fetched; it is said, and the exit status is its."""
    requested = request_gare(mcn)
    assert requested.code == 0, requested.err
    folder = Path(requested.json()["keystore"]).parent
    (folder / "AAA.p12").write_bytes(b"not a keystore")  # sorts first
    (folder / "AAA.request.json").write_text(
        json.dumps({"public_key_identifier": "00" * 20, "type": "NIHII-PHARMACY", "number": "62599147"})
    )
    fetched = mcn("cert", "fetch", "--json")
    assert fetched.code == ExitStatus.POLICY_REFUSED, fetched.err
    assert "AAA.p12" in fetched.err and "CERT_NOT_FOUND" in fetched.err
    states = {Path(r["keystore"]).name: r["state"] for r in fetched.json()}
    assert states == {"AAA.p12": "error", f"NIHII-PHARMACY={GARE.nihii}.p12": "installed"}
    again = mcn("cert", "fetch")
    assert again.code == ExitStatus.POLICY_REFUSED and "AAA.p12" in again.err


def test_not_yet_delivered_is_seen_among_several_errors():
    """GetCertificate's refusal may list several errors; CERT_NOT_YET_DELIVERED anywhere among
    them means pending, as the connector reads it (RaUtils.getErrorCodes)."""
    now = datetime.now(UTC)
    first = sandbox_certra.Refused("SOME_OTHER", "first")
    answer = sandbox_certra.refusal(certra.CERTRA, "GetCertificateResponse", None, first, now)
    errors = answer.find(f".//{q(certra.ETEE, 'EteeStatusDetail')}")
    second = etree.SubElement(errors, "Errors")
    etree.SubElement(second, "Code").text = certra.NOT_YET_DELIVERED
    etree.SubElement(second, "Message").text = "not yet"
    with pytest.raises(certra.CertRaError) as pending:
        certra.read_certificates(answer)
    assert pending.value.code == certra.NOT_YET_DELIVERED
    errors.remove(second)
    with pytest.raises(certra.CertRaError) as other:
        certra.read_certificates(answer)
    assert (other.value.code, other.value.message) == ("SOME_OTHER", "first")


def test_the_challenge_hash_covers_the_serial_only_when_the_nonce_is_longer():
    """The connector (CertificateUtils.obtainSerialNumber) takes the first 16 clear bytes as the
    serial and checks the SHA-256 of those 16 bytes, whatever follows them in the clear nonce."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import padding

    key = pki.rsa_key()
    serial = bytes.fromhex("7f02030405060708090a0b0c0d0e0f10")
    nonce = serial + bytes(range(16))
    challenge = key.public_key().encrypt(nonce, padding.PKCS1v15()) + hashlib.sha256(serial).digest()
    assert certra.solve_challenge(challenge, key) == int.from_bytes(serial, "big")
    whole = key.public_key().encrypt(nonce, padding.PKCS1v15()) + hashlib.sha256(nonce).digest()
    with pytest.raises(certra.CertRaError):
        certra.solve_challenge(whole, key)


def test_cert_show_speaks_words_and_list_names_folders(mcn, sandbox):
    shown = mcn("cert", "show", str(sandbox.org_keystore(PARC.nihii)))
    assert shown.code == 0, shown.err
    assert "True" not in shown.out and "False" not in shown.out and "warning      no" in shown.out
    listed = mcn("cert", "list")
    assert "FOLDER" in listed.out and str(sandbox.keystores) in listed.out
    for command in ("request", "fetch", "status", "revoke", "list", "show", "install"):
        assert "[default: default]" not in mcn("cert", command, "--help").out


@needs_reference
def test_a_personal_request_signed_by_an_ec_eid(mcn, online, wire, schema, tmp_path):
    replaced = open_replacement_window(online, "SSIN", PIETER.niss)  # his from mcn sandbox init
    result = mcn(
        "cert",
        "request",
        "--personal",
        "--niss",
        PIETER.niss,
        "--user",
        PIETER.niss,
        *CONTACT,
        "--accept",
        "--json",
    )
    assert result.code == 0, result.err
    assert (
        result.json()["automatically_validated"] is True and result.json()["holder"] == f"SSIN={PIETER.niss}"
    )
    assert result.json()["replaces"] == replaced
    generate = next(e for e in wire if e.name == "GenerateCertificateRequest")
    method = generate.sent.find(f".//{q(ns.DS, 'SignatureMethod')}").get("Algorithm")
    assert method == ns.ECDSA_SHA256  # Pieter's card holds EC keys
    assert_valid(schema, generate.sent)
    element = f"{certra.CERTRA}:GenerateCertificateRequest"
    assert xmlsec1_verifies(generate.request, element, eid(online, PIETER.niss, "-signature"), tmp_path)
    contract = next(e for e in wire if e.name == "GenerateContractRequest").answer
    dn = contract.findtext(f"{q(certra.CERTRA, 'Contract')}/{q(certra.CERTRA_CORE, 'DN')}")
    assert "OU=PIETER CLAES" in dn and f"CN=SSIN\\={PIETER.niss}" in dn
    assert mcn("cert", "fetch", "--json").json()[0]["state"] == "installed"


@needs_reference
def test_an_application_id_gives_a_second_certificate_of_its_own(mcn, online, wire, schema):
    assert request_gare(mcn).code == 0
    second = request_gare(mcn, "--application-id", "BATCH-1", "--service", "consultrn")
    assert second.code == 0, second.err
    assert Path(second.json()["keystore"]).name == f"NIHII-PHARMACY={GARE.nihii}.BATCH-1.p12"
    fetched = mcn("cert", "fetch", "--json")
    assert fetched.code == 0, fetched.err
    assert sorted(r["state"] for r in fetched.json()) == ["installed", "installed"]
    leaf = x509.load_pem_x509_certificates(Path(second.json()["keystore"]).with_suffix(".crt").read_bytes())[
        0
    ]
    assert leaf.subject.rfc4514_string().startswith(f"CN=NIHII-PHARMACY={GARE.nihii}\\, BATCH-1,")
    assert "OU=BATCH-1,O=Federal Government" in leaf.subject.rfc4514_string()
    for exchange in wire:
        assert_valid(schema, exchange.sent)
        assert_valid(schema, exchange.answer)


@needs_reference
def test_etkra_down_at_fetch_keeps_the_certificate_and_the_next_fetch_registers_the_etk(
    mcn, online, monkeypatch
):
    """The delivered certificate is installed before the encryption token is registered: EtkRA
    failing (or refusing) leaves a keystore that logs in, and the next fetch (cron) registers
    the ETK alone."""
    from mcn_cli.domain.errors import ServiceUnavailable
    from mcn_cli.domain.messages import N_

    requested = request_gare(mcn)
    assert requested.code == 0, requested.err
    keystore = Path(requested.json()["keystore"])
    folder = keystore.parent
    real = certra.call

    def etkra_down(url, element, where):
        if url == where.etkra:
            raise ServiceUnavailable(N_("eHealth's certificate service failed: {reason}"), reason="down")
        return real(url, element, where)

    monkeypatch.setattr(certra, "call", etkra_down)
    failed = mcn("cert", "fetch")
    assert failed.code == ExitStatus.SERVICE_UNAVAILABLE, failed.err
    assert "installed and works for login" in failed.err
    assert (folder / f"NIHII-PHARMACY={GARE.nihii}.crt").exists()
    assert not (folder / f"NIHII-PHARMACY={GARE.nihii}.etk").exists()
    entries = p12.read(keystore.read_bytes(), PASSWORD)
    assert entries.get("authentication").certificate is not None and len(entries.entries) == 1

    monkeypatch.setattr(certra, "call", real)
    again = mcn("cert", "fetch", "--json")
    assert again.code == 0, again.err
    (result,) = again.json()
    assert result["state"] == "installed" and result["etk_in_depot"] is True
    entries = p12.read(keystore.read_bytes(), PASSWORD)
    assert entries.get(str(result["encryption_serial"])) is not None
    assert (folder / f"NIHII-PHARMACY={GARE.nihii}.etk").exists()
    assert mcn("cert", "fetch", "--json").json() == []  # nothing left to do
