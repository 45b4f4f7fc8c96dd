"""A consultation to and from the JSON kept (encrypted) in a cache record."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from mcn_cli.domain.commitment import Coverage, PaymentCommitment
from mcn_cli.domain.consultation import CareReceiver, Consultation, ThirdPartyRegime, Verification
from mcn_cli.domain.identifiers import Entitlement, Sex


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def to_json(consultation: Consultation) -> bytes:
    receiver = consultation.care_receiver
    commitment = consultation.commitment
    verification = consultation.verification
    data: dict[str, Any] = {
        "v": 1,
        "consulted_at": consultation.consulted_at.isoformat(),
        "dispensed": consultation.dispensed.isoformat(),
        "pharmacy": consultation.pharmacy_nihii,
        "reference": consultation.reference,
        "care_receiver": {
            "niss": receiver.niss,
            "mutuality": receiver.mutuality,
            "member_number": receiver.member_number,
            "first_name": receiver.first_name,
            "last_name": receiver.last_name,
            "birth_date": _iso(receiver.birth_date),
            "deceased": _iso(receiver.deceased),
            "sex": receiver.sex.value,
        },
        "commitment": None
        if commitment is None
        else {
            "consulted": commitment.consulted.isoformat(),
            "dispensed": commitment.dispensed.isoformat(),
            "start": commitment.coverage.start.isoformat(),
            "end": commitment.coverage.end.isoformat(),
            "ct1": commitment.entitlement.ct1,
            "ct2": commitment.entitlement.ct2,
        },
        "third_party": consultation.third_party.value if consultation.third_party else None,
        "verification": None
        if verification is None
        else {
            "approval": verification.payment_approval,
            "seed": verification.seed,
            "ot": verification.ot_check,
        },
    }
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def from_json(raw: bytes) -> Consultation:
    data = json.loads(raw)
    r = data["care_receiver"]
    receiver = CareReceiver(
        niss=r["niss"],
        mutuality=r["mutuality"],
        member_number=r["member_number"],
        first_name=r["first_name"],
        last_name=r["last_name"],
        birth_date=_day(r["birth_date"]),
        deceased=_day(r["deceased"]),
        sex=Sex(r["sex"]),
    )
    c = data["commitment"]
    commitment = (
        None
        if c is None
        else PaymentCommitment(
            consulted=date.fromisoformat(c["consulted"]),
            dispensed=date.fromisoformat(c["dispensed"]),
            coverage=Coverage(date.fromisoformat(c["start"]), date.fromisoformat(c["end"])),
            entitlement=Entitlement(c["ct1"], c["ct2"]),
        )
    )
    v = data["verification"]
    return Consultation(
        consulted_at=datetime.fromisoformat(data["consulted_at"]),
        dispensed=date.fromisoformat(data["dispensed"]),
        care_receiver=receiver,
        pharmacy_nihii=data["pharmacy"],
        commitment=commitment,
        third_party=ThirdPartyRegime(data["third_party"]) if data["third_party"] else None,
        verification=None if v is None else Verification(v["approval"], v["seed"], v["ot"]),
        reference=data["reference"],
    )
