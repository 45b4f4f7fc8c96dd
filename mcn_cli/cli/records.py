"""How a cached consultation is shown: masked by default, whole with --reveal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcn_cli.cli.patient import mask_member, mask_niss
from mcn_cli.domain.consultation import CareReceiver, Consultation

if TYPE_CHECKING:
    from mcn_cli.store.cache import Cached


class Text:
    """Human text shared by the commands that show a consultation (translate here)."""

    patient = "patient"
    name = "name"
    born = "born"
    deceased = "deceased"
    mutuality = "mutuality"
    pharmacy = "pharmacy"
    consulted = "consulted"
    dispensed = "dispensed"
    entitlement = "CT1/CT2"
    third_party = "third-party payer"
    coverage = "coverage"
    approval = "payment approval"
    seed = "seed"
    ot_check = "OT check code"
    reference = "reference"
    state = "billing state"
    no_commitment = "none (no right at the dispensing date)"
    unknown = "unknown"


def patient_label(receiver: CareReceiver, reveal: bool) -> str:
    if receiver.niss:
        return receiver.niss if reveal else mask_niss(receiver.niss)
    if receiver.mutuality and receiver.member_number:
        number = receiver.member_number if reveal else mask_member(receiver.member_number)
        return f"{receiver.mutuality}/{number}"
    return Text.unknown


def _name(receiver: CareReceiver, reveal: bool) -> str | None:
    if reveal:
        return receiver.name or None
    initials = [part[0] + "." for part in (receiver.first_name, receiver.last_name) if part]
    return " ".join(initials) or None


def consultation_rows(consultation: Consultation, reveal: bool) -> list[tuple[str, object]]:
    receiver = consultation.care_receiver
    rows: list[tuple[str, object]] = [
        (Text.patient, patient_label(receiver, reveal)),
        (Text.name, _name(receiver, reveal)),
    ]
    if reveal and receiver.birth_date:
        rows.append((Text.born, receiver.birth_date))
    if receiver.deceased:
        rows.append((Text.deceased, receiver.deceased))
    if receiver.mutuality:
        rows.append((Text.mutuality, receiver.mutuality))
    rows += [
        (Text.pharmacy, consultation.pharmacy_nihii),
        (Text.consulted, consultation.consulted_at.astimezone().strftime("%Y-%m-%d %H:%M")),
        (Text.dispensed, consultation.dispensed),
    ]
    commitment = consultation.commitment
    if commitment is None:
        rows.append((Text.coverage, Text.no_commitment))
    else:
        cover = commitment.coverage
        rows += [
            (Text.entitlement, commitment.entitlement),
            (Text.coverage, f"{cover.start} → {cover.end}"),
        ]
    if consultation.third_party:
        rows.append((Text.third_party, consultation.third_party.value))
    if consultation.verification:
        v = consultation.verification
        rows += [(Text.approval, v.payment_approval), (Text.seed, v.seed), (Text.ot_check, v.ot_check)]
    if consultation.reference:
        rows.append((Text.reference, consultation.reference))
    return [(label, value) for label, value in rows if value is not None]


def consultation_json(consultation: Consultation, reveal: bool) -> dict[str, Any]:
    receiver = consultation.care_receiver
    commitment = consultation.commitment
    verification = consultation.verification
    return {
        "patient": {
            "niss": (receiver.niss if reveal else mask_niss(receiver.niss)) if receiver.niss else None,
            "mutuality": receiver.mutuality,
            "member_number": (receiver.member_number if reveal else mask_member(receiver.member_number))
            if receiver.member_number
            else None,
            "first_name": receiver.first_name if reveal else None,
            "last_name": receiver.last_name if reveal else None,
            "birth_date": receiver.birth_date if reveal else None,
            "deceased": receiver.deceased,
            "sex": receiver.sex,
        },
        "pharmacy": consultation.pharmacy_nihii,
        "consulted_at": consultation.consulted_at,
        "dispensed": consultation.dispensed,
        "commitment": None
        if commitment is None
        else {
            "ct1": commitment.entitlement.ct1,
            "ct2": commitment.entitlement.ct2,
            "coverage": {"start": commitment.coverage.start, "end": commitment.coverage.end},
            "reusable": commitment.reusable,
            "reusable_until": commitment.reusable_until,
        },
        "third_party": consultation.third_party,
        "verification": None
        if verification is None
        else {
            "payment_approval": verification.payment_approval,
            "seed": verification.seed,
            "ot_check": verification.ot_check,
        },
        "reference": consultation.reference,
    }


def cached_json(cached: Cached, reveal: bool) -> dict[str, Any]:
    return {
        "id": cached.id,
        "state": cached.state,
        "invoiced_at": cached.invoiced_at,
        **consultation_json(cached.consultation, reveal),
    }
