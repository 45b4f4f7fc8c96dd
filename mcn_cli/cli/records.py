"""How a cached consultation is shown: masked by default, whole with --reveal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mcn_cli.cli.i18n import _, day, moment
from mcn_cli.cli.patient import mask_member, mask_niss
from mcn_cli.domain.consultation import CareReceiver, Consultation, ThirdPartyRegime
from mcn_cli.domain.identifiers import Sex

if TYPE_CHECKING:
    from mcn_cli.store.cache import Cached


class Text:
    """Human text shared by the commands that show a consultation (translate here)."""

    patient = _("patient")
    name = _("name")
    born = _("born")
    deceased = _("deceased")
    mutuality = _("mutuality")
    pharmacy = _("pharmacy")
    consulted = _("consulted")
    dispensed = _("dispensed")
    entitlement = _("CT1/CT2")
    third_party = _("third-party payer")
    coverage = _("coverage")
    approval = _("payment approval")
    seed = _("seed")
    ot_check = _("OT check code")
    reference = _("reference")
    state = _("billing state")
    no_commitment = _("none (no right at the dispensing date)")
    unknown = _("unknown")
    span = _("{start} → {end}")
    sexes: ClassVar[dict[Sex, str]] = {
        Sex.MALE: _("male"),
        Sex.FEMALE: _("female"),
        Sex.UNKNOWN: _("sex unknown"),
    }
    regimes: ClassVar[dict[ThirdPartyRegime, str]] = {
        ThirdPartyRegime.NONE: _("none"),
        ThirdPartyRegime.STANDARD: _("standard"),
        ThirdPartyRegime.ELEVATED: _("elevated"),
    }


def reason_words(reason: str) -> str:
    """A reuse verdict's reason (a stable code in JSON, and a msgid) in the user's language."""
    return _(reason)


def sex_word(sex: Sex) -> str:
    return Text.sexes.get(sex, str(sex))


def regime_word(regime: ThirdPartyRegime) -> str:
    return Text.regimes.get(regime, str(regime))


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
        (Text.consulted, moment(consultation.consulted_at)),
        (Text.dispensed, consultation.dispensed),
    ]
    commitment = consultation.commitment
    if commitment is None:
        rows.append((Text.coverage, Text.no_commitment))
    else:
        cover = commitment.coverage
        rows += [
            (Text.entitlement, commitment.entitlement),
            (Text.coverage, Text.span.format(start=day(cover.start), end=day(cover.end))),
        ]
    if consultation.third_party:
        rows.append((Text.third_party, regime_word(consultation.third_party)))
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
