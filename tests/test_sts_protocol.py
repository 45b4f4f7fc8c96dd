"""The STS exchange, both variants, checked against eHealth's own formats (issue 10).

Real `mcn login --trace` runs against the sandbox (SAML 1.1 and WS-Trust 1.3, RSA and EC keys,
titular and non-titular pharmacists, a tarification office) give the exact bytes that went over
the wire; those are validated against the real schemas (SAML 1.1 protocol/assertion, WS-Trust 1.3
+ authorization claims, WS-Security), compared with ``../shared/docs/STS.md``, with eHealth's
WSDLs and the connector's templates, and verified with ``xmlsec1`` (an independent XML-DSig
implementation). One test per difference listed in issue 10 (``test_d1_`` … ``test_d10_``), then
the sandbox STS's refusals of what the real one refuses.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree

from mcn_cli.ehealth import dn, endpoints, ns, saml, soap, transport, trust, wssec, wstrust, xmldsig
from mcn_cli.ehealth import token as tokens
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import KeystoreSigner, load_keystore
from mcn_cli.ehealth.xmldsig import Reference, SignatureInvalid
from mcn_cli.sandbox import pki, sts
from mcn_cli.sandbox.pki import SANDBOX_PASSWORD, Issued
from mcn_cli.sandbox.setup import load_ca, personal_subject
from mcn_cli.sandbox.world import ANNE, LINDE, MARC, OT_NIHII, PARC, PIETER, STS_SIGNER, Files, sts_trust
from mcn_cli.status import ExitStatus
from mcn_cli.store.settings import Settings
from tests.conftest import REFERENCE, SANDBOX_PIN, needs_reference
from tests.test_wssec import software_signer, xmlsec1_verifies

XSD = REFERENCE / "ehealth" / "external" / "XSD"
WSDL = REFERENCE / "sts" / "ehealth-iam-wsdl"
TEMPLATES = REFERENCE / "sts"
TRUST = REFERENCE / "trust"

pytestmark = needs_reference

WST = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
AUTH = "http://docs.oasis-open.org/wsfed/authorization/200706"
SAML_PATH = "/IAM/Saml11TokenService/v1"
WSTRUST_PATH = "/IAM/SecurityTokenService/v1"
RST_ACTION = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecurityToken"
CHALLENGE_ACTION = "urn:be:fgov:ehealth:sts:protocol:v1:Challenge"
LEGACY_SAML_ACTION = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecureToken"

# STS.md §2, the pharmacy session's table, written out here rather than taken from mcn_cli.
ID_NS = "urn:be:fgov:identification-namespace"
CERT_NS = "urn:be:fgov:certified-namespace:ehealth"
TABLE = (
    ("urn:be:fgov:ehealth:1.0:certificateholder:person:ssin", ID_NS),
    ("urn:be:fgov:ehealth:1.0:pharmacy:nihii-number", ID_NS),
    ("urn:be:fgov:person:ssin", ID_NS),
    ("urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder", ID_NS),
    ("urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean", CERT_NS),
    ("urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder:certified:nihii11", CERT_NS),
    (
        "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:person:ssin:ehealth:1.0:pharmacy-holder:boolean",
        CERT_NS,
    ),
)
HOLDER_CLAIM, HOLDER_NIHII, LINKED = TABLE[3][0], TABLE[5][0], TABLE[6][0]
UNKNOWN = "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:unknown"

# STS.md §2 "DN strings": what Java's X500Principal.getName("RFC1779") gives.
STS_MD_EID = (
    "OID.2.5.4.5=85073003328, OID.2.5.4.42=Alice, OID.2.5.4.4=Exemple, "
    "CN=Alice Exemple (Authentication), C=BE"
)
STS_MD_PERSONAL = (
    'CN="SSIN=85073003328", OU=eHealth-platform Belgium, OU=ALICE EXEMPLE, OU="SSIN=85073003328", '
    "O=Federal Government, C=BE"
)
STS_MD_ISSUER = (
    "CN=ZetesConfidens Private Trust PKI - eHealth issuing CA 001, OID.2.5.4.5=001, O=ZETES SA, C=BE"
)


# --- the real schemas ---------------------------------------------------------------------------

SCHEMAS = {
    ns.SAMLP: "oasis-sstc-saml-schema-protocol-1.1.xsd",
    ns.SAML: "oasis-sstc-saml-schema-assertion-1.1.xsd",
    WST: "ws-trust-1.3-errata-cd-01.xsd",
    AUTH: "ws-authorization-1.2.xsd",
    ns.WSSE: "oasis-200401-wss-wssecurity-secext-1.0.xsd",
    ns.WSU: "oasis-200401-wss-wssecurity-utility-1.0.xsd",
    ns.DS: "xmldsig-core-schema.xsd",
}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    """One schema set importing them all, so that the lax wildcards of WS-Trust and WS-Security
    (xs:any processContents="lax") validate claims, keys and assertions strictly."""
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{(XSD / name).as_uri()}"/>'
        for namespace, name in SCHEMAS.items()
    )
    wrapper = f'<xs:schema xmlns:xs="{ns.XS}" targetNamespace="urn:mcn:test:sts">{imports}</xs:schema>'
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), etree.XMLParser(no_network=True)))


def standalone(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def assert_valid(schema: etree.XMLSchema, element: etree._Element) -> None:
    if not schema.validate(standalone(element)):
        raise AssertionError(f"{etree.QName(element).localname} is invalid: {schema.error_log}")


# --- reading messages ---------------------------------------------------------------------------


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def children(element: etree._Element) -> list[str]:
    return [local(c) for c in element if isinstance(c.tag, str)]


def body_child(data: bytes) -> etree._Element:
    body = etree.fromstring(data).find(q(ns.SOAP, "Body"))
    found = [c for c in body if isinstance(c.tag, str)]
    assert len(found) == 1, found
    return found[0]


def security_of(data: bytes) -> etree._Element:
    security = etree.fromstring(data).find(f"{q(ns.SOAP, 'Header')}/{q(ns.WSSE, 'Security')}")
    assert security is not None
    return security


def certificate(text: str | None) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode("".join((text or "").split())))


def x509_data(parent: etree._Element) -> list[x509.Certificate]:
    return [
        certificate(e.text)
        for e in parent.findall(f"{q(ns.DS, 'KeyInfo')}/{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}")
    ]


def bst_certificate(data: bytes) -> x509.Certificate:
    return certificate(security_of(data).findtext(q(ns.WSSE, "BinarySecurityToken")))


def inner_statement(request: etree._Element) -> etree._Element:
    path = "/".join(
        q(ns.SAML if name != "AttributeQuery" else ns.SAMLP, name)
        for name in (
            "AttributeQuery",
            "Subject",
            "SubjectConfirmation",
            "SubjectConfirmationData",
            "Assertion",
            "AttributeStatement",
        )
    )
    statement = request.find(path)
    assert statement is not None
    return statement


def designators(request: etree._Element) -> list[tuple[str, str | None]]:
    """(name, namespace) as the request designates them (WS-Trust sends no namespace)."""
    if request.tag == q(ns.SAMLP, "Request"):
        return [
            (d.get("AttributeName"), d.get("AttributeNamespace"))
            for d in request.findall(f"{q(ns.SAMLP, 'AttributeQuery')}/{q(ns.SAML, 'AttributeDesignator')}")
        ]
    return [(c.get("Uri"), None) for c in request.findall(f"{q(WST, 'Claims')}/{q(AUTH, 'ClaimType')}")]


def claims(request: etree._Element) -> list[tuple[str, str | None, str]]:
    """(name, namespace, value) of every claimed value, in order."""
    if request.tag == q(ns.SAMLP, "Request"):
        return [
            (a.get("AttributeName"), a.get("AttributeNamespace"), a.findtext(q(ns.SAML, "AttributeValue")))
            for a in inner_statement(request).findall(q(ns.SAML, "Attribute"))
        ]
    return [
        (c.get("Uri"), None, v.text)
        for c in request.findall(f"{q(WST, 'Claims')}/{q(AUTH, 'ClaimType')}")
        for v in c.findall(q(AUTH, "Value"))
    ]


def token_attributes(assertion: etree._Element) -> list[tuple[str, str, str]]:
    return [
        (a.get("AttributeName"), a.get("AttributeNamespace"), a.findtext(q(ns.SAML, "AttributeValue")))
        for a in assertion.findall(f"{q(ns.SAML, 'AttributeStatement')}/{q(ns.SAML, 'Attribute')}")
    ]


def skeleton(element: etree._Element, skip: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """The element tree's shape: (depth, tag) of every element, leaving out the ``skip`` tags."""
    shape: list[tuple[int, str]] = []

    def walk(node: etree._Element, depth: int) -> None:
        for child in node:
            if isinstance(child.tag, str) and child.tag not in skip:
                shape.append((depth, child.tag))
                walk(child, depth + 1)

    shape.append((0, element.tag))
    walk(element, 1)
    return shape


def time_of(text: str | None) -> datetime:
    return wssec.parse_time(text)


# --- real logins, traced ------------------------------------------------------------------------


@dataclass
class Exchange:
    step: int
    action: str
    request: bytes
    response: bytes | None
    modes: tuple[int, ...]


@dataclass
class Login:
    code: int
    err: str
    exchanges: list[Exchange]
    posts: list[tuple[str, str]]  # (URL path, SOAPAction) of every STS call
    session: object | None

    @property
    def first_request(self) -> etree._Element:
        return body_child(self.exchanges[0].request)

    @property
    def identification(self) -> x509.Certificate:
        return bst_certificate(self.exchanges[0].request)

    @property
    def holder_of_key(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(base64.b64decode(self.session.hok_certificate))

    @property
    def assertion(self) -> etree._Element:
        response = self.exchanges[-1].response
        assert response is not None
        found = list(body_child(response).iter(q(ns.SAML, "Assertion")))
        assert len(found) == 1
        return found[0]


def _keystore_serial(path: Path) -> int:
    return x509.load_pem_x509_certificates(path.with_name(path.stem + ".crt").read_bytes())[0].serial_number


def _revoke_annes_personal_certificate(files: Files) -> None:
    files.save_state({"revoked": [str(_keystore_serial(files.personal_keystore(ANNE.niss)))]})


# name: (sts_protocol, extra config.toml lines, login arguments, preparation)
RUNS = {
    # Anne, RSA eID, titular of the Parc: the holder is the sandbox's titular (no setting)
    "wstrust-anne": ("wstrust", "", lambda f: (), None),
    "saml-anne": ("saml", "", lambda f: (), None),
    # Pieter, EC eID, not titular: the holder's NISS from --holder (beating the setting) / the setting
    "wstrust-pieter": (
        "wstrust",
        f'pharmacy_holder = "{MARC.niss}"\n',
        lambda f: ("--user", PIETER.niss, "--holder", ANNE.niss),
        None,
    ),
    "saml-pieter": ("saml", f'pharmacy_holder = "{ANNE.niss}"\n', lambda f: ("--user", PIETER.niss), None),
    # Marc, no eID: personal fallback keystore EC P-384, holder-of-key De Linde's EC P-384
    "wstrust-marc": (
        "wstrust",
        "",
        lambda f: (
            "--fallback",
            str(f.personal_keystore(MARC.niss)),
            "--org",
            str(f.org_keystore(LINDE.nihii)),
        ),
        None,
    ),
    # a tarification office: one certificate for both roles
    "wstrust-office": ("wstrust", "", lambda f: ("--org", str(f.ot_keystore())), None),
    "saml-office": ("saml", "", lambda f: ("--org", str(f.ot_keystore())), None),
    # refused: Pieter names himself as the holder in the setting; claimed as configured, eHealth says no
    "saml-wrong-holder": (
        "saml",
        f'pharmacy_holder = "{PIETER.niss}"\n',
        lambda f: ("--user", PIETER.niss),
        None,
    ),
    "saml-ec-holder-of-key": (
        "saml",
        "",
        lambda f: (
            "--fallback",
            str(f.personal_keystore(MARC.niss)),
            "--org",
            str(f.org_keystore(LINDE.nihii)),
        ),
        None,
    ),
    "wstrust-revoked": (  # last: it revokes a certificate in this sandbox copy
        "wstrust",
        "",
        lambda f: ("--fallback", str(f.personal_keystore(ANNE.niss))),
        _revoke_annes_personal_certificate,
    ),
}
PEOPLE_OF = {  # (user, pharmacy, holder) of the pharmacy logins that succeed
    "wstrust-anne": (ANNE, PARC, ANNE),
    "saml-anne": (ANNE, PARC, ANNE),
    "wstrust-pieter": (PIETER, PARC, ANNE),
    "saml-pieter": (PIETER, PARC, ANNE),
    "wstrust-marc": (MARC, LINDE, MARC),
}
OFFICE_LOGINS = ("wstrust-office", "saml-office")
SUCCESSFUL = (*PEOPLE_OF, *OFFICE_LOGINS)
SAML_LOGINS = tuple(n for n in SUCCESSFUL if n.startswith("saml"))
CHALLENGED = tuple(n for n in PEOPLE_OF if n.startswith("wstrust"))
TRACE_NAME = re.compile(r"-STS-(\d+)-([A-Za-z]+)-(request|response)\.xml$")


def _read_traces(folder: Path) -> list[Exchange]:
    found: dict[tuple[int, str], dict[str, Path]] = {}
    for path in folder.iterdir():
        match = TRACE_NAME.search(path.name)
        assert match, f"unexpected trace file {path.name}"
        found.setdefault((int(match[1]), match[2]), {})[match[3]] = path
    return [
        Exchange(
            step,
            action,
            parts["request"].read_bytes(),
            parts["response"].read_bytes() if "response" in parts else None,
            tuple(p.stat().st_mode & 0o777 for p in parts.values()),
        )
        for (step, action), parts in sorted(found.items())
    ]


@dataclass
class Logins:
    files: Files
    runs: dict[str, Login]

    def __getitem__(self, name: str) -> Login:
        return self.runs[name]


@pytest.fixture(scope="module")
def logins(sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Logins:
    """Every run of RUNS, once per module, in its own MCN_HOME with a copy of the sandbox."""
    from mcn_cli.actions.local import open_database
    from mcn_cli.cli.main import run
    from mcn_cli.sandbox import runtime
    from mcn_cli.store import sessions, vault

    home = tmp_path_factory.mktemp("sts-protocol") / "mcn-home"
    files = Files(home / "data" / "sandbox")
    shutil.copytree(sandbox_template, files.root)
    runs: dict[str, Login] = {}
    softhsm_conf = os.environ.get("SOFTHSM2_CONF")
    posts: list[tuple[str, str]] = []
    real_post = transport.post

    def recording_post(url: str, payload: bytes, soap_action: str, **kwargs: object) -> object:
        posts.append((urlsplit(url).path, soap_action))
        return real_post(url, payload, soap_action, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        for variable in [v for v in os.environ if v.startswith("MCN_")]:
            patch.delenv(variable)
        patch.setenv("MCN_HOME", str(home))
        patch.setenv("MCN_PIN", SANDBOX_PIN)
        patch.setattr(transport, "post", recording_post)
        try:
            for name, (protocol, config, arguments, prepare) in RUNS.items():
                if prepare is not None:
                    prepare(files)
                (home / "config.toml").write_text(f'sts_protocol = "{protocol}"\n{config}')
                folder = home / "traces" / name
                folder.mkdir(parents=True)
                posts.clear()
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = run(["login", "--session", name, "--trace", str(folder), *arguments(files)])
                session = None
                if code == 0:
                    with open_database() as db:
                        session = sessions.find(db, vault.unlock(db), name)
                runs[name] = Login(code, err.getvalue(), _read_traces(folder), list(posts), session)
        finally:
            runtime.stop_in_process()
            if softhsm_conf is None:
                os.environ.pop("SOFTHSM2_CONF", None)
            else:
                os.environ["SOFTHSM2_CONF"] = softhsm_conf
    return Logins(files, runs)


@pytest.mark.parametrize("name", SUCCESSFUL)
def test_the_traced_logins_succeed(logins, name):
    login = logins[name]
    assert login.code == 0, login.err
    assert login.session is not None
    expected = ["RequestSecurityToken", "Challenge"] if name in CHALLENGED else ["RequestSecurityToken"]
    assert [(e.step, e.action) for e in login.exchanges] == list(enumerate(expected, 1))


# --- 1. conformance to the real schemas ---------------------------------------------------------


@pytest.mark.parametrize("name", SUCCESSFUL)
def test_every_traced_sts_message_validates_against_the_real_schemas(logins, schema, name):
    login = logins[name]
    shapes = []
    for exchange in login.exchanges:
        assert exchange.response is not None
        for data in (exchange.request, exchange.response):
            child = body_child(data)
            assert_valid(schema, child)
            shapes.append(local(child))
        security = security_of(exchange.request)
        assert_valid(schema, security)
        for part in security:  # Timestamp, BinarySecurityToken, Signature, each on its own too
            assert_valid(schema, part)
    assert_valid(schema, login.assertion)
    if name.startswith("saml"):
        assert shapes == ["Request", "Response"]
        assert_valid(schema, login.first_request.find(q(ns.DS, "Signature")))
        assert_valid(schema, inner_statement(login.first_request).getparent())  # the claims assertion
    elif name in CHALLENGED:
        assert shapes == ["RequestSecurityToken", *["RequestSecurityTokenResponse"] * 3]
    else:
        assert shapes == ["RequestSecurityToken", "RequestSecurityTokenResponse"]


def test_the_schemas_catch_a_malformed_message(logins, schema):
    """The schema set is not vacuous: it descends into the lax parts and refuses broken shapes."""
    request = copy.deepcopy(logins["saml-anne"].first_request)
    request.append(request[0])  # the inner Signature after the AttributeQuery
    assert not schema.validate(standalone(request))
    rst = copy.deepcopy(logins["wstrust-anne"].first_request)
    del rst.find(f"{q(WST, 'Claims')}/{q(AUTH, 'ClaimType')}").attrib["Uri"]
    assert not schema.validate(standalone(rst))
    security = copy.deepcopy(security_of(logins["wstrust-anne"].exchanges[0].request))
    timestamp = security.find(q(ns.WSU, "Timestamp"))
    timestamp.append(timestamp[0])  # Expires before Created
    assert not schema.validate(standalone(security))
    assertion = copy.deepcopy(logins["wstrust-anne"].assertion)
    del assertion.attrib["Issuer"]
    assert not schema.validate(standalone(assertion))


@pytest.mark.parametrize("name", ["wstrust-anne", "saml-anne"])
def test_traced_bodies_have_the_shape_of_the_connectors_templates(logins, name):
    """The eHealth connector's templates (../shared/reference/sts), filled as mcn fills them."""
    login = logins[name]
    if name.startswith("saml"):
        template = etree.parse(
            TEMPLATES / "connector-templates" / "legacy" / "issue.samlv11.hok.template.xml"
        )
        added = (q(ns.DS, "Signature"), q(ns.SAML, "Attribute"), q(ns.SAML, "AttributeDesignator"))
        assert skeleton(login.first_request, added) == skeleton(template.getroot())
    else:
        template = etree.parse(TEMPLATES / "freehealth-wstrust" / "issue.samlv11.hok.template.xml")
        assert skeleton(login.first_request, (q(AUTH, "ClaimType"),)) == skeleton(template.getroot())
        answer = etree.parse(TEMPLATES / "freehealth-wstrust" / "signchallenge.template.xml")
        assert skeleton(body_child(login.exchanges[1].request)) == skeleton(answer.getroot())


# --- 2. one test per difference of issue 10 -----------------------------------------------------


@pytest.mark.parametrize("name", list(PEOPLE_OF))
def test_d1_seven_designators_in_the_tables_order_and_four_claims(logins, name):
    login = logins[name]
    user, pharmacy, holder = PEOPLE_OF[name]
    request = login.first_request
    values = [user.niss, pharmacy.nihii, user.niss, holder.niss]
    if name.startswith("saml"):
        assert designators(request) == list(TABLE)
        assert claims(request) == [(n, s, v) for (n, s), v in zip(TABLE, values, strict=False)]
    else:  # WS-Trust: ClaimType per row, auth:Value on rows 1-4, no namespaces sent
        assert designators(request) == [(n, None) for n, _ in TABLE]
        assert claims(request) == [(n, None, v) for (n, _), v in zip(TABLE, values, strict=False)]
        for claim in request.iter(q(AUTH, "ClaimType")):
            assert set(claim.attrib) == {"Uri"}
    # the STS returns exactly what is designated, in request order: claims echoed, the rest certified
    assert token_attributes(login.assertion) == [
        (n, s, v) for (n, s), v in zip(TABLE, [*values, "true", holder.nihii11, "true"], strict=True)
    ]
    assert [
        (a.name, a.namespace) for a in saml.pharmacy_attributes(user.niss, pharmacy.nihii, holder.niss)
    ] == list(TABLE)


def test_d2_the_holders_niss_is_claimed_from_the_option_or_setting_and_certified_by_the_sts(logins):
    for name in ("wstrust-pieter", "saml-pieter"):  # --holder ANNE (setting MARC) / setting ANNE
        login = logins[name]
        assert (HOLDER_CLAIM, ANNE.niss) in [(n, v) for n, _, v in claims(login.first_request)], name
        certified = {(s, n): v for n, s, v in token_attributes(login.assertion)}
        assert certified[(ID_NS, HOLDER_CLAIM)] == ANNE.niss
        assert certified[(CERT_NS, HOLDER_NIHII)] == ANNE.nihii11
        assert certified[(CERT_NS, LINKED)] == "true"
        session = login.session
        assert (session.user_niss, session.holder_niss, session.holder_nihii11) == (
            PIETER.niss,
            certified[(ID_NS, HOLDER_CLAIM)],
            certified[(CERT_NS, HOLDER_NIHII)],
        )
    # the setting is what is claimed: a pharmacist who is not the holder is refused by eHealth
    wrong = logins["saml-wrong-holder"]
    assert wrong.code == ExitStatus.AUTH_NEEDED and wrong.session is None
    assert (HOLDER_CLAIM, PIETER.niss) in [(n, v) for n, _, v in claims(wrong.first_request)]
    assert (LINKED, CERT_NS, "false") in token_attributes(wrong.assertion)


@pytest.mark.parametrize("name", SAML_LOGINS)
def test_d3_the_inner_signature_carries_the_holder_of_key_certificate(logins, name):
    login = logins[name]
    request = login.first_request
    signature = request[0]
    assert signature.tag == q(ns.DS, "Signature")
    hok = login.holder_of_key
    assert x509_data(signature) == [hok]
    confirmation = request.find(
        f"{q(ns.SAMLP, 'AttributeQuery')}/{q(ns.SAML, 'Subject')}/{q(ns.SAML, 'SubjectConfirmation')}"
    )
    assert x509_data(confirmation) == [hok]
    info = signature.find(q(ns.DS, "SignedInfo"))
    assert info.find(q(ns.DS, "CanonicalizationMethod")).get("Algorithm") == ns.EXC_C14N
    (reference,) = info.findall(q(ns.DS, "Reference"))
    assert reference.get("URI") == "#" + request.get("RequestID")
    assert [t.get("Algorithm") for t in reference.iter(q(ns.DS, "Transform"))] == [ns.ENVELOPED, ns.EXC_C14N]
    saml.verify_request_signature(request, hok)


@pytest.mark.parametrize("name", SUCCESSFUL)
def test_d4_ws_security_signs_body_timestamp_and_bst_with_a_60_second_timestamp(logins, name):
    for exchange in logins[name].exchanges:
        root = etree.fromstring(exchange.request)
        security = security_of(exchange.request)
        assert security.get(q(ns.SOAP, "mustUnderstand")) == "1"
        assert children(security) == ["Timestamp", "BinarySecurityToken", "Signature"]
        timestamp, bst, signature = security
        created = time_of(timestamp.findtext(q(ns.WSU, "Created")))
        assert time_of(timestamp.findtext(q(ns.WSU, "Expires"))) - created == timedelta(seconds=60)
        assert (bst.get("ValueType"), bst.get("EncodingType")) == (ns.X509V3, ns.BASE64)
        body = root.find(q(ns.SOAP, "Body"))
        info = signature.find(q(ns.DS, "SignedInfo"))
        assert info.find(q(ns.DS, "CanonicalizationMethod")).get("Algorithm") == ns.EXC_C14N
        references = info.findall(q(ns.DS, "Reference"))
        assert [r.get("URI") for r in references] == [
            "#" + e.get(wssec.WSU_ID) for e in (body, timestamp, bst)
        ]
        for reference in references:
            assert [t.get("Algorithm") for t in reference.iter(q(ns.DS, "Transform"))] == [ns.EXC_C14N]
            assert reference.find(q(ns.DS, "DigestMethod")).get("Algorithm") == ns.SHA256
        token_reference = signature.find(
            f"{q(ns.DS, 'KeyInfo')}/{q(ns.WSSE, 'SecurityTokenReference')}/{q(ns.WSSE, 'Reference')}"
        )
        assert token_reference.get("URI") == "#" + bst.get(wssec.WSU_ID)
        assert token_reference.get("ValueType") == ns.X509V3
        key = certificate(bst.text).public_key()
        method = info.find(q(ns.DS, "SignatureMethod")).get("Algorithm")
        value = base64.b64decode(signature.findtext(q(ns.DS, "SignatureValue")))
        if isinstance(key, ec.EllipticCurvePublicKey):  # XML-DSig's raw r||s, not DER
            assert method == ns.ECDSA_SHA256
            assert len(value) == 2 * ((key.curve.key_size + 7) // 8)
        else:
            assert method == ns.RSA_SHA256


def _wsdl(name: str) -> tuple[str, str, list[str]]:
    """(host, path, SOAPActions) of one of eHealth's IAM WSDLs."""
    document = etree.parse(WSDL / name)
    soap11 = "http://schemas.xmlsoap.org/wsdl/soap/"
    location = urlsplit(next(document.iter(q(soap11, "address"))).get("location"))
    return (
        location.netloc,
        location.path,
        [o.get("soapAction") for o in document.iter(q(soap11, "operation"))],
    )


def test_d5_endpoints_and_soap_actions_are_ehealths_per_variant(logins):
    prod_host, saml_path, saml_actions = _wsdl("ehealth-iam-sts-saml1-v1.wsdl")
    _, trust_path, trust_actions = _wsdl("ehealth-iam-sts-ws-trust-1.3-proxy-v1.wsdl")
    assert (saml_path, saml_actions) == (SAML_PATH, [RST_ACTION])
    assert (trust_path, trust_actions) == (WSTRUST_PATH, [RST_ACTION, CHALLENGE_ACTION])
    assert logins["saml-anne"].posts == [(saml_path, RST_ACTION)]
    assert logins["saml-office"].posts == [(saml_path, RST_ACTION)]
    assert logins["wstrust-anne"].posts == [(trust_path, RST_ACTION), (trust_path, CHALLENGE_ACTION)]
    assert logins["wstrust-office"].posts == [(trust_path, RST_ACTION)]
    hosts = {"acc": "services-acpt.ehealth.fgov.be", "prod": prod_host}
    for env, host in hosts.items():
        for protocol, path in (("saml", saml_path), ("wstrust", trust_path)):
            resolved = endpoints.resolve(Settings(env=env, sts_protocol=protocol))
            assert resolved.sts_url == f"https://{host}{path}"
    assert endpoints.resolve(Settings(env="acc")).sts_protocol == "wstrust"  # the default


def test_d6_names_in_java_rfc1779_form_match_the_sts_md_table():
    zetes = x509.load_pem_x509_certificate(
        (TRUST / "zetesconfidens-private-trust-pki-ehealth-issuing-ca-001.pem").read_bytes()
    )
    assert dn.rfc1779(zetes.subject) == STS_MD_ISSUER  # eHealth's real issuing CA
    stand_in = pki.issue(zetes.subject, pki.ec_key(), None, ca=True)  # a CA named like it
    hok = pki.issue(pki.ehealth_subject("NIHII-PHARMACY", PARC.nihii, "ANNE LAMBERT"), pki.ec_key(), stand_in)
    for subject, expected in (
        (pki.eid_subject("85073003328", "Alice", "Exemple"), STS_MD_EID),
        (personal_subject("85073003328", "ALICE EXEMPLE"), STS_MD_PERSONAL),
    ):
        identification = pki.issue(subject, pki.ec_key(), stand_in).certificate
        assert identification.subject.rfc4514_string() != expected  # not Python's own form
        request = saml.attribute_query(
            identification, hok.certificate, saml.pharmacy_attributes("85073003328", PARC.nihii, ANNE.niss)
        )
        names = list(request.iter(q(ns.SAML, "NameIdentifier")))
        assert len(names) == 2  # the query's subject and the claims' subject
        for name in names:
            assert (name.text, name.get("NameQualifier")) == (expected, STS_MD_ISSUER)
            assert name.get("Format") == "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
        assert inner_statement(request).getparent().get("Issuer") == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "saml-anne",
            f"OID.2.5.4.5={ANNE.niss}, OID.2.5.4.42=Anne, OID.2.5.4.4=Lambert, "
            "CN=Anne Lambert (Authentication), C=BE",
        ),
        (
            "saml-office",
            f'CN="NIHII-OTD_PHARMACY={OT_NIHII}", OU=eHealth-platform Belgium, '
            f'OU=OFFICE DE TARIFICATION TEST, OU="NIHII-OTD_PHARMACY={OT_NIHII}", O=Federal Government, C=BE',
        ),
    ],
    ids=["eid", "office"],
)
def test_d6_traced_requests_name_the_identification_certificate_in_rfc1779_form(logins, name, expected):
    login = logins[name]
    issuer = {
        "saml-anne": "CN=mcn sandbox Citizen CA, C=BE",
        "saml-office": "CN=mcn sandbox eHealth CA, C=BE",
    }
    for element in login.first_request.iter(q(ns.SAML, "NameIdentifier")):
        assert (element.text, element.get("NameQualifier")) == (expected, issuer[name])
    assert dn.rfc1779(login.identification.subject) == expected


@pytest.mark.parametrize("name", CHALLENGED)
def test_d7_wstrust_round_trip_with_a_sign_challenge_answered_with_the_holder_of_key(logins, name):
    login = logins[name]
    first, second = login.exchanges
    rst = body_child(first.request)
    assert children(rst) == ["TokenType", "RequestType", "Claims", "Lifetime", "KeyType", "UseKey"]
    assert rst.findtext(q(WST, "TokenType")) == ns.SAML_TOKEN
    assert rst.findtext(q(WST, "RequestType")) == "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue"
    assert rst.findtext(q(WST, "KeyType")) == "http://docs.oasis-open.org/ws-sx/wstrust/200512/PublicKey"
    assert rst.find(q(WST, "Claims")).get("Dialect") == f"{AUTH}/authclaims"
    assert rst.get("Context").startswith("urn:uuid:")
    lifetime = rst.find(q(WST, "Lifetime"))
    assert time_of(lifetime.findtext(q(ns.WSU, "Expires"))) - time_of(
        lifetime.findtext(q(ns.WSU, "Created"))
    ) == timedelta(hours=12)
    use_key = rst.find(f"{q(WST, 'UseKey')}/{q(ns.WSSE, 'SecurityTokenReference')}")
    hok = login.holder_of_key
    assert children(rst.find(q(WST, "UseKey"))) == ["SecurityTokenReference"]
    assert certificate(use_key.findtext(f"{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}")) == hok
    assert bst_certificate(first.request) == login.identification != hok
    # the STS challenges ...
    challenge = body_child(first.response)
    assert (local(challenge), challenge.get("Context")) == (
        "RequestSecurityTokenResponse",
        rst.get("Context"),
    )
    text = challenge.findtext(f"{q(WST, 'SignChallenge')}/{q(WST, 'Challenge')}")
    assert text
    # ... the answer echoes it, its BST is the holder-of-key certificate, signed with that key
    answer = body_child(second.request)
    assert answer.get("Context") == rst.get("Context")
    assert answer.findtext(f"{q(WST, 'SignChallengeResponse')}/{q(WST, 'Challenge')}") == text
    assert bst_certificate(second.request) == hok
    assert wssec.verify_envelope(second.request, now=_created(second.request)).certificate == hok
    # ... and the token comes in the final RSTR
    final = body_child(second.response)
    assert final.get("Context") == rst.get("Context")
    assert children(final) == ["TokenType", "RequestedSecurityToken"]
    assert x509_data(_confirmation(login.assertion)) == [hok]


def test_d7_no_challenge_when_the_usekey_certificate_signed_the_request(logins):
    login = logins["wstrust-office"]
    (exchange,) = login.exchanges
    use_key = login.first_request.find(f"{q(WST, 'UseKey')}/{q(ns.WSSE, 'SecurityTokenReference')}")
    hok = certificate(use_key.findtext(f"{q(ns.DS, 'X509Data')}/{q(ns.DS, 'X509Certificate')}"))
    assert bst_certificate(exchange.request) == hok == login.holder_of_key
    assert children(body_child(exchange.response)) == ["TokenType", "RequestedSecurityToken"]


def _signed_token(signer: Issued, files: Files, now: datetime) -> bytes:
    """An assertion shaped like the sandbox STS's, signed by ``signer``."""
    eid = pki.load_certificate(files.root / "eid" / f"{ANNE.niss}.pem")
    hok = x509.load_pem_x509_certificates(files.org_keystore(PARC.nihii).with_suffix(".crt").read_bytes())[0]
    assertion = saml.issue_assertion(
        KeystoreSigner(signer.key, signer.certificate),
        signer.certificate,
        saml.Subject.of(eid),
        hok,
        [(CERT_NS, TABLE[4][0], "true")],
        now=now,
        not_before=now - timedelta(minutes=5),
        not_on_or_after=now + timedelta(hours=12),
        issuer=trust.STS_ISSUER,
    )
    return etree.tostring(assertion)


@pytest.fixture(scope="module")
def files(sandbox_template: Path) -> Files:
    """The session's sandbox template, read only."""
    return Files(sandbox_template)


def test_d8_tokens_are_trusted_by_chain_and_subject_not_by_a_pinned_certificate(files):
    now = datetime.now(UTC)
    sandbox_trust = sts_trust(files)
    name = load_ca(files, "sts").certificate.subject
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STS_SIGNER
    ehealth_ca = load_ca(files, "ehealth")
    # the STS rotated its key: a new signer from the same CA, with the same name, is believed
    rotated = pki.issue(name, pki.ec_key(), ehealth_ca)
    assert tokens.verify(_signed_token(rotated, files, now), sandbox_trust, now).assertion_id
    # a self-signed certificate with the right name is not
    forged = pki.issue(name, pki.ec_key(), None)
    with pytest.raises(SignatureInvalid, match="does not chain"):
        tokens.verify(_signed_token(forged, files, now), sandbox_trust, now)
    # nor one naming the right CA as issuer but signed with another key
    spoofed = pki.issue(name, pki.ec_key(), Issued(pki.ec_key(), ehealth_ca.certificate))
    with pytest.raises(SignatureInvalid, match="does not chain"):
        tokens.verify(_signed_token(spoofed, files, now), sandbox_trust, now)
    # nor a genuine certificate of the same CA under another name
    other = pki.issue(pki.ehealth_subject("NIHII-PHARMACY", PARC.nihii, "X"), pki.ec_key(), ehealth_ca)
    with pytest.raises(SignatureInvalid, match="not by the STS"):
        tokens.verify(_signed_token(other, files, now), sandbox_trust, now)


def test_d8_ehealths_signers_chain_to_the_shipped_public_cas(files):
    reference = {
        x509.load_pem_x509_certificate((TRUST / f"zetesconfidens-private-trust-pki-{n}-001.pem").read_bytes())
        for n in ("root-ca", "ehealth-issuing-ca")
    }
    shipped = trust.ehealth_anchors()
    assert set(shipped) == reference and len(shipped) == 2
    acc = endpoints.resolve(Settings(env="acc")).trust
    prod = endpoints.resolve(Settings(env="prod")).trust
    assert (set(acc.anchors), acc.signer_name, acc.issuer) == (
        reference,
        "CBE=0809394427, IAMACC",
        "urn:be:fgov:ehealth:sts:1_0",
    )
    assert (set(prod.anchors), prod.signer_name) == (reference, "CBE=0809394427, IAM")
    iamacc = x509.load_pem_x509_certificate((TRUST / "sts-signer-iamacc-expired-2024.pem").read_bytes())
    iam = x509.load_pem_x509_certificate((TRUST / "sts-signer-iam-expired-2024.pem").read_bytes())
    while_valid = datetime(2023, 6, 1, tzinfo=UTC)
    acc.check_signer(iamacc, while_valid)
    prod.check_signer(iam, while_valid)
    with pytest.raises(SignatureInvalid, match="not by the STS"):
        prod.check_signer(iamacc, while_valid)
    with pytest.raises(SignatureInvalid, match="not valid now"):
        acc.check_signer(iamacc, datetime.now(UTC))  # expired: its successor is believed by the same rule
    with pytest.raises(SignatureInvalid, match="does not chain"):
        trust.StsTrust(sts_trust(files).anchors, acc.signer_name).check_signer(iamacc, while_valid)


def _confirmation(assertion: etree._Element) -> etree._Element:
    return assertion.find(
        f"{q(ns.SAML, 'AuthenticationStatement')}/{q(ns.SAML, 'Subject')}/{q(ns.SAML, 'SubjectConfirmation')}"
    )


@pytest.mark.parametrize("name", ["wstrust-anne", "saml-anne", "wstrust-marc", "saml-office"])
def test_d9_the_sandbox_issues_assertions_shaped_like_ehealths(logins, name):
    login = logins[name]
    assertion = login.assertion
    assert re.fullmatch(r"_[0-9a-f]{32}", assertion.get("AssertionID"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", assertion.get("IssueInstant"))
    assert (assertion.get("Issuer"), assertion.get("MajorVersion"), assertion.get("MinorVersion")) == (
        "urn:be:fgov:ehealth:sts:1_0",
        "1",
        "1",
    )
    assert children(assertion) == ["Conditions", "AuthenticationStatement", "AttributeStatement", "Signature"]
    issued = time_of(assertion.get("IssueInstant"))
    conditions = assertion.find(q(ns.SAML, "Conditions"))
    assert children(conditions) == []  # no Audience
    assert abs(time_of(conditions.get("NotBefore")) - (issued - timedelta(minutes=5))) < timedelta(seconds=1)
    assert timedelta(hours=11) < time_of(conditions.get("NotOnOrAfter")) - issued <= timedelta(hours=24)
    # AuthenticationStatement: who authenticated (Java toString names), holder-of-key confirmation
    authentication = assertion.find(q(ns.SAML, "AuthenticationStatement"))
    assert authentication.get("AuthenticationMethod") == "urn:oasis:names:tc:SAML:1.0:am:X509-PKI"
    identification = login.identification
    for subject in assertion.iter(q(ns.SAML, "Subject")):
        name_identifier = subject.find(q(ns.SAML, "NameIdentifier"))
        assert (name_identifier.text, name_identifier.get("NameQualifier")) == (
            dn.java_string(identification.subject),
            dn.java_string(identification.issuer),
        )
    if name == "saml-anne":
        assert name_identifier.text == (
            f"SERIALNUMBER={ANNE.niss}, GIVENNAME=Anne, SURNAME=Lambert, "
            "CN=Anne Lambert (Authentication), C=BE"
        )
    confirmation = _confirmation(assertion)
    assert confirmation.findtext(q(ns.SAML, "ConfirmationMethod")) == ns.HOLDER_OF_KEY
    assert x509_data(confirmation) == [login.holder_of_key]
    statement = assertion.find(q(ns.SAML, "AttributeStatement"))
    assert children(statement.find(q(ns.SAML, "Subject"))) == ["NameIdentifier"]
    assert [n for n, _, _ in token_attributes(assertion)] == [n for n, _ in designators(login.first_request)]
    # Signature: exc-c14n, rsa-sha256 over #AssertionID, KeyInfo = the STS's leaf certificate only
    signature = assertion[-1]
    info = signature.find(q(ns.DS, "SignedInfo"))
    assert info.find(q(ns.DS, "CanonicalizationMethod")).get("Algorithm") == ns.EXC_C14N
    assert info.find(q(ns.DS, "SignatureMethod")).get("Algorithm") == ns.RSA_SHA256
    (reference,) = info.findall(q(ns.DS, "Reference"))
    assert reference.get("URI") == "#" + assertion.get("AssertionID")
    assert [t.get("Algorithm") for t in reference.iter(q(ns.DS, "Transform"))] == [ns.ENVELOPED, ns.EXC_C14N]
    assert reference.find(q(ns.DS, "DigestMethod")).get("Algorithm") == ns.SHA256
    (signer,) = x509_data(signature)
    assert signer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STS_SIGNER
    assert signer.issuer == load_ca(logins.files, "ehealth").certificate.subject
    # and the client's own checks accept it
    now = datetime.now(UTC)
    token = tokens.verify(etree.tostring(assertion), sts_trust(logins.files), now)
    if name in PEOPLE_OF:
        user, pharmacy, holder = PEOPLE_OF[name]
        asked = saml.pharmacy_attributes(user.niss, pharmacy.nihii, holder.niss)
        assert tokens.check_session(token, asked, login.holder_of_key) == "pharmacy"
    else:
        assert tokens.check_session(token, saml.office_attributes(OT_NIHII), login.holder_of_key) == "ot"


def _created(data: bytes) -> datetime:
    return time_of(security_of(data).findtext(f"{q(ns.WSU, 'Timestamp')}/{q(ns.WSU, 'Created')}"))


def xmlsec1_chain_verifies(
    document: bytes, id_attr: str, node: str, xpath: str, files: Files, tmp_path
) -> bool:
    """xmlsec1 checks an enveloped signature whose KeyInfo carries the signer's certificate,
    building its chain to the sandbox root itself."""
    message = tmp_path / "enveloped.xml"
    message.write_bytes(document)
    result = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--trusted-pem",
            str(files.ca_cert("root")),
            "--untrusted-pem",
            str(files.ca_cert("ehealth")),
            f"--id-attr:{id_attr}",
            node,
            "--node-xpath",
            xpath,
            str(message),
        ],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0


@pytest.mark.parametrize("name", SUCCESSFUL)
def test_d10_traced_sts_messages_verify_with_xmlsec1_and_the_projects_verifier(logins, name, tmp_path):
    login = logins[name]
    for exchange in login.exchanges:
        assert all(mode & 0o077 == 0 for mode in exchange.modes)  # owner-only
        signer = bst_certificate(exchange.request)
        assert xmlsec1_verifies(exchange.request, signer, tmp_path)
        verified = wssec.verify_envelope(exchange.request, now=_created(exchange.request))
        assert verified.certificate == signer
    if name.startswith("saml"):  # the inner enveloped signature, chain built from its KeyInfo
        assert xmlsec1_chain_verifies(
            login.exchanges[0].request,
            "RequestID",
            f"{ns.SAMLP}:Request",
            "/*/*[local-name()='Body']/*/*[local-name()='Signature']",
            logins.files,
            tmp_path,
        )
    # the token, in the traced answer as received, its signer chained by xmlsec1 to the sandbox root
    assert xmlsec1_chain_verifies(
        login.exchanges[-1].response,
        "AssertionID",
        f"{ns.SAML}:Assertion",
        "//*[local-name()='Assertion']/*[local-name()='Signature']",
        logins.files,
        tmp_path,
    )


def test_d10_a_changed_trace_no_longer_verifies(logins, tmp_path):
    exchange = logins["saml-anne"].exchanges[0]
    changed = exchange.request.replace(PARC.nihii.encode(), LINDE.nihii.encode())
    assert changed != exchange.request
    assert not xmlsec1_verifies(changed, bst_certificate(changed), tmp_path)
    with pytest.raises(SignatureInvalid, match="digest"):
        wssec.verify_envelope(changed, now=_created(changed))


def test_an_ec_holder_of_key_key_needs_wstrust(logins):
    login = logins["saml-ec-holder-of-key"]
    assert login.code == ExitStatus.BAD_INPUT and 'sts_protocol = "wstrust"' in login.err
    assert login.posts == [] and login.exchanges == []


def test_a_refused_login_traces_the_sts_fault_answer(logins):
    login = logins["wstrust-revoked"]
    assert login.code == ExitStatus.AUTH_NEEDED and "revoked" in login.err
    (exchange,) = login.exchanges
    assert exchange.response is not None
    fault = soap.read_fault(etree.fromstring(exchange.response))
    assert fault is not None and "revoked" in fault.message


# --- 3. the sandbox STS refuses what the real one refuses ---------------------------------------


@dataclass(frozen=True)
class Actors:
    authority: sts.Authority
    eid: KeystoreSigner  # Anne's eID (identification)
    org: KeystoreSigner  # the Parc's organisation keystore (holder-of-key)


@pytest.fixture(scope="module")
def actors(files: Files) -> Actors:
    eid = KeystoreSigner(
        pki.load_key(files.root / "eid" / f"{ANNE.niss}.key"),
        pki.load_certificate(files.root / "eid" / f"{ANNE.niss}.pem"),
    )
    org = load_keystore(files.org_keystore(PARC.nihii), SANDBOX_PASSWORD, "org")
    return Actors(sts.Authority.load(files), eid, org)


def anne_at_the_parc() -> tuple[saml.Attribute, ...]:
    return saml.pharmacy_attributes(ANNE.niss, PARC.nihii, ANNE.niss)


def signed(body: etree._Element, signer: KeystoreSigner) -> bytes:
    return wssec.to_bytes(wssec.sign_envelope(wssec.envelope(body), signer))


def saml_request(actors: Actors, attributes=None, *, inner: KeystoreSigner | None = None) -> etree._Element:
    request = saml.attribute_query(
        actors.eid.certificate, actors.org.certificate, attributes or anne_at_the_parc()
    )
    inner = inner or actors.org
    saml.sign_request(request, inner, inner.certificate)
    return request


def saml_status(response: etree._Element) -> tuple[str, str]:
    status = response.find(q(ns.SAMLP, "Status"))
    return (
        status.find(q(ns.SAMLP, "StatusCode")).get("Value"),
        status.findtext(q(ns.SAMLP, "StatusMessage")) or "",
    )


def assert_saml_refused(schema, response: etree._Element, match: str) -> None:
    assert_valid(schema, response)  # the refusal is a well-formed samlp:Response too
    code, message = saml_status(response)
    assert code == "samlp:Requester" and re.search(match, message), (code, message)
    assert response.find(q(ns.SAML, "Assertion")) is None


def wstrust_challenge(actors: Actors, challenges: sts.Challenges, attributes=None) -> wstrust.Challenge:
    rst = wstrust.issue_request(actors.org.certificate, attributes or anne_at_the_parc())
    reply = sts.answer_wstrust(signed(rst, actors.eid), RST_ACTION, actors.authority, challenges)
    challenge = wstrust.read_challenge(reply)
    assert challenge is not None and challenge.context == rst.get("Context")
    return challenge


def wstrust_token(actors: Actors, attributes=None) -> etree._Element:
    challenges = sts.Challenges()
    challenge = wstrust_challenge(actors, challenges, attributes)
    answer = wstrust.challenge_answer(challenge.context, challenge.challenge)
    reply = sts.answer_wstrust(signed(answer, actors.org), CHALLENGE_ACTION, actors.authority, challenges)
    return wstrust.requested_token(reply)


def test_the_sandbox_accepts_the_requests_the_refusals_start_from(actors, schema):
    response = sts.answer_saml(signed(saml_request(actors), actors.eid), actors.authority)
    assert_valid(schema, response)
    assert saml_status(response)[0] == "samlp:Success"
    assert len(token_attributes(response.find(q(ns.SAML, "Assertion")))) == 7
    assert len(token_attributes(wstrust_token(actors))) == 7


@pytest.mark.parametrize("variant", ["saml", "wstrust"])
def test_the_sandbox_returns_the_designated_attributes_in_request_order(actors, variant):
    reversed_order = tuple(reversed(anne_at_the_parc()))
    if variant == "saml":
        response = sts.answer_saml(signed(saml_request(actors, reversed_order), actors.eid), actors.authority)
        assertion = response.find(q(ns.SAML, "Assertion"))
    else:
        assertion = wstrust_token(actors, reversed_order)
    assert [(n, s) for n, s, _ in token_attributes(assertion)] == list(reversed(TABLE))


@pytest.mark.parametrize("variant", ["saml", "wstrust"])
@pytest.mark.parametrize("missing", range(7), ids=[f"row{i}" for i in range(1, 8)])
def test_the_sandbox_refuses_a_request_missing_a_designator(actors, schema, variant, missing):
    attributes = tuple(a for i, a in enumerate(anne_at_the_parc()) if i != missing)
    match = re.escape(f"designator {TABLE[missing][0]} is missing")
    if variant == "saml":
        response = sts.answer_saml(signed(saml_request(actors, attributes), actors.eid), actors.authority)
        assert_saml_refused(schema, response, match)
    else:
        with pytest.raises(sts.Refused, match=match):
            wstrust_challenge(actors, sts.Challenges(), attributes)


def test_the_sandbox_refuses_a_designated_identification_attribute_without_its_claim(actors, schema):
    attributes = list(anne_at_the_parc())
    attributes[3] = saml.Attribute(attributes[3].name, attributes[3].namespace)  # holder: designated only
    response = sts.answer_saml(signed(saml_request(actors, attributes), actors.eid), actors.authority)
    assert_saml_refused(schema, response, re.escape(f"claim {HOLDER_CLAIM} is missing"))
    with pytest.raises(sts.Refused, match=re.escape(f"claim {HOLDER_CLAIM} is missing")):
        wstrust_challenge(actors, sts.Challenges(), attributes)


def sign_without_the_bst(root: etree._Element, signer: KeystoreSigner) -> etree._Element:
    """A WS-Security header as mcn used to make it: the signature covers Body and Timestamp only."""
    wssec.sign_envelope(root, signer)
    security = root.find(f"{q(ns.SOAP, 'Header')}/{q(ns.WSSE, 'Security')}")
    old = security.find(q(ns.DS, "Signature"))
    key_info = old.find(q(ns.DS, "KeyInfo"))
    security.remove(old)
    body, timestamp = root.find(q(ns.SOAP, "Body")), security.find(q(ns.WSU, "Timestamp"))
    xmldsig.sign(
        [Reference("#" + e.get(wssec.WSU_ID), e) for e in (body, timestamp)],
        signer,
        key_info,
        security.append,
    )
    return root


@pytest.mark.parametrize("variant", ["saml", "wstrust"])
def test_the_sandbox_refuses_an_unsigned_binary_security_token(actors, variant, tmp_path):
    if variant == "saml":
        body = saml_request(actors)
    else:
        body = wstrust.issue_request(actors.org.certificate, anne_at_the_parc())
    document = wssec.to_bytes(sign_without_the_bst(wssec.envelope(body), actors.eid))
    assert xmlsec1_verifies(document, actors.eid.certificate, tmp_path)  # the signature itself holds
    with pytest.raises(SignatureInvalid, match="BinarySecurityToken is not signed"):
        if variant == "saml":
            sts.answer_saml(document, actors.authority)
        else:
            sts.answer_wstrust(document, RST_ACTION, actors.authority, sts.Challenges())


@pytest.mark.parametrize("case", ["without-keyinfo", "unsigned", "signed-with-the-identification-key"])
def test_the_sandbox_refuses_an_inner_signature_without_the_holder_of_key_keyinfo(actors, schema, case):
    if case == "without-keyinfo":
        request = saml_request(actors)
        signature = request.find(q(ns.DS, "Signature"))
        signature.remove(signature.find(q(ns.DS, "KeyInfo")))  # KeyInfo is not signed: the value holds
        match = "no KeyInfo"
    elif case == "unsigned":
        request = saml.attribute_query(actors.eid.certificate, actors.org.certificate, anne_at_the_parc())
        match = "not signed with the holder-of-key key"
    else:
        request = saml_request(actors, inner=actors.eid)
        match = "signed with another key"
    response = sts.answer_saml(signed(request, actors.eid), actors.authority)
    assert_saml_refused(schema, response, match)


@pytest.mark.parametrize("variant", ["saml", "wstrust"])
def test_the_sandbox_refuses_an_unknown_claim(actors, schema, variant):
    if variant == "saml":  # claimed in the claims assertion, not designated
        request = saml.attribute_query(actors.eid.certificate, actors.org.certificate, anne_at_the_parc())
        extra = etree.SubElement(
            inner_statement(request), q(ns.SAML, "Attribute"), AttributeName=UNKNOWN, AttributeNamespace=ID_NS
        )
        etree.SubElement(extra, q(ns.SAML, "AttributeValue")).text = PARC.nihii
        saml.sign_request(request, actors.org, actors.org.certificate)
        response = sts.answer_saml(signed(request, actors.eid), actors.authority)
        assert_saml_refused(schema, response, re.escape(f"unknown claim {UNKNOWN}"))
    else:  # a WS-Trust ClaimType is a claim and a designator at once
        attributes = (*anne_at_the_parc(), saml.Attribute(UNKNOWN, ID_NS, PARC.nihii))
        with pytest.raises(sts.Refused, match=re.escape(f"unknown attribute {UNKNOWN}")):
            wstrust_challenge(actors, sts.Challenges(), attributes)


@pytest.mark.parametrize("variant", ["saml", "wstrust"])
def test_the_sandbox_refuses_a_client_claiming_a_certified_attribute(actors, schema, variant):
    attributes = list(anne_at_the_parc())
    attributes[6] = saml.Attribute(LINKED, CERT_NS, "true")  # "the link is certified", says the client
    if variant == "saml":  # answered with a SAML error status, as every claim the STS refuses
        response = sts.answer_saml(signed(saml_request(actors, attributes), actors.eid), actors.authority)
        assert_saml_refused(schema, response, "not in the identification namespace")
    else:
        with pytest.raises(sts.Refused, match=re.escape(f"unknown claim {LINKED}")):
            wstrust_challenge(actors, sts.Challenges(), attributes)


def test_the_sandbox_refuses_a_challenge_answer_signed_with_the_identification_key(actors):
    challenges = sts.Challenges()
    challenge = wstrust_challenge(actors, challenges)
    answer = wstrust.challenge_answer(challenge.context, challenge.challenge)
    with pytest.raises(sts.Refused, match="not signed with the holder-of-key key"):
        sts.answer_wstrust(signed(answer, actors.eid), CHALLENGE_ACTION, actors.authority, challenges)
    # nor another challenge than the one sent, even signed with the holder-of-key key
    other = wstrust_challenge(actors, challenges)
    forged = wstrust.challenge_answer(other.context, challenge.challenge)
    with pytest.raises(sts.Refused, match="not the one sent"):
        sts.answer_wstrust(signed(forged, actors.org), CHALLENGE_ACTION, actors.authority, challenges)


def test_a_wrong_challenge_answer_leaves_the_challenge_open_for_the_right_one(actors):
    challenges = sts.Challenges()
    challenge = wstrust_challenge(actors, challenges)
    intruder = software_signer("rsa")  # knows the Context, not the holder-of-key key
    bogus = wstrust.challenge_answer(challenge.context, "guess")
    with pytest.raises((sts.Refused, SignatureInvalid)):
        sts.answer_wstrust(signed(bogus, intruder), CHALLENGE_ACTION, actors.authority, challenges)
    with pytest.raises(sts.Refused, match="not the one sent"):
        sts.answer_wstrust(signed(bogus, actors.org), CHALLENGE_ACTION, actors.authority, challenges)
    right = wstrust.challenge_answer(challenge.context, challenge.challenge)
    reply = sts.answer_wstrust(signed(right, actors.org), CHALLENGE_ACTION, actors.authority, challenges)
    assert wstrust.requested_token(reply) is not None


def test_open_challenges_are_limited_per_identification_certificate(actors):
    challenges = sts.Challenges()
    for _ in range(sts.MAX_PENDING_EACH):
        wstrust_challenge(actors, challenges)
    with pytest.raises(sts.Refused, match="too many open challenges"):
        wstrust_challenge(actors, challenges)


@pytest.fixture(scope="module")
def server(files: Files):
    from mcn_cli.sandbox.server import Server

    running = Server(files).start()
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("path", "action", "body", "refusal"),
    [
        (WSTRUST_PATH, RST_ACTION, "rst", None),
        (WSTRUST_PATH, LEGACY_SAML_ACTION, "rst", "unknown SOAPAction"),
        (WSTRUST_PATH, None, "rst", "unknown SOAPAction"),
        (WSTRUST_PATH, CHALLENGE_ACTION, "rst", "not a RequestSecurityTokenResponse"),
        (SAML_PATH, RST_ACTION, "saml", None),
        (SAML_PATH, LEGACY_SAML_ACTION, "saml", None),  # what the connector up to 4.0.2 sends
        (SAML_PATH, CHALLENGE_ACTION, "saml", "unknown SOAPAction"),
        (SAML_PATH, "urn:be:fgov:ehealth:sts:protocol:v1:Other", "saml", "unknown SOAPAction"),
    ],
)
def test_the_sandbox_refuses_a_wrong_soap_action_over_http(
    server, files, actors, path, action, body, refusal
):
    import requests

    if body == "rst":
        message = signed(wstrust.issue_request(actors.org.certificate, anne_at_the_parc()), actors.eid)
    else:
        message = signed(saml_request(actors), actors.eid)
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if action is not None:
        headers["SOAPAction"] = f'"{action}"'
    reply = requests.post(
        server.url + path, data=message, headers=headers, verify=str(files.ca_cert("root")), timeout=10
    )
    fault = soap.read_fault(etree.fromstring(reply.content))
    if refusal is None:
        assert reply.status_code == 200 and fault is None
        assert local(body_child(reply.content)) == (
            "Response" if body == "saml" else "RequestSecurityTokenResponse"
        )
    else:
        assert reply.status_code == 500 and fault is not None
        assert refusal in fault.message


@pytest.mark.parametrize("which", ["NameIdentifier", "NameQualifier"])
def test_the_sandbox_refuses_names_in_rfc4514_form(actors, schema, which):
    request = saml.attribute_query(actors.eid.certificate, actors.org.certificate, anne_at_the_parc())
    for name in request.iter(q(ns.SAML, "NameIdentifier")):
        if which == "NameIdentifier":
            name.text = actors.eid.certificate.subject.rfc4514_string()
        else:
            name.set("NameQualifier", actors.eid.certificate.issuer.rfc4514_string())
    saml.sign_request(request, actors.org, actors.org.certificate)
    response = sts.answer_saml(signed(request, actors.eid), actors.authority)
    assert_saml_refused(schema, response, "RFC 1779 form expected")
