from __future__ import annotations

import base64
import copy
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from mcn_cli.ehealth import ns, wssec
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import KeystoreSigner
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from mcn_cli.sandbox import pki
from mcn_cli.sandbox.world import ANNE, PIETER
from tests.conftest import REFERENCE, needs_reference

WSS4J_EXAMPLE = REFERENCE / "sts" / "ws-security-example.xml"


def software_signer(kind: str) -> KeystoreSigner:
    key = pki.rsa_key() if kind == "rsa" else pki.ec_key()
    issued = pki.issue(pki.eid_subject(ANNE.niss, "Anne", "Lambert"), key, None)
    return KeystoreSigner(issued.key, issued.certificate)


def signed(signer, now=None) -> etree._Element:
    body = etree.fromstring(b'<m:Ping xmlns:m="urn:test"><m:Text>bonjour</m:Text></m:Ping>')
    return wssec.sign_envelope(wssec.envelope(body), signer, now=now)


def xmlsec1(document: bytes, certificate, tmp_path: Path, *options: str) -> bool:
    """xmlsec1 (not our code) verifies ``document``'s signature with ``certificate``'s key only."""
    message = tmp_path / "message.xml"
    cert = tmp_path / "cert.pem"
    message.write_bytes(document)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    command = ["xmlsec1", "--verify", "--pubkey-cert-pem", str(cert), *options, str(message)]
    return subprocess.run(command, capture_output=True, text=True).returncode == 0


def xmlsec1_verifies(document: bytes, certificate, tmp_path: Path) -> bool:
    """The WS-Security signature of a SOAP envelope (Body, Timestamp and token by their Id)."""
    return xmlsec1(
        document,
        certificate,
        tmp_path,
        "--node-xpath",
        "/*/*[local-name()='Header']/*[local-name()='Security']/*[local-name()='Signature']",
        "--id-attr:Id",
        f"{ns.SOAP}:Body",
        "--id-attr:Id",
        f"{ns.WSU}:Timestamp",
        "--id-attr:Id",
        f"{ns.WSSE}:BinarySecurityToken",
    )


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_signed_envelope_verifies_here_and_with_xmlsec1(kind, tmp_path):
    signer = software_signer(kind)
    document = wssec.to_bytes(signed(signer))
    verified = wssec.verify_envelope(document)
    assert verified.certificate == signer.certificate
    assert wssec.body_payload(verified).tag == "{urn:test}Ping"
    assert xmlsec1_verifies(document, signer.certificate, tmp_path)


@pytest.mark.parametrize("user", [ANNE.niss, PIETER.niss], ids=["eid-rsa", "eid-ec"])
def test_pkcs11_signatures_verify_with_xmlsec1(sandbox, user, tmp_path):
    from mcn_cli.ehealth.signers import open_eid
    from mcn_cli.sandbox import softhsm
    from tests.conftest import SANDBOX_PIN

    softhsm.configure(sandbox.softhsm)
    eid = open_eid(softhsm.module(), lambda: SANDBOX_PIN, user_niss=user)
    try:
        document = wssec.to_bytes(signed(eid))
    finally:
        eid.close()
    assert wssec.verify_envelope(document).certificate == eid.certificate
    assert xmlsec1_verifies(document, eid.certificate, tmp_path)


def test_xmlsec1_rejects_a_changed_body(tmp_path):
    signer = software_signer("rsa")
    document = wssec.to_bytes(signed(signer)).replace(b"bonjour", b"bonsoir")
    assert not xmlsec1_verifies(document, signer.certificate, tmp_path)


def _reject(root: etree._Element, match: str, **kwargs) -> None:
    with pytest.raises(SignatureInvalid, match=match):
        wssec.verify_envelope(wssec.to_bytes(root), **kwargs)


def test_changed_body_is_rejected():
    root = signed(software_signer("rsa"))
    root.find(".//{urn:test}Text").text = "bonsoir"
    _reject(root, "digest")


def test_changed_timestamp_is_rejected():
    root = signed(software_signer("rsa"))
    expires = root.find(f".//{q(ns.WSU, 'Expires')}")
    later = wssec.parse_time(expires.text) + timedelta(minutes=2)  # still fresh: the digest catches it
    expires.text = later.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    _reject(root, "digest")


def test_a_long_lived_timestamp_is_not_fresh():
    signer = software_signer("rsa")
    long_lived = wssec.sign_envelope(
        wssec.envelope(etree.fromstring(b"<m:Ping xmlns:m='urn:test'/>")), signer, ttl=timedelta(days=30)
    )
    _reject(long_lived, "too long-lived")


def test_wrong_key_is_rejected():
    root = signed(software_signer("rsa"))
    other = software_signer("rsa").certificate.public_bytes(serialization.Encoding.DER)
    root.find(f".//{q(ns.WSSE, 'BinarySecurityToken')}").text = base64.b64encode(other).decode()
    _reject(root, "digest of #X509")  # the token is signed too: swapping it breaks its digest


def test_expired_timestamp_is_rejected():
    root = signed(software_signer("ec"), now=datetime.now(UTC) - timedelta(hours=1))
    _reject(root, "expired")


def test_future_timestamp_is_rejected():
    root = signed(software_signer("ec"), now=datetime.now(UTC) + timedelta(hours=1))
    _reject(root, "future")


def test_wrapping_attack_body_moved_is_rejected():
    root = signed(software_signer("rsa"))
    header = root.find(q(ns.SOAP, "Header"))
    body = root.find(q(ns.SOAP, "Body"))
    wrapper = etree.SubElement(header, "{urn:evil}Wrapper")
    wrapper.append(body)  # the signed Body, moved into the header
    evil = etree.SubElement(root, q(ns.SOAP, "Body"))
    etree.SubElement(evil, "{urn:test}Ping").text = "transfer everything"
    _reject(root, "Body")


def test_wrapping_attack_body_duplicated_is_rejected():
    root = signed(software_signer("rsa"))
    body = root.find(q(ns.SOAP, "Body"))
    evil = copy.deepcopy(body)
    evil.find(".//{urn:test}Text").text = "evil"
    root.append(evil)
    _reject(root, "one Header and one Body")


def test_wrapping_attack_signed_body_referenced_but_other_body_used_is_rejected():
    root = signed(software_signer("rsa"))
    body = root.find(q(ns.SOAP, "Body"))
    original = copy.deepcopy(body)
    # the real Body gets new content and loses its id; the signed copy hides in the header
    for child in list(body):
        body.remove(child)
    etree.SubElement(body, "{urn:test}Ping").text = "evil"
    del body.attrib[wssec.WSU_ID]
    hidden = etree.SubElement(root.find(q(ns.SOAP, "Header")), "{urn:evil}Hidden")
    hidden.extend(list(original))
    hidden.set(wssec.WSU_ID, original.get(wssec.WSU_ID))
    _reject(root, "not signed|digest")


@needs_reference
def test_the_reference_wss4j_example_is_rejected():
    document = WSS4J_EXAMPLE.read_bytes()
    when = datetime(2023, 12, 12, 6, 58, 40, tzinfo=UTC)
    with pytest.raises(SignatureInvalid, match="not accepted"):
        wssec.verify_envelope(document, now=when)  # SHA-1 is refused outright
    # even allowing SHA-1, the pretty-printed Body no longer matches its digest
    with pytest.raises(SignatureInvalid, match="digest of #id-40E256CAA6D61FB5F617023643060965"):
        wssec.verify_envelope(document, now=when, allow_sha1=True)


def test_insurability_request_signed_holder_of_key_verifies_with_xmlsec1(tmp_path):
    from mcn_cli.domain.identifiers import parse_niss
    from mcn_cli.ehealth import insurability, saml, token
    from tests.test_saml import make_sts

    sts, holder = make_sts(), software_signer("rsa")
    now = datetime.now(UTC)
    assertion = saml.issue_assertion(
        sts.signer,
        sts.signer.certificate,
        saml.Subject("CN=x", "CN=ca"),
        holder.certificate,
        [],
        now=now,
        not_before=now - timedelta(minutes=5),
        not_on_or_after=now + timedelta(hours=1),
        issuer="urn:be:fgov:ehealth:sts:1_0",
    )
    envelope = insurability.request_envelope(
        insurability.Origin("mcn", "user", "secret"),
        insurability.Requester("27150201", ANNE.niss, ANNE.nihii11),
        parse_niss("85073003328"),
        now.date(),
        reference="26112700000000",
        user_reference=None,
        is_test=True,
        wsse=insurability.HolderOfKey(holder, etree.tostring(assertion)),
    )
    document = wssec.to_bytes(envelope)
    verified = wssec.verify_envelope(
        document, holder_of_key=lambda a: token.verify(a, sts.trust, now).holder_of_key
    )
    assert verified.certificate == holder.certificate and verified.assertion is not None
    assert xmlsec1_verifies(document, holder.certificate, tmp_path)


def test_a_comment_inside_signed_text_is_refused():
    """8507300332<!-- -->8 verifies under exclusive C14N without comments, yet reads 8507300332."""
    signer = software_signer("rsa")
    body = etree.fromstring(b'<m:Ping xmlns:m="urn:test"><m:Ssin>85073003328</m:Ssin></m:Ping>')
    document = wssec.to_bytes(wssec.sign_envelope(wssec.envelope(body), signer))
    commented = document.replace(b">85073003328<", b">8507300332<!-- -->8<")
    assert commented != document
    with pytest.raises(SignatureInvalid, match="comment"):
        wssec.verify_envelope(commented)
    wssec.verify_envelope(document)


def test_a_certificate_signed_message_without_the_assertion_is_refused_cleanly(sandbox):
    """The insurability service needs the holder-of-key assertion: a message signed by a bare
    certificate is refused with a SOAP fault, not an assert."""
    from mcn_cli.sandbox.server import Sandbox

    signer = software_signer("rsa")
    document = wssec.to_bytes(signed(signer))
    reply = Sandbox(sandbox).handle("/Insurability/v2", document, {})
    assert reply.status == 500 and b"InvalidSecurity" in reply.body and b"assertion" in reply.body
