"""Domain objects for tests: consultations as MyCareNet would answer them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from mcn_cli.domain.commitment import InsurabilityPeriod, commitment_for
from mcn_cli.domain.consultation import CareReceiver, Consultation, ThirdPartyRegime, Verification
from mcn_cli.domain.identifiers import Entitlement, Sex

PATIENT_NISS = "85073003328"
OTHER_NISS = "17073003384"
PHARMACY = "27150201"
PHARMACIST = "85073003328"


def consultation(
    *,
    consulted: str = "2011-11-12",
    dispensed: str | None = None,
    periods: tuple[tuple[str, str], ...] = (("2011-01-01", "2011-12-31"),),
    niss: str | None = PATIENT_NISS,
    mutuality: str | None = "306",
    member_number: str | None = "9876543210",
    first_name: str = "Zoë",
    last_name: str = "Vandenbroucke",
    ct: tuple[str, str] = ("110", "110"),
    at: time = time(10, 0),
) -> Consultation:
    consulted_day = date.fromisoformat(consulted)
    dispensed_day = date.fromisoformat(dispensed or consulted)
    entitlement = Entitlement(*ct)
    insurability = [
        InsurabilityPeriod(entitlement, date.fromisoformat(s), date.fromisoformat(e)) for s, e in periods
    ]
    try:
        commitment = commitment_for(dispensed_day, consulted_day, insurability)
    except Exception:
        commitment = None
    return Consultation(
        consulted_at=datetime.combine(consulted_day, at, tzinfo=UTC),
        dispensed=dispensed_day,
        care_receiver=CareReceiver(
            niss=niss,
            mutuality=mutuality,
            member_number=member_number,
            first_name=first_name,
            last_name=last_name,
            birth_date=date(1985, 7, 30),
            sex=Sex.MALE,
        ),
        pharmacy_nihii=PHARMACY,
        commitment=commitment,
        third_party=ThirdPartyRegime.STANDARD if commitment else None,
        verification=Verification("A" * 30 + "01", "SEED012345", "42") if commitment else None,
        reference="20111112000001",
    )
