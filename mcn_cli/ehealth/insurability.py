"""MyCareNet "Insurability for pharmacist" v2: the request (built with lxml in the shape of
eHealth's schema, signed holder-of-key with the session's assertion) and the answer (read for
v1 and v2).

The request is a handful of elements: building it directly keeps zeep (and its 130 ms import)
out of every consultation; the tests validate it against eHealth's own XSD.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lxml import etree

from mcn_cli.domain.commitment import Coverage, PaymentCommitment
from mcn_cli.domain.consultation import CareReceiver, Consultation, PatientId, ThirdPartyRegime, Verification
from mcn_cli.domain.identifiers import Entitlement, Member, Niss, Sex
from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import ns, wssec
from mcn_cli.ehealth.ns import q
from mcn_cli.ehealth.signers import Signer
from mcn_cli.ehealth.transport import MYCARENET, ServiceFailing

SOAP_ACTION = "urn:be:fgov:ehealth:insurability:protocol:v2:GetInsurabilityForPharmacist"
PROTOCOL = "urn:be:fgov:ehealth:insurability:protocol:v{}"
CORE = "urn:be:fgov:ehealth:insurability:core:v{}"
REQUEST_TYPE = "1"


@dataclass(frozen=True)
class Origin:
    """The software package and the licence MyCareNet issued to it."""

    package: str
    username: str
    password: str


@dataclass(frozen=True)
class Requester:
    """Who asks, as the session's token says: the pharmacy and its titular pharmacist, or a
    tarification office for a pharmacy's rejected invoice."""

    pharmacy: str | None
    holder_niss: str | None = None
    holder_nihii: str | None = None
    office: str | None = None  # the tarification office's NIHII


Tree = dict[str, Any]  # element name -> text, or a Tree of children, in schema order


def _build(parent: etree._Element, namespace: str, children: Tree) -> None:
    for name, value in children.items():
        element = etree.SubElement(parent, q(namespace, name))
        if isinstance(value, dict):
            _build(element, namespace, value)
        else:
            element.text = value


def request_body(
    origin: Origin,
    requester: Requester,
    patient: PatientId,
    dispensed: date,
    *,
    reference: str,
    user_reference: str | None,
    is_test: bool,
) -> etree._Element:
    """The GetInsurabilityForPharmacistRequest element (insurabilityservices_protocol-2_0.xsd)."""
    protocol, core = PROTOCOL.format(2), CORE.format(2)
    if isinstance(patient, Niss):
        receiver: Tree = {"Ssin": patient.value}
    else:
        assert isinstance(patient, Member)
        receiver = {"RegNrWithMut": patient.number, "Mutuality": patient.mutuality.code}
    care_provider: Tree
    if requester.office is not None:
        care_provider = {"Nihii": {"Quality": "OTD_PHARMACY", "Value": requester.office}}
    else:
        care_provider = {
            "Nihii": {"Quality": "PHARMACY-HOLDER", "Value": requester.holder_nihii or requester.pharmacy},
            "PhysicalPerson": {"Ssin": requester.holder_niss},
        }
    if requester.pharmacy is not None:
        care_provider["Organization"] = {"Nihii": {"Quality": "PHARMACY", "Value": requester.pharmacy}}
    record: Tree = {"Reference": reference}
    if user_reference:
        record["UserReference"] = user_reference
    root = etree.Element(
        q(protocol, "GetInsurabilityForPharmacistRequest"), nsmap={"ins": protocol, "core": core}
    )
    sections: dict[str, Tree] = {
        "CommonInput": {
            "Request": {"IsTest": "true" if is_test else "false"},
            "Origin": {
                "Package": {
                    "Name": origin.package,
                    "License": {"Username": origin.username, "Password": origin.password},
                },
                "CareProvider": care_provider,
            },
        },
        "RecordCommonInput": record,
        "InsurabilityRequest": {
            "Date": dispensed.isoformat(),
            "RequestType": REQUEST_TYPE,
            "CareReceiver": receiver,
        },
    }
    for section, children in sections.items():
        _build(etree.SubElement(root, q(protocol, section)), core, children)
    return root


def request_envelope(
    origin: Origin,
    requester: Requester,
    patient: PatientId,
    dispensed: date,
    *,
    reference: str,
    user_reference: str | None,
    is_test: bool,
    wsse: HolderOfKey | None = None,
) -> etree._Element:
    """The SOAP envelope of a GetInsurabilityForPharmacist request, signed by ``wsse`` or
    unsigned without it."""
    body = request_body(
        origin,
        requester,
        patient,
        dispensed,
        reference=reference,
        user_reference=user_reference,
        is_test=is_test,
    )
    envelope = wssec.envelope(body)
    return wsse.apply(envelope) if wsse is not None else envelope


class HolderOfKey:
    """WS-Security by the session: its SAML assertion in the header, Body and Timestamp signed
    with the holder-of-key key the assertion names."""

    def __init__(self, signer: Signer, assertion: bytes) -> None:
        self.signer = signer
        self.assertion = assertion

    def apply(self, envelope: etree._Element) -> etree._Element:
        from mcn_cli.ehealth import xmldsig

        return wssec.sign_envelope(envelope, self.signer, assertion=xmldsig.parse(self.assertion))


# --- the answer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnCode:
    major: str
    minor: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.major == "01" or (self.major, self.minor) == ("00", "00")


@dataclass(frozen=True)
class Answer:
    """What MyCareNet said, before it becomes a domain consultation."""

    status: str | None
    return_code: ReturnCode | None
    multiple_io: tuple[str, ...]
    care_receiver: CareReceiver
    requested: date | None
    coverage: Coverage | None
    entitlement: Entitlement | None
    third_party: ThirdPartyRegime | None
    verification: Verification | None
    record_reference: str | None

    def consultation(
        self, consulted_at: datetime, dispensed: date, pharmacy: str, reference: str | None
    ) -> Consultation:
        commitment = None
        if self.coverage is not None and self.entitlement is not None:
            commitment = PaymentCommitment(
                consulted=consulted_at.astimezone().date(),
                dispensed=dispensed,
                coverage=self.coverage,
                entitlement=self.entitlement,
            )
        return Consultation(
            consulted_at=consulted_at,
            dispensed=dispensed,
            care_receiver=self.care_receiver,
            pharmacy_nihii=pharmacy,
            commitment=commitment,
            third_party=self.third_party,
            verification=self.verification,
            reference=reference,
        )


def _failing(message: str, **params: object) -> ServiceFailing:
    """MyCareNet answered something mcn cannot read: it is failing (the emergency flow applies)."""
    return ServiceFailing(message, service=MYCARENET, **params)


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise _failing(N_("{service} sent an unreadable date {text!r}"), text=text) from None


def parse_answer(root: etree._Element) -> Answer:
    """Read a GetInsurabilityForPharmacistResponse envelope (protocol v1 or v2)."""
    body = root.find(q(ns.SOAP, "Body"))
    if body is not None and any(not isinstance(node.tag, str) for node in body.iter()):
        # a comment or entity would cut the text read around it (8507<!-- -->3003328 reads 8507)
        raise _failing(N_("{service} sent an answer holding comments or entities"))
    response = None
    version = None
    for candidate in ("2", "1"):
        response = (
            None
            if body is None
            else body.find(q(PROTOCOL.format(candidate), "GetInsurabilityForPharmacistResponse"))
        )
        if response is not None:
            version = candidate
            break
    if response is None or version is None:
        raise _failing(N_("{service} answered without an insurability response"))
    protocol, core = PROTOCOL.format(version), CORE.format(version)

    def text(parent: etree._Element | None, *path: str) -> str | None:
        if parent is None:
            return None
        found = parent.findtext("/".join(q(core, p) for p in path))
        return found.strip() if found is not None else None

    status = response.findtext("Status/Code")
    info = response.find(q(protocol, "ReturnInfo"))
    code = info.find(q(core, "ReturnCode")) if info is not None else None
    return_code = (
        ReturnCode(text(code, "Major") or "", text(code, "Minor") or "", text(code, "Detail") or "")
        if code is not None
        else None
    )
    multiple = tuple((text(info, "MultipleIO") or "").split())
    record = response.find(q(protocol, "RecordCommonOutput"))
    insurability = response.find(q(protocol, "InsurabilityResponse"))
    receiver_element = insurability.find(q(core, "CareReceiver")) if insurability is not None else None
    sex = text(receiver_element, "Sex")
    receiver = CareReceiver(
        niss=text(receiver_element, "Ssin"),
        member_number=text(receiver_element, "RegNrWithMut"),
        mutuality=text(receiver_element, "Mutuality"),
        first_name=text(receiver_element, "FirstName"),
        last_name=text(receiver_element, "LastName"),
        birth_date=_day(text(receiver_element, "Birthday")),
        deceased=_day(text(receiver_element, "Deceased")),
        sex=Sex(sex) if sex in ("male", "female") else Sex.UNKNOWN,
    )
    coverage_element = insurability.find(q(core, "Coverage")) if insurability is not None else None
    coverage = entitlement = third_party = None
    if coverage_element is not None:
        begin = _day(text(coverage_element, "Period", "BeginDate"))
        end = _day(text(coverage_element, "Period", "EndDate"))
        if begin is None or end is None or end < begin:
            raise _failing(N_("{service} sent a coverage period without a valid begin and end"))
        coverage = Coverage(begin, end)
        code1, code2 = (
            text(coverage_element, "Entitlement", "Code1"),
            text(coverage_element, "Entitlement", "Code2"),
        )
        if code1 and code2:
            entitlement = Entitlement(code1, code2)
        regime = text(coverage_element, "Entitlement", "ThirdPartyPayerRegime")
        third_party = ThirdPartyRegime(regime) if regime in {r.value for r in ThirdPartyRegime} else None
    verification_element = insurability.find(q(core, "Verification")) if insurability is not None else None
    verification = None
    if verification_element is not None:
        verification = Verification(
            text(verification_element, "PaymentApproval") or "",
            text(verification_element, "PaymentApprovalSeed") or "",
            text(verification_element, "InvoicingOfficeCheckDigit") or "",
        )
    return Answer(
        status=status.strip() if status else None,
        return_code=return_code,
        multiple_io=multiple,
        care_receiver=receiver,
        requested=_day(text(insurability, "Requested")),
        coverage=coverage,
        entitlement=entitlement,
        third_party=third_party,
        verification=verification,
        record_reference=text(record, "Reference"),
    )


def record_reference(now: datetime | None = None) -> str:
    """The pharmacy's reference of one request: 14 digits, the moment it leaves to the hundredth
    of a second (yymmddHHMMSScc)."""
    moment = (now or datetime.now(UTC)).astimezone()
    return moment.strftime("%y%m%d%H%M%S") + f"{moment.microsecond // 10000:02d}"
