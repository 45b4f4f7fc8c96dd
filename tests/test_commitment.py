from __future__ import annotations

from datetime import date

import pytest

from mcn_cli.domain.commitment import (
    InsurabilityPeriod,
    ReuseRefusal,
    commitment_for,
    latest_covering,
    reuse_verdict,
)
from mcn_cli.domain.errors import InvalidInput, NoCommitment
from mcn_cli.domain.identifiers import Entitlement

CT110 = Entitlement("110", "110")
CT111 = Entitlement("111", "111")


def d(text: str) -> date:
    return date.fromisoformat(text)


def period(start: str, end: str, ct: Entitlement = CT110) -> InsurabilityPeriod:
    return InsurabilityPeriod(ct, d(start), d(end))


# Brochure annex 11.1: consulted, dispensed, periods, coverage, reusable until (None = never).
ANNEX = [
    ("2011-11-12", "2011-11-12", [("2011-01-01", "2011-12-31")], ("2011-11-12", "2011-12-12"), "2011-12-12"),
    ("2011-11-12", "2011-11-12", [("2011-01-01", "2011-11-30")], ("2011-11-12", "2011-11-30"), "2011-11-30"),
    ("2011-11-12", "2011-10-26", [("2011-01-01", "2011-12-31")], ("2011-10-26", "2011-11-25"), "2011-11-25"),
    ("2011-11-12", "2011-10-26", [("2011-01-01", "2011-10-30")], ("2011-10-26", "2011-10-30"), None),
    ("2011-11-12", "2011-09-26", [("2011-01-01", "2011-12-31")], ("2011-09-26", "2011-10-26"), None),
    (
        "2011-12-25",
        "2011-12-25",
        [("2011-01-01", "2011-12-31"), ("2012-01-01", "2012-12-31")],
        ("2011-12-25", "2012-01-24"),
        "2012-01-24",
    ),
]


@pytest.mark.parametrize(
    ("consulted", "dispensed", "periods", "coverage", "until"),
    ANNEX,
    ids=[f"example-{i}" for i in range(1, 7)],
)
def test_annex_examples(consulted, dispensed, periods, coverage, until):
    commitment = commitment_for(d(dispensed), d(consulted), [period(*p) for p in periods])
    assert (commitment.coverage.start, commitment.coverage.end) == (d(coverage[0]), d(coverage[1]))
    assert commitment.entitlement == CT110
    if until is None:
        assert not commitment.reusable
        assert commitment.reusable_until is None
        verdict = commitment.reusable_for(d(dispensed))
        assert not verdict.allowed and verdict.refusal is ReuseRefusal.ENDED_BEFORE_CONSULTATION
        assert verdict.reason == "coverage ended before the consultation date"
    else:
        assert commitment.reusable_until == d(until)
        assert commitment.reusable_for(d(until)).allowed
        assert not commitment.reusable_for(date.fromordinal(d(until).toordinal() + 1)).allowed


def test_month_ends_and_leap_years():
    # 31 January + 30 days: 2 March in a common year, 1 March in a leap year.
    year = [period("2011-01-01", "2011-12-31")]
    assert commitment_for(d("2011-01-31"), d("2011-01-31"), year).coverage.end == d("2011-03-02")
    leap = [period("2012-01-01", "2012-12-31")]
    assert commitment_for(d("2012-01-31"), d("2012-01-31"), leap).coverage.end == d("2012-03-01")
    assert commitment_for(d("2012-02-29"), d("2012-02-29"), leap).coverage.end == d("2012-03-30")
    # Across the year end, inside one period.
    span = [period("2011-06-01", "2012-06-30")]
    assert commitment_for(d("2011-12-15"), d("2011-12-20"), span).coverage.end == d("2012-01-14")


def test_period_ending_the_day_of_dispensing_gives_a_one_day_coverage():
    commitment = commitment_for(d("2011-11-30"), d("2011-11-30"), [period("2011-01-01", "2011-11-30")])
    assert commitment.coverage.days == 1 and commitment.reusable


def test_a_gap_between_periods_is_not_joined():
    periods = [period("2011-01-01", "2011-12-31"), period("2012-01-02", "2012-12-31")]
    assert commitment_for(d("2011-12-25"), d("2011-12-25"), periods).coverage.end == d("2011-12-31")


def test_a_ct_change_is_not_joined():
    periods = [period("2011-01-01", "2011-12-31"), period("2012-01-01", "2012-12-31", CT111)]
    commitment = commitment_for(d("2011-12-25"), d("2011-12-25"), periods)
    assert commitment.coverage.end == d("2011-12-31")
    assert commitment.entitlement == CT110
    after = commitment_for(d("2012-01-03"), d("2012-01-03"), periods)
    assert after.entitlement == CT111 and after.coverage.end == d("2012-02-02")


def test_three_short_periods_join_and_order_does_not_matter():
    periods = [
        period("2011-12-11", "2011-12-20"),
        period("2011-12-01", "2011-12-10"),
        period("2011-12-21", "2012-03-31"),
    ]
    assert commitment_for(d("2011-12-05"), d("2011-12-05"), periods).coverage.end == d("2012-01-04")


def test_no_right_at_the_dispensing_date():
    periods = [period("2011-01-01", "2011-06-30"), period("2011-08-01", "2011-12-31")]
    with pytest.raises(NoCommitment):
        commitment_for(d("2011-07-15"), d("2011-07-15"), periods)
    with pytest.raises(NoCommitment):
        commitment_for(d("2011-07-15"), d("2011-07-15"), [])


def test_dispensing_after_consultation_is_invalid_input():
    with pytest.raises(InvalidInput) as caught:
        commitment_for(d("2011-11-13"), d("2011-11-12"), [period("2011-01-01", "2011-12-31")])
    assert caught.value.field == "date" and caught.value.rule == "after-consultation"


def test_overlapping_and_reversed_periods_are_invalid():
    with pytest.raises(InvalidInput) as overlap:
        commitment_for(
            d("2011-11-12"),
            d("2011-11-12"),
            [period("2011-01-01", "2011-12-31"), period("2011-12-31", "2012-12-31")],
        )
    assert overlap.value.rule == "overlap"
    with pytest.raises(InvalidInput) as reversed_:
        period("2011-12-31", "2011-01-01")
    assert reversed_.value.rule == "end-before-start"


@pytest.mark.parametrize(("days", "end"), [(0, "2011-11-12"), (15, "2011-11-27"), (60, "2011-12-31")])
def test_maximum_days_is_a_setting(days, end):
    commitment = commitment_for(d("2011-11-12"), d("2011-11-12"), [period("2011-01-01", "2011-12-31")], days)
    assert commitment.coverage.end == d(end)


def test_reuse_boundaries_both_ends_included():
    commitment = commitment_for(d("2011-10-26"), d("2011-11-12"), [period("2011-01-01", "2011-12-31")])
    assert commitment.reusable_for(d("2011-10-26")).allowed
    assert commitment.reusable_for(d("2011-11-25")).allowed
    before = commitment.reusable_for(d("2011-10-25"))
    assert not before.allowed and before.refusal is ReuseRefusal.BEFORE_COVERAGE
    after = commitment.reusable_for(d("2011-11-26"))
    assert not after.allowed and after.refusal is ReuseRefusal.AFTER_COVERAGE


def test_coverage_ending_on_the_consultation_day_stays_reusable():
    commitment = commitment_for(d("2011-11-01"), d("2011-11-12"), [period("2011-01-01", "2011-11-12")])
    assert commitment.reusable and commitment.reusable_until == d("2011-11-12")


def test_latest_commitment_that_covers_the_date_wins():
    year = [period("2011-01-01", "2011-12-31")]
    older = commitment_for(d("2011-11-01"), d("2011-11-01"), year)  # to 2011-12-01
    newer = commitment_for(d("2011-11-20"), d("2011-11-20"), [period("2011-01-01", "2011-12-31", CT111)])
    assert latest_covering([older, newer], d("2011-11-25")) is newer
    assert latest_covering([newer, older], d("2011-11-25")) is newer  # by consultation date, not order
    assert latest_covering([older, newer], d("2011-11-10")) is older  # newer starts later
    assert latest_covering([older, newer], d("2012-01-01")) is None
    same_day = commitment_for(d("2011-11-20"), d("2011-11-20"), year)
    assert latest_covering([newer, same_day], d("2011-11-25")) is same_day  # later obtained the same day


def test_reuse_verdict_explains_refusals():
    never = commitment_for(d("2011-10-26"), d("2011-11-12"), [period("2011-01-01", "2011-10-30")])
    chosen, verdict = reuse_verdict([never], d("2011-10-28"))
    assert chosen is never and verdict.refusal is ReuseRefusal.ENDED_BEFORE_CONSULTATION
    none, empty = reuse_verdict([], d("2011-10-28"))
    assert none is None and empty.refusal is ReuseRefusal.NONE_KNOWN
    ok = commitment_for(d("2011-11-12"), d("2011-11-12"), [period("2011-01-01", "2011-12-31")])
    chosen, verdict = reuse_verdict([never, ok], d("2011-11-20"))
    assert chosen is ok and verdict.allowed
    chosen, verdict = reuse_verdict([never, ok], d("2011-12-20"))
    assert chosen is ok and verdict.refusal is ReuseRefusal.AFTER_COVERAGE
