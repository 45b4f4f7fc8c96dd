from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.x509.oid import NameOID
from lxml import etree

from mcn_cli.ehealth import dn, ns, saml, token
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import KeystoreSigner
from mcn_cli.ehealth.token import TokenRefused
from mcn_cli.ehealth.trust import EHEALTH_OU, STS_ISSUER, StsTrust
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from mcn_cli.sandbox import pki
from mcn_cli.sandbox.world import ANNE, PARC
from tests.test_wssec import software_signer

NOW = datetime.now(UTC).replace(microsecond=0)
SIGNER_NAME = "CBE=0809394427, IAMACC"


@dataclass
class Sts:
    """A token issuer as eHealth's: a CA, and a signer certificate it issued with the STS's name."""

    ca: pki.Issued
    signer: KeystoreSigner

    @property
    def trust(self) -> StsTrust:
        return StsTrust((self.ca.certificate,), SIGNER_NAME)

    def rotated(self) -> Sts:
        return Sts(self.ca, sts_signer(self.ca))


def sts_signer(ca: pki.Issued, name: str = SIGNER_NAME, ou: str = EHEALTH_OU) -> KeystoreSigner:
    subject = pki.name(
        (NameOID.COUNTRY_NAME, "BE"),
        (NameOID.ORGANIZATION_NAME, "Federal Government"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        (NameOID.COMMON_NAME, name),
    )
    issued = pki.issue(subject, pki.rsa_key(), ca)
    return KeystoreSigner(issued.key, issued.certificate)


def make_sts() -> Sts:
    ca = pki.issue(pki.name((NameOID.COMMON_NAME, "test eHealth CA")), pki.rsa_key(), None, ca=True)
    return Sts(ca, sts_signer(ca))


ASKED = saml.pharmacy_attributes(ANNE.niss, PARC.nihii, ANNE.niss)


def issue(sts: Sts, holder, *, recognised="true", linked="true", hours=12, drop=(), issuer=STS_ISSUER):
    certified = {
        saml.CERTIFIED_RECOGNISED: recognised,
        saml.CERTIFIED_HOLDER_NIHII: ANNE.nihii11,
        saml.CERTIFIED_LINKED: linked,
    }
    attributes = [
        (a.namespace, a.name, a.value if a.value is not None else certified[a.name])
        for a in ASKED
        if a.name not in drop
    ]
    return saml.issue_assertion(
        sts.signer,
        sts.signer.certificate,
        saml.Subject("CN=x", "CN=ca"),
        holder.certificate,
        attributes,
        now=NOW,
        not_before=NOW - timedelta(minutes=5),
        not_on_or_after=NOW + timedelta(hours=hours),
        issuer=issuer,
    )


def as_bytes(element) -> bytes:
    return etree.tostring(element)


def test_a_good_token_is_accepted_and_read_from_its_statements():
    sts, holder = make_sts(), software_signer("rsa")
    checked = token.verify(as_bytes(issue(sts, holder)), sts.trust, NOW)
    assert checked.holder_of_key == holder.certificate
    assert checked.not_on_or_after - checked.not_before == timedelta(hours=12, minutes=5)
    assert token.check_session(checked, ASKED, holder.certificate) == "pharmacy"
    assert checked.value(saml.CERTIFIED_HOLDER_NIHII) == ANNE.nihii11


def test_a_rotated_signer_of_the_same_ca_is_trusted_without_configuration():
    sts, holder = make_sts(), software_signer("rsa")
    rotated = sts.rotated()
    assert rotated.signer.certificate != sts.signer.certificate
    token.verify(as_bytes(issue(rotated, holder)), sts.trust, NOW)


@pytest.mark.parametrize(
    ("signer", "message"),
    [
        ("self-signed", "chain"),
        ("other-name", "not by the STS"),
        ("no-ehealth-ou", "not by the STS"),
    ],
)
def test_a_signer_outside_the_chain_or_with_another_name_is_refused(signer, message):
    sts, holder = make_sts(), software_signer("rsa")
    if signer == "self-signed":
        forged = pki.issue(sts.signer.certificate.subject, pki.rsa_key(), None)
        impostor = Sts(sts.ca, KeystoreSigner(forged.key, forged.certificate))
    elif signer == "other-name":
        impostor = Sts(sts.ca, sts_signer(sts.ca, name="CBE=0809394427, SOMEONE"))
    else:
        impostor = Sts(sts.ca, sts_signer(sts.ca, ou="Elsewhere"))
    with pytest.raises(SignatureInvalid, match=message):
        token.verify(as_bytes(issue(impostor, holder)), sts.trust, NOW)


def test_a_changed_attribute_breaks_the_signature():
    sts, holder = make_sts(), software_signer("rsa")
    assertion = issue(sts, holder, linked="false")
    for value in assertion.iter(q(ns.SAML, "AttributeValue")):
        if value.text == "false":
            value.text = "true"
    with pytest.raises(SignatureInvalid, match="digest"):
        token.verify(as_bytes(assertion), sts.trust, NOW)


def test_another_issuer_and_an_expired_token_are_refused():
    sts, holder = make_sts(), software_signer("rsa")
    with pytest.raises(SignatureInvalid, match="Issuer"):
        token.verify(as_bytes(issue(sts, holder, issuer="urn:somebody")), sts.trust, NOW)
    with pytest.raises(SignatureInvalid, match="expired"):
        token.verify(as_bytes(issue(sts, holder, hours=1)), sts.trust, NOW + timedelta(hours=2))


@pytest.mark.parametrize(("recognised", "linked"), [("false", "true"), ("true", "false")])
def test_false_booleans_make_the_token_unusable(recognised, linked):
    sts, holder = make_sts(), software_signer("rsa")
    checked = token.verify(as_bytes(issue(sts, holder, recognised=recognised, linked=linked)), sts.trust, NOW)
    with pytest.raises(TokenRefused, match="does not certify"):
        token.check_session(checked, ASKED, holder.certificate)


def test_a_missing_designated_attribute_or_another_holder_of_key_is_refused():
    sts, holder = make_sts(), software_signer("rsa")
    checked = token.verify(as_bytes(issue(sts, holder, drop=(saml.CERTIFIED_HOLDER_NIHII,))), sts.trust, NOW)
    with pytest.raises(TokenRefused, match="lacks the designated attribute"):
        token.check_session(checked, ASKED, holder.certificate)
    complete = token.verify(as_bytes(issue(sts, holder)), sts.trust, NOW)
    with pytest.raises(TokenRefused, match="another holder-of-key"):
        token.check_session(complete, ASKED, software_signer("rsa").certificate)


def test_an_echoed_claim_that_differs_is_refused():
    sts, holder = make_sts(), software_signer("rsa")
    checked = token.verify(as_bytes(issue(sts, holder)), sts.trust, NOW)
    other_holder = saml.pharmacy_attributes(ANNE.niss, PARC.nihii, "70052021115")
    with pytest.raises(TokenRefused, match="not the claimed"):
        token.check_session(checked, other_holder, holder.certificate)


def test_an_attribute_hidden_in_the_signature_is_not_read():
    sts, holder = make_sts(), software_signer("rsa")
    assertion = issue(sts, holder, linked="false")
    signature = assertion.find(q(ns.DS, "Signature"))
    hidden = etree.SubElement(
        etree.SubElement(signature, q(ns.DS, "Object")), q(ns.SAML, "AttributeStatement")
    )
    etree.SubElement(
        hidden,
        q(ns.SAML, "Attribute"),
        AttributeName=saml.CERTIFIED_LINKED,
        AttributeNamespace=ns.CERTIFIED_NS,
    ).append(etree.Element(q(ns.SAML, "AttributeValue")))
    checked = token.verify(as_bytes(assertion), sts.trust, NOW)
    assert checked.value(saml.CERTIFIED_LINKED) == "false"


def test_the_token_is_shaped_like_ehealths():
    sts, holder = make_sts(), software_signer("rsa")
    assertion = issue(sts, holder)
    assert assertion.get("Issuer") == STS_ISSUER and assertion.get("AssertionID").startswith("_")
    children = [etree.QName(c).localname for c in assertion]
    assert children == ["Conditions", "AuthenticationStatement", "AttributeStatement", "Signature"]
    authentication = assertion.find(q(ns.SAML, "AuthenticationStatement"))
    assert authentication.get("AuthenticationMethod") == saml.AUTHENTICATION_METHOD
    method = authentication.find(f"{q(ns.SAML, 'Subject')}/{q(ns.SAML, 'SubjectConfirmation')}")
    assert method.findtext(q(ns.SAML, "ConfirmationMethod")) == ns.HOLDER_OF_KEY
    names = [a.get("AttributeName") for a in assertion.iter(q(ns.SAML, "Attribute"))]
    assert names == [a.name for a in ASKED]  # every designator, in request order
    key = assertion.find(f"{q(ns.DS, 'Signature')}/{q(ns.DS, 'KeyInfo')}/{q(ns.DS, 'X509Data')}")
    assert key is not None


def test_the_request_designates_all_seven_and_claims_four_in_rfc1779_names():
    identification = software_signer("ec")
    holder = software_signer("rsa")
    request = saml.attribute_query(identification.certificate, holder.certificate, ASKED)
    saml.sign_request(request, holder, holder.certificate)
    parsed = etree.fromstring(etree.tostring(request))
    saml.verify_request_signature(parsed, holder.certificate)
    read = saml.read_query(parsed)
    assert [name for name, _ in read.designators] == [a.name for a in ASKED]
    assert [namespace for _, namespace in read.designators] == [ns.IDENTIFICATION_NS] * 4 + [
        ns.CERTIFIED_NS
    ] * 3
    assert read.claims == {a.name: a.value for a in ASKED[:4]}
    assert read.identification_subject == dn.rfc1779(identification.certificate.subject)
    name = parsed.find(f".//{q(ns.SAML, 'NameIdentifier')}")
    assert name.get("NameQualifier") == dn.rfc1779(identification.certificate.issuer)
    assert name.text.startswith("OID.2.5.4.5=")  # the eID's serial number, as Java writes it
    assert parsed[0].tag == q(ns.DS, "Signature")  # the inner signature comes first
    assert parsed[0].find(f"{q(ns.DS, 'KeyInfo')}/{q(ns.DS, 'X509Data')}") is not None
    with pytest.raises(SignatureInvalid):
        saml.verify_request_signature(parsed, identification.certificate)


def test_an_inner_signature_without_keyinfo_is_refused():
    identification, holder = software_signer("ec"), software_signer("rsa")
    request = saml.attribute_query(identification.certificate, holder.certificate, ASKED)
    saml.sign_request(request, holder, holder.certificate)
    signature = request[0]
    signature.remove(signature.find(q(ns.DS, "KeyInfo")))
    with pytest.raises(SignatureInvalid, match="KeyInfo"):
        saml.verify_request_signature(request, holder.certificate)


def test_java_keeps_an_already_quoted_value_and_escapes_inside_it():
    from cryptography import x509

    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, '"a\\b"'), x509.NameAttribute(NameOID.COUNTRY_NAME, "BE")]
    )
    assert dn.rfc1779(name) == 'C=BE, CN="a\\\\b"'
    spaced = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "two  spaces")])
    assert dn.rfc1779(spaced) == 'OU="two  spaces"'


def test_a_comment_inside_a_signed_value_is_refused():
    """Exclusive C14N without comments does not sign comments: 1830<!---->2514001 still verifies
    but would read as 1830. The token is refused instead."""
    sts, holder = make_sts(), software_signer("rsa")
    data = as_bytes(issue(sts, holder))
    cut = data.replace(
        ANNE.nihii11.encode(), ANNE.nihii11[:4].encode() + b"<!---->" + ANNE.nihii11[4:].encode()
    )
    assert cut != data
    with pytest.raises(SignatureInvalid, match="comment"):
        token.verify(cut, sts.trust, NOW)


def test_a_signer_certificate_not_for_signing_is_refused():
    sts, holder = make_sts(), software_signer("rsa")
    subject = pki.name((NameOID.ORGANIZATIONAL_UNIT_NAME, EHEALTH_OU), (NameOID.COMMON_NAME, SIGNER_NAME))
    key = pki.rsa_key()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(sts.ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(
            x509.KeyUsage(False, False, True, False, False, False, False, False, False), critical=True
        )
        .sign(sts.ca.key, hashes.SHA256())
    )
    encipherer = Sts(sts.ca, KeystoreSigner(key, certificate))
    with pytest.raises(SignatureInvalid, match="not for signing"):
        token.verify(as_bytes(issue(encipherer, holder)), sts.trust, NOW)


def test_the_kept_token_declares_the_prefix_its_xsi_type_names():
    """An STS that declares xmlns:xs on the envelope only: the assertion's bytes alone would name an
    undeclared prefix in xsi:type (C14N does not see it), so the kept copy declares it."""
    from mcn_cli.ehealth import xmldsig

    sts, holder = make_sts(), software_signer("rsa")
    assertion = issue(sts, holder)
    for value in assertion.iter(q(ns.SAML, "AttributeValue")):
        value.set(q(ns.XSI, "type"), "xs:string")
    # re-sign with the xsi:type values in place
    assertion.remove(assertion.find(q(ns.DS, "Signature")))
    from mcn_cli.ehealth.xmldsig import Reference

    xmldsig.sign(
        [Reference(f"#{assertion.get('AssertionID')}", assertion, enveloped=True)],
        sts.signer,
        saml.key_info(sts.signer.certificate),
        assertion.append,
    )
    text = etree.tostring(assertion).decode()
    text = text.replace(f' xmlns:xs="{ns.XS}"', "")
    raw = f'<e:Envelope xmlns:e="urn:e" xmlns:xs="{ns.XS}"><e:Body>{text}</e:Body></e:Envelope>'.encode()
    root = etree.fromstring(raw)
    kept = xmldsig.exact_bytes(raw, root, root[0][0])
    assert kept.decode() not in raw.decode()  # not the raw slice, which lacks the declaration
    element = etree.fromstring(kept)
    assert element.find(f".//{q(ns.SAML, 'AttributeValue')}").nsmap.get("xs") == ns.XS
    token.verify(kept, sts.trust, NOW)
