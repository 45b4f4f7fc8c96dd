"""The answer to a consultation of rights ("Insurability for pharmacist"), as the domain sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from mcn_cli.domain.commitment import PaymentCommitment
from mcn_cli.domain.identifiers import Member, Niss, Sex

# A patient is identified by NISS or, when it is unknown (newborns...), by mutuality + number.
PatientId = Niss | Member


class ThirdPartyRegime(StrEnum):
    """Third-party payer regime ("tiers payant") the insurer applies."""

    NONE = "none"
    STANDARD = "standard"
    ELEVATED = "elevated"


@dataclass(frozen=True)
class CareReceiver:
    niss: str | None = None
    mutuality: str | None = None
    member_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: date | None = None
    deceased: date | None = None
    sex: Sex = Sex.UNKNOWN

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True)
class Verification:
    """The proof of the payment commitment, copied onto the invoice."""

    payment_approval: str  # 32 characters: the commitment number ("numéro d'agrément")
    seed: str  # 10 characters
    ot_check: str  # 2 characters: the tarification office's check code


@dataclass(frozen=True)
class Consultation:
    """One consultation's answer: who, the right at the dispensing date, the commitment."""

    consulted_at: datetime  # when MyCareNet answered (timezone-aware)
    dispensed: date  # the date sent in the request
    care_receiver: CareReceiver
    pharmacy_nihii: str
    commitment: PaymentCommitment | None = None
    third_party: ThirdPartyRegime | None = None
    verification: Verification | None = None
    reference: str | None = None  # the pharmacy's own reference for the request
