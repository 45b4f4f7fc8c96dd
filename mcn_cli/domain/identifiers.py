"""Belgian identifiers used on MyCareNet: NISS, NIHII, KBO/BCE, mutuality, CT1/CT2.

Each ``parse_*`` function accepts the usual written forms (dots, dashes, spaces, slashes),
normalises them and checks the rules; a broken rule raises :class:`InvalidInput` naming the
field and the rule.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_

_SEPARATORS = re.compile(r"[\s.\-/]")


def _digits(field: str, value: str, length: int, *, separators: re.Pattern[str] = _SEPARATORS) -> str:
    text = separators.sub("", value.strip())
    if not text:
        raise InvalidInput(field, "empty", N_("is empty"))
    if not text.isascii() or not text.isdigit():
        raise InvalidInput(
            field, "digits", N_("must contain only digits, got {value!r}"), value=value.strip()
        )
    if len(text) != length:
        raise InvalidInput(
            field, "length", N_("must have {length} digits, got {count}"), length=length, count=len(text)
        )
    return text


def _mod97_check(number: int) -> int:
    return 97 - number % 97


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Niss:
    """A national register number (NISS/INSZ) or a BIS number, 11 digits YYMMDDxxxcc."""

    value: str
    birth_date: date | None
    sex: Sex
    bis: bool

    def __str__(self) -> str:
        return self.value

    @property
    def formatted(self) -> str:
        v = self.value
        return f"{v[0:2]}.{v[2:4]}.{v[4:6]}-{v[6:9]}.{v[9:11]}"


def parse_niss(value: str, field: str = "niss") -> Niss:
    digits = _digits(field, value, 11)
    body, check = int(digits[:9]), int(digits[9:])
    if _mod97_check(body) == check:
        century = 1900
    elif _mod97_check(2_000_000_000 + body) == check:
        century = 2000
    else:  # never say which check digits would be right: the number must come from the card
        raise InvalidInput(
            field,
            "check-digits",
            N_("check digits do not match: check the number on the card (eID or ISI+ card)"),
        )
    yy, mm, dd = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    counter = int(digits[6:9])
    bis = False
    sex_known = True
    if 20 <= mm <= 32:
        bis, sex_known, mm = True, False, mm - 20
    elif 40 <= mm <= 52:
        bis, mm = True, mm - 40
    elif mm > 12:
        raise InvalidInput(
            field,
            "month",
            N_("month {month} is not a month (1-12, or 21-32 / 41-52 for BIS)"),
            month=digits[2:4],
        )
    year = century + yy
    birth: date | None = None
    if mm != 0 and dd != 0:
        if dd > calendar.monthrange(year, mm)[1]:
            raise InvalidInput(  # no date object: the date does not exist
                field,
                "birth-date",
                N_("birth date {year}-{month}-{day} does not exist"),
                year=str(year),
                month=f"{mm:02d}",
                day=f"{dd:02d}",
            )
        birth = date(year, mm, dd)
    elif dd > 31:
        raise InvalidInput(field, "birth-date", N_("day {day} is not a day of a month"), day=digits[4:6])
    if sex_known:
        sex = Sex.MALE if counter % 2 == 1 else Sex.FEMALE
    else:
        sex = Sex.UNKNOWN
    return Niss(value=digits, birth_date=birth, sex=sex, bis=bis)


@dataclass(frozen=True)
class Nihii:
    """An NIHII/INAMI number: 8 digits for a pharmacy, 11 for a person (8 + qualification)."""

    value: str

    @property
    def is_pharmacy(self) -> bool:
        return len(self.value) == 8

    @property
    def number(self) -> str:
        return self.value[:8]

    @property
    def qualification(self) -> str | None:
        return self.value[8:] if len(self.value) == 11 else None

    @property
    def is_titular(self) -> bool:
        return self.qualification == "001"

    def __str__(self) -> str:
        return self.value


def _check_nihii8(field: str, digits: str) -> None:
    if _mod97_check(int(digits[:6])) != int(digits[6:8]):  # never say which would be right
        raise InvalidInput(
            field,
            "check-digits",
            N_("check digits do not match: check the NIHII number on a document from INAMI-RIZIV"),
        )


def parse_pharmacy_nihii(value: str, field: str = "nihii") -> Nihii:
    digits = _digits(field, value, 8)
    _check_nihii8(field, digits)
    return Nihii(digits)


def parse_personal_nihii(value: str, field: str = "nihii") -> Nihii:
    digits = _digits(field, value, 11)
    _check_nihii8(field, digits)
    return Nihii(digits)


def parse_nihii(value: str, field: str = "nihii") -> Nihii:
    """A pharmacy (8 digits) or personal (11 digits) NIHII number, told apart by length."""
    text = _SEPARATORS.sub("", value.strip())
    if len(text) == 11:
        return parse_personal_nihii(value, field)
    if len(text) == 8 or not text.isdigit():
        return parse_pharmacy_nihii(value, field)
    raise InvalidInput(
        field, "length", N_("must have 8 digits (pharmacy) or 11 (person), got {count}"), count=len(text)
    )


@dataclass(frozen=True)
class Kbo:
    """A company number (KBO/BCE), 10 digits starting with 0 or 1."""

    value: str

    @property
    def formatted(self) -> str:
        v = self.value
        return f"{v[0:4]}.{v[4:7]}.{v[7:10]}"

    def __str__(self) -> str:
        return self.value


def parse_kbo(value: str, field: str = "kbo") -> Kbo:
    text = value.strip()
    if text[:2].upper() == "BE":
        text = text[2:]
    digits = _digits(field, text, 10)
    if digits[0] not in "01":
        raise InvalidInput(field, "first-digit", N_("must start with 0 or 1, got {digit}"), digit=digits[0])
    if _mod97_check(int(digits[:8])) != int(digits[8:]):  # never say which would be right
        raise InvalidInput(
            field,
            "check-digits",
            N_("check digits do not match: check the company number in the KBO-BCE register"),
        )
    return Kbo(digits)


# Insurer unions ("organismes assureurs" / "verzekeringsinstellingen"), by the first digit of the
# mutuality code; 750 and 999 work through 600. The names are English source text (msgids): the
# translators give the official French and Dutch names of docs/glossary.md ("Insurers" table;
# code 300 is Solidaris in both languages). cli/ shows them through insurer_name() and _().
UNIONS: dict[str, str] = {
    "100": N_("Christian Mutualities"),
    "200": N_("Neutral Mutualities"),
    "300": N_("Solidaris (Socialist Mutualities)"),
    "400": N_("Liberal Mutualities"),
    "500": N_("Independent Mutualities"),
    "600": N_("Auxiliary Fund for Sickness and Invalidity Insurance (CAAMI-HZIV)"),
    "900": N_("HR Rail Health Care Fund"),
}
# Seafarers are insured by CAAMI-HZIV's seafarers' section (HZIV "zeevarenden"; no official name of
# their own found, see docs/glossary.md); OSSOM-DOSZ's name was not checked.
_THROUGH_600: dict[str, str] = {
    "750": N_("Seafarers' section of the Auxiliary Fund for Sickness and Invalidity Insurance (CAAMI-HZIV)"),
    "999": N_(
        "Overseas Social Security Office (OSSOM-DOSZ), through the Auxiliary Fund for Sickness and "
        "Invalidity Insurance (CAAMI-HZIV)"
    ),
}


def union_of(code: str) -> str:
    """The insurer union (100 ... 600, 900) that answers for a 3-digit mutuality code."""
    return "600" if code in _THROUGH_600 else code[0] + "00"


def insurer_name(code: str) -> str:
    """The English name (a msgid: cli/ shows ``_(insurer_name(code))``) of the insurer that answers
    for a 3-digit mutuality code or a union code; official French/Dutch names: docs/glossary.md.
    ``KeyError`` for a code of no union (:func:`parse_mutuality` refuses those)."""
    return _THROUGH_600.get(code) or UNIONS[union_of(code)]


@dataclass(frozen=True)
class Mutuality:
    """A 3-digit mutuality code and the insurer union that answers for it."""

    code: str

    @property
    def union(self) -> str:
        return union_of(self.code)

    @property
    def insurer(self) -> str:
        """The insurer's English name (a msgid, see :func:`insurer_name`)."""
        return insurer_name(self.code)

    def __str__(self) -> str:
        return self.code


def parse_mutuality(value: str, field: str = "mutuality") -> Mutuality:
    code = _digits(field, value, 3)
    if union_of(code) not in UNIONS:
        raise InvalidInput(
            field, "insurer", N_("{code} belongs to no insurer union (1xx-6xx, 9xx, 750 or 999)"), code=code
        )
    return Mutuality(code)


MEMBERSHIP_MAX = 13


def parse_membership_number(value: str, field: str = "member-number") -> str:
    """The membership number at the mutuality (RegNrWithMut): at most 13 letters or digits."""
    text = _SEPARATORS.sub("", value.strip()).upper()
    if not text:
        raise InvalidInput(field, "empty", N_("is empty"))
    if not (text.isascii() and text.isalnum()):
        raise InvalidInput(
            field,
            "characters",
            N_("must contain only letters and digits, got {value!r}"),
            value=value.strip(),
        )
    if len(text) > MEMBERSHIP_MAX:
        raise InvalidInput(
            field,
            "length",
            N_("must have at most {most} characters, got {count}"),
            most=MEMBERSHIP_MAX,
            count=len(text),
        )
    return text


@dataclass(frozen=True)
class Member:
    """A patient identified by mutuality + membership number (when the NISS is unknown)."""

    mutuality: Mutuality
    number: str

    def __str__(self) -> str:
        return f"{self.mutuality.code}/{self.number}"


def parse_member(value: str, field: str = "mutuality") -> Member:
    """``CODE/NUMBER`` or ``CODE:NUMBER``, as written on a vignette."""
    code, sep, number = value.strip().replace(":", "/").partition("/")
    if not sep:
        raise InvalidInput(
            field, "format", N_("expected CODE/MEMBER-NUMBER such as 306/1234567, got {value!r}"), value=value
        )
    return Member(parse_mutuality(code, field), parse_membership_number(number, "member-number"))


@dataclass(frozen=True)
class Entitlement:
    """The two social-security codes CT1/CT2 (e.g. 110/110)."""

    ct1: str
    ct2: str

    @property
    def increased(self) -> bool:
        """A CT1 ending in 1 means increased reimbursement."""
        return self.ct1.endswith("1")

    def __str__(self) -> str:
        return f"{self.ct1}/{self.ct2}"


_CT = re.compile(r"^\s*(\d{3})\s*[/\-\s]\s*(\d{3})\s*$")


def parse_entitlement(value: str, field: str = "ct1/ct2") -> Entitlement:
    match = _CT.match(value)
    if not match:
        raise InvalidInput(
            field, "format", N_("expected two 3-digit codes such as 110/110, got {value!r}"), value=value
        )
    return Entitlement(match.group(1), match.group(2))
