from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from mcn_cli.ehealth import ns, saml
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.saml import TokenRefused
from mcn_cli.ehealth.xmldsig import SignatureInvalid
from tests.test_wssec import software_signer

NOW = datetime.now(UTC).replace(microsecond=0)


def token(recognised="true", linked="true", hours=12):
    sts = software_signer("rsa")
    holder = software_signer("rsa")
    attributes = {
        (ns.IDENTIFICATION_NS, saml.CLAIM_PHARMACY): "27150201",
        (ns.CERTIFIED_NS, saml.CERTIFIED_RECOGNISED): recognised,
        (ns.CERTIFIED_NS, saml.CERTIFIED_LINKED): linked,
    }
    assertion = saml.issue_assertion(
        sts,
        "sts",
        "CN=x",
        holder.certificate,
        attributes,
        now=NOW,
        not_on_or_after=NOW + timedelta(hours=hours),
    )
    return sts, holder, assertion


def test_a_good_token_is_accepted():
    sts, holder, assertion = token()
    checked = saml.check_assertion(etree.fromstring(etree.tostring(assertion)), sts.certificate, NOW)
    assert checked.holder_of_key == holder.certificate
    assert checked.not_on_or_after - checked.not_before == timedelta(hours=12)
    saml.check_token(checked)


def test_a_changed_attribute_breaks_the_signature():
    sts, _, assertion = token(linked="false")
    for value in assertion.iter(q(ns.SAML, "AttributeValue")):
        if value.text == "false":
            value.text = "true"
    with pytest.raises(SignatureInvalid, match="digest"):
        saml.check_assertion(assertion, sts.certificate, NOW)


def test_another_sts_key_is_refused():
    _, _, assertion = token()
    with pytest.raises(SignatureInvalid):
        saml.check_assertion(assertion, software_signer("rsa").certificate, NOW)


def test_an_expired_token_is_refused():
    sts, _, assertion = token(hours=1)
    with pytest.raises(SignatureInvalid, match="expired"):
        saml.check_assertion(assertion, sts.certificate, NOW + timedelta(hours=2))


@pytest.mark.parametrize(("recognised", "linked"), [("false", "true"), ("true", "false")])
def test_false_booleans_make_the_token_unusable(recognised, linked):
    sts, _, assertion = token(recognised, linked)
    checked = saml.check_assertion(assertion, sts.certificate, NOW)
    with pytest.raises(TokenRefused):
        saml.check_token(checked)


def test_request_follows_the_template_and_is_signed_by_the_holder():
    identification = software_signer("ec")
    holder = software_signer("rsa")
    claims = {saml.CLAIM_SSIN: "75021504626", saml.CLAIM_PHARMACY: "27150201"}
    request = saml.attribute_query(
        identification.certificate, holder.certificate, claims, saml.PHARMACY_DESIGNATORS
    )
    saml.sign_request(request, holder)
    parsed = etree.fromstring(etree.tostring(request))
    assert saml.verify_request_signature(parsed, holder.certificate)
    read = saml.read_query(parsed)
    assert read.claims == claims and read.holder_of_key == holder.certificate
    assert read.designators == saml.PHARMACY_DESIGNATORS
    method = parsed.find(f".//{q(ns.SAML, 'ConfirmationMethod')}").text
    assert method == "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key"
    with pytest.raises(SignatureInvalid):
        saml.verify_request_signature(parsed, identification.certificate)


def test_request_and_response_conform_to_the_saml_1_1_schema():
    from tests.test_consult import REFERENCE

    schema = etree.XMLSchema(
        file=str(REFERENCE / "ehealth" / "external" / "XSD" / "oasis-sstc-saml-schema-protocol-1.1.xsd")
    )
    identification, holder = software_signer("ec"), software_signer("rsa")
    request = saml.attribute_query(
        identification.certificate,
        holder.certificate,
        {saml.CLAIM_SSIN: "75021504626"},
        saml.PHARMACY_DESIGNATORS,
    )
    saml.sign_request(request, holder)
    schema.assertValid(etree.fromstring(etree.tostring(request)))
    _, _, assertion = token()
    schema.assertValid(etree.fromstring(etree.tostring(saml.response("request-1", NOW, assertion))))
    refusal = saml.response("request-1", NOW, None, status="Requester", message="not linked")
    schema.assertValid(etree.fromstring(etree.tostring(refusal)))
