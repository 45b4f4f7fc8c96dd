"""The sandbox's synthetic patients: one per situation a pharmacy meets, dated around today."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from mcn_cli.domain.consultation import ThirdPartyRegime
from mcn_cli.domain.identifiers import Entitlement, Sex
from mcn_cli.domain.messages import N_


def _niss(birth: date, counter: int) -> str:
    body = f"{birth:%y%m%d}{counter:03d}"
    number = int(("2" if birth.year >= 2000 else "") + body)
    return body + f"{97 - number % 97:02d}"


@dataclass(frozen=True)
class Period:
    ct: tuple[str, str]
    start: int  # days from today
    end: int


@dataclass(frozen=True)
class Patient:
    scenario: str
    description: str  # English source text (N_): mcn sandbox patients shows it translated
    first: str
    last: str
    birth: date
    sex: Sex
    counter: int
    mutuality: str
    member: str
    periods: tuple[Period, ...] = ()
    regime: ThirdPartyRegime = ThirdPartyRegime.STANDARD
    try_date: int = 0  # the dispensing date (days from today) that shows the situation
    known_by_niss: bool = True  # False: the insurer knows no NISS (found by mutuality + number only)
    deceased: int | None = None  # days from today
    insurers: tuple[str, ...] = ()  # known at several insurers (MultipleIO)
    fault: str | None = None  # every request for this patient meets this fault
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def niss(self) -> str | None:
        return _niss(self.birth, self.counter) if self.known_by_niss else None

    def periods_on(self, today: date) -> list[tuple[Entitlement, date, date]]:
        return [
            (Entitlement(*p.ct), today + timedelta(days=p.start), today + timedelta(days=p.end))
            for p in self.periods
        ]


_STD = ("110", "110")
_BIM = ("121", "121")


def population(today: date) -> tuple[Patient, ...]:
    """Everyone the sandbox insurers know; births are placed so that ages stay plausible."""
    newborn = today - timedelta(days=5)
    return (
        Patient(
            "annex-1",
            N_("rights all year: coverage is 30 days"),
            "Lucas",
            "Peeters",
            date(1985, 7, 30),
            Sex.MALE,
            33,
            "306",
            "3061000001",
            (Period(_STD, -400, 400),),
        ),
        Patient(
            "annex-2",
            N_("rights end in 18 days: coverage stops there"),
            "Emma",
            "Janssens",
            date(1990, 3, 12),
            Sex.FEMALE,
            42,
            "116",
            "1161000002",
            (Period(_STD, -300, 18),),
        ),
        Patient(
            "annex-3",
            N_("dispensed 17 days before the consultation"),
            "Noah",
            "Maes",
            date(1978, 11, 2),
            Sex.MALE,
            51,
            "216",
            "2161000003",
            (Period(_STD, -400, 400),),
            try_date=-17,
        ),
        Patient(
            "annex-4",
            N_("rights ended 13 days ago, dispensed 17 days ago: never reusable"),
            "Olivia",
            "Jacobs",
            date(1969, 5, 21),
            Sex.FEMALE,
            64,
            "319",
            "3191000004",
            (Period(_STD, -400, -13),),
            try_date=-17,
        ),
        Patient(
            "annex-5",
            N_("dispensed 47 days ago: coverage ended before today, never reusable"),
            "Louis",
            "Mertens",
            date(1958, 1, 8),
            Sex.MALE,
            75,
            "403",
            "4031000005",
            (Period(_STD, -400, 400),),
            try_date=-47,
        ),
        Patient(
            "annex-6",
            N_("two consecutive periods with the same CT1/CT2 join"),
            "Mila",
            "Willems",
            date(2001, 9, 17),
            Sex.FEMALE,
            86,
            "509",
            "5091000006",
            (Period(_STD, -300, 6), Period(_STD, 7, 400)),
        ),
        Patient(
            "ct-change",
            N_("CT1/CT2 change in 10 days: coverage stops before"),
            "Arthur",
            "Claes",
            date(1949, 4, 3),
            Sex.MALE,
            97,
            "131",
            "1311000007",
            (Period(_STD, -300, 9), Period(_BIM, 10, 400)),
        ),
        Patient(
            "member-only",
            N_("the insurer knows no NISS: found by mutuality + membership number"),
            "Nour",
            "El Amrani",
            date(1994, 6, 30),
            Sex.FEMALE,
            108,
            "600",
            "6001000008",
            (Period(_STD, -200, 400),),
            known_by_niss=False,
        ),
        Patient(
            "newborn",
            N_("born 5 days ago, no NISS yet: found by mutuality + membership number"),
            "Lina",
            "Dubois",
            newborn,
            Sex.FEMALE,
            2,
            "306",
            "3061000009",
            (Period(_STD, -5, 400),),
            known_by_niss=False,
        ),
        Patient(
            "deceased",
            N_("died 10 days ago: rights end at death"),
            "Marcel",
            "Lemaire",
            date(1931, 2, 14),
            Sex.MALE,
            119,
            "501",
            "5011000010",
            (Period(_STD, -400, -10),),
            deceased=-10,
            try_date=-12,
        ),
        Patient(
            "no-right",
            N_("no right at the date: no commitment"),
            "Jonas",
            "Smet",
            date(1999, 12, 1),
            Sex.MALE,
            121,
            "226",
            "2261000011",
            (Period(_STD, -400, -60),),
        ),
        Patient(
            "multiple-io",
            N_("known at two insurers: MyCareNet cannot decide"),
            "Sara",
            "Vermeulen",
            date(1982, 8, 25),
            Sex.FEMALE,
            132,
            "101",
            "1011000012",
            (Period(_STD, -400, 400),),
            insurers=("1", "3"),
        ),
        Patient(
            "third-party-none",
            N_("no third-party payer"),
            "Tom",
            "De Smet",
            date(1975, 10, 10),
            Sex.MALE,
            143,
            "418",
            "4181000013",
            (Period(_STD, -400, 400),),
            regime=ThirdPartyRegime.NONE,
        ),
        Patient(
            "third-party-elevated",
            N_("increased reimbursement (121/121), elevated third-party payer"),
            "Julie",
            "Wouters",
            date(1947, 3, 30),
            Sex.FEMALE,
            154,
            "323",
            "3231000014",
            (Period(_BIM, -400, 400),),
            regime=ThirdPartyRegime.ELEVATED,
        ),
        Patient(
            "fault-timeout",
            N_("every request is answered too late"),
            "Slow",
            "Answer",
            date(1980, 1, 1),
            Sex.MALE,
            165,
            "306",
            "3061000015",
            (Period(_STD, -400, 400),),
            fault="slow",
        ),
        Patient(
            "fault-soap",
            N_("every request gets a SOAP fault"),
            "Fault",
            "Soap",
            date(1980, 1, 2),
            Sex.MALE,
            177,
            "306",
            "3061000016",
            (Period(_STD, -400, 400),),
            fault="soap-fault",
        ),
        Patient(
            "fault-http-500",
            N_("every request gets HTTP 500"),
            "Fault",
            "Server",
            date(1980, 1, 3),
            Sex.MALE,
            189,
            "306",
            "3061000017",
            (Period(_STD, -400, 400),),
            fault="http-500",
        ),
        Patient(
            "fault-malformed",
            N_("every answer is malformed XML"),
            "Fault",
            "Xml",
            date(1980, 1, 4),
            Sex.MALE,
            191,
            "306",
            "3061000018",
            (Period(_STD, -400, 400),),
            fault="malformed",
        ),
        Patient(
            "fault-throttled",
            N_("every request is throttled"),
            "Fault",
            "Busy",
            date(1980, 1, 5),
            Sex.MALE,
            203,
            "306",
            "3061000019",
            (Period(_STD, -400, 400),),
            fault="throttle",
        ),
    )


def find(today: date, niss: str | None, mutuality: str | None, member: str | None) -> Patient | None:
    for patient in population(today):
        if niss is not None and patient.niss == niss:
            return patient
        if niss is None and mutuality == patient.mutuality and member == patient.member:
            return patient
    return None
