"""Read only what is signed: a real session's token, edited the way an attacker holding a trace
would, must not change who calls or with which key (issue 11, items 1-3)."""

from __future__ import annotations

from datetime import date

import pytest
from lxml import etree

from mcn_cli.ehealth import insurability, ns, saml
from mcn_cli.ehealth.ns import q
from mcn_cli.sandbox import population
from mcn_cli.sandbox.world import LINDE
from tests.conftest import SANDBOX_PIN
from tests.test_wssec import software_signer

TODAY = date.today()


@pytest.fixture
def session(mcn, sandbox, monkeypatch):
    from mcn_cli.actions.local import open_cache
    from mcn_cli.store import sessions

    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    cache = open_cache()
    return sessions.require(cache.db, cache.vault, "default")


def ask(sandbox, session, token: bytes, signer, pharmacy: str | None = None):
    """Send a consultation with ``token`` in the header, signed by ``signer``."""
    from mcn_cli.domain.identifiers import parse_niss
    from mcn_cli.sandbox.server import Sandbox

    patient = next(p for p in population.population(TODAY) if p.scenario == "annex-1")
    envelope = insurability.request_envelope(
        insurability.Origin("mcn", "mcn-sandbox", "sandbox-licence"),
        insurability.Requester(pharmacy or session.organisation, session.holder_niss, session.holder_nihii11),
        parse_niss(patient.niss),
        TODAY,
        reference="20260101000000",
        user_reference=None,
        is_test=True,
        wsse=insurability.HolderOfKey(signer, token),
    )
    return Sandbox(sandbox).insurability(etree.tostring(envelope), {})


def in_signature(token: bytes, *children: etree._Element) -> bytes:
    """The token with ``children`` hidden in a ds:Object of its signature: the enveloped-signature
    transform removes the whole signature, so its digest still holds."""
    root = etree.fromstring(token)
    signature = root.find(q(ns.DS, "Signature"))
    hidden = etree.SubElement(signature, q(ns.DS, "Object"))
    for child in children:
        hidden.append(child)
    return etree.tostring(root)


def attribute_statement(name: str, namespace: str, value: str) -> etree._Element:
    statement = etree.Element(q(ns.SAML, "AttributeStatement"))
    attribute = etree.SubElement(
        statement, q(ns.SAML, "Attribute"), AttributeName=name, AttributeNamespace=namespace
    )
    etree.SubElement(attribute, q(ns.SAML, "AttributeValue")).text = value
    return statement


def test_the_untouched_token_consults(sandbox, session):
    from mcn_cli.actions.login import holder_signer

    assert ask(sandbox, session, session.token_xml(), holder_signer(session)).status == 200


def test_an_attackers_key_hidden_in_the_signature_is_not_the_holder_of_key(sandbox, session):
    attacker = software_signer("rsa")
    subject = etree.Element(q(ns.SAML, "Subject"))
    confirmation = etree.SubElement(subject, q(ns.SAML, "SubjectConfirmation"))
    etree.SubElement(confirmation, q(ns.SAML, "ConfirmationMethod")).text = ns.HOLDER_OF_KEY
    confirmation.append(saml.key_info(attacker.certificate))
    statement = etree.Element(q(ns.SAML, "AuthenticationStatement"))
    statement.append(subject)
    reply = ask(sandbox, session, in_signature(session.token_xml(), statement), attacker)
    assert reply.status == 500 and b"InvalidSecurity" in reply.body


@pytest.mark.parametrize(
    ("name", "namespace", "value", "pharmacy"),
    [
        (saml.CERTIFIED_OT, ns.CERTIFIED_NS, "true", None),  # a pharmacy turned into an office
        (saml.CLAIM_PHARMACY, ns.IDENTIFICATION_NS, LINDE.nihii, LINDE.nihii),  # consult as another
    ],
)
def test_attributes_hidden_in_the_signature_are_not_read(sandbox, session, name, namespace, value, pharmacy):
    from mcn_cli.actions.login import holder_signer

    token = in_signature(session.token_xml(), attribute_statement(name, namespace, value))
    reply = ask(sandbox, session, token, holder_signer(session), pharmacy)
    if pharmacy is None:
        assert reply.status == 200  # still a pharmacy: the office boolean was not read
    else:
        assert reply.status == 500 and b"not the pharmacy of the session" in reply.body


def test_an_attribute_is_its_name_and_its_namespace():
    """A claim named like a certified boolean, in the identification namespace, is not the
    certified boolean."""
    from mcn_cli.ehealth import token
    from tests.test_saml import ASKED, as_bytes, make_sts

    sts, holder = make_sts(), software_signer("rsa")
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    attributes = [(a.namespace, a.name, a.value or "x") for a in ASKED if a.value is not None]
    attributes += [
        (ns.CERTIFIED_NS, saml.CERTIFIED_RECOGNISED, "true"),
        (ns.CERTIFIED_NS, saml.CERTIFIED_HOLDER_NIHII, "18302514001"),
        (ns.CERTIFIED_NS, saml.CERTIFIED_LINKED, "false"),
        (ns.IDENTIFICATION_NS, saml.CERTIFIED_LINKED, "true"),
    ]
    assertion = saml.issue_assertion(
        sts.signer,
        sts.signer.certificate,
        saml.Subject("CN=x", "CN=ca"),
        holder.certificate,
        attributes,
        now=now,
        not_before=now - timedelta(minutes=5),
        not_on_or_after=now + timedelta(hours=1),
        issuer="urn:be:fgov:ehealth:sts:1_0",
    )
    checked = token.verify(as_bytes(assertion), sts.trust, now)
    with pytest.raises(token.TokenRefused, match="does not certify"):
        token.kind_of(checked)
