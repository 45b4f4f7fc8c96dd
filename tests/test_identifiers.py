from __future__ import annotations

from datetime import date

import pytest

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.identifiers import (
    Sex,
    insurer_name,
    parse_entitlement,
    parse_kbo,
    parse_member,
    parse_membership_number,
    parse_mutuality,
    parse_nihii,
    parse_niss,
    parse_personal_nihii,
    parse_pharmacy_nihii,
)
from tests.conftest import niss_with_check


@pytest.mark.parametrize("written", ["85073003328", "85.07.30-033.28", "850730 033 28", " 85-07-30-033-28 "])
def test_niss_written_forms_normalise(written):
    niss = parse_niss(written)
    assert niss.value == "85073003328"
    assert niss.formatted == "85.07.30-033.28"
    assert niss.birth_date == date(1985, 7, 30)
    assert niss.sex is Sex.MALE
    assert not niss.bis


def test_niss_born_2000_or_later_uses_the_2_prefix():
    niss = parse_niss("17073003384")
    assert niss.birth_date == date(2017, 7, 30)


def test_niss_wrong_check_digits_send_to_the_card_without_the_right_ones():
    with pytest.raises(InvalidInput) as caught:
        parse_niss("85073003329")
    assert caught.value.field == "niss"
    assert caught.value.rule == "check-digits"
    assert "check the number on the card" in str(caught.value)
    assert "28" not in str(caught.value) and "57" not in str(caught.value)  # neither right answer


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("8507300332", "length"),
        ("850730033288", "length"),
        ("8507300332A", "digits"),
        ("", "empty"),
        ("８５０７３００３３２８", "digits"),
    ],
)
def test_niss_shape_errors(value, rule):
    with pytest.raises(InvalidInput) as caught:
        parse_niss(value)
    assert caught.value.rule == rule


def test_niss_even_counter_is_female():
    assert parse_niss(niss_with_check("850730034")).sex is Sex.FEMALE


def test_bis_numbers_month_plus_20_sex_unknown_plus_40_sex_known():
    unknown = parse_niss(niss_with_check("852730033"))
    assert unknown.bis and unknown.sex is Sex.UNKNOWN and unknown.birth_date == date(1985, 7, 30)
    known = parse_niss(niss_with_check("854730034"))
    assert known.bis and known.sex is Sex.FEMALE and known.birth_date == date(1985, 7, 30)


def test_unknown_birth_date_month_or_day_zero():
    assert parse_niss(niss_with_check("850000033")).birth_date is None
    assert parse_niss(niss_with_check("850700033")).birth_date is None
    assert parse_niss(niss_with_check("852000033")).bis  # BIS with unknown birth date


def test_leap_days():
    assert parse_niss(niss_with_check("000229001", born_2000=True)).birth_date == date(2000, 2, 29)
    assert parse_niss(niss_with_check("840229001")).birth_date == date(1984, 2, 29)
    with pytest.raises(InvalidInput) as caught:
        parse_niss(niss_with_check("850229001"))
    assert caught.value.rule == "birth-date"


@pytest.mark.parametrize("body", ["851330033", "853330033", "855330033", "850732033"])
def test_impossible_months_and_days(body):
    with pytest.raises(InvalidInput) as caught:
        parse_niss(niss_with_check(body))
    assert caught.value.rule in {"month", "birth-date"}


def test_pharmacy_nihii_examples_and_check_digits():
    assert parse_pharmacy_nihii("27150201").value == "27150201"
    assert parse_pharmacy_nihii("6259-9147").value == "62599147"
    with pytest.raises(InvalidInput) as caught:
        parse_pharmacy_nihii("27150202")
    assert caught.value.rule == "check-digits" and "01" not in str(caught.value)  # not the right ones


def test_personal_nihii_has_qualification():
    nihii = parse_personal_nihii("27150201001")
    assert not nihii.is_pharmacy and nihii.qualification == "001" and nihii.is_titular
    assert parse_nihii("27150201").is_pharmacy
    assert not parse_nihii("2-7150201-002").is_titular
    with pytest.raises(InvalidInput) as caught:
        parse_nihii("2715020")
    assert caught.value.rule == "length"


def test_kbo():
    assert parse_kbo("0403019261").formatted == "0403.019.261"
    assert parse_kbo("BE 0403.019.261").value == "0403019261"
    with pytest.raises(InvalidInput) as wrong:
        parse_kbo("0403019262")
    assert wrong.value.rule == "check-digits" and "61" not in str(wrong.value)
    with pytest.raises(InvalidInput) as first:
        parse_kbo("2403019261")
    assert first.value.rule == "first-digit"
    with pytest.raises(InvalidInput) as short:
        parse_kbo("403019261")
    assert short.value.rule == "length"


@pytest.mark.parametrize(
    ("code", "union"),
    [
        ("100", "100"),
        ("131", "100"),
        ("306", "300"),
        ("509", "500"),
        ("600", "600"),
        ("750", "600"),
        ("999", "600"),
        ("900", "900"),
    ],
)
def test_mutuality_codes_route_to_their_union(code, union):
    assert parse_mutuality(code).union == union


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("131", "Christian Mutualities"),
        ("306", "Solidaris (Socialist Mutualities)"),
        ("509", "Independent Mutualities"),
        ("600", "Auxiliary Fund for Sickness and Invalidity Insurance (CAAMI-HZIV)"),
        ("900", "HR Rail Health Care Fund"),
    ],
)
def test_insurer_names_are_english_msgids(code, name):
    assert insurer_name(code) == parse_mutuality(code).insurer == name


def test_insurers_through_600_name_caami_hziv_not_hr_rail():
    assert "CAAMI-HZIV" in insurer_name("750") and "Kas der" not in insurer_name("750")
    assert "CAAMI-HZIV" in insurer_name("999")


@pytest.mark.parametrize("code", ["000", "812", "701", "12", "1234", "abc"])
def test_mutuality_codes_refused(code):
    with pytest.raises(InvalidInput):
        parse_mutuality(code)


def test_membership_number():
    assert parse_membership_number("123-4567 89") == "123456789"
    assert parse_membership_number("ab12") == "AB12"
    with pytest.raises(InvalidInput) as long:
        parse_membership_number("12345678901234")
    assert long.value.rule == "length"
    with pytest.raises(InvalidInput):
        parse_membership_number("12#4")
    member = parse_member("306/1234567")
    assert member.mutuality.code == "306" and member.number == "1234567"
    with pytest.raises(InvalidInput):
        parse_member("3061234567")


def test_entitlement():
    ct = parse_entitlement("121-121")
    assert (ct.ct1, ct.ct2, ct.increased) == ("121", "121", True)
    assert not parse_entitlement("110/110").increased
    with pytest.raises(InvalidInput):
        parse_entitlement("11/110")
