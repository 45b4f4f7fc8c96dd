from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mcn_cli.domain.errors import PolicyRefused
from mcn_cli.domain.policy import check_burst

NOW = datetime(2026, 11, 28, 14, 0, 30, tzinfo=UTC)


def test_burst_refusal_says_when_consulting_works_again_and_points_to_the_fallback():
    recent = [
        (NOW - timedelta(minutes=9, seconds=10), "a"),  # leaves the window at 14:01:20
        (NOW - timedelta(minutes=8), "b"),  # leaves at 14:02:30: the third patient's time
        (NOW - timedelta(minutes=9, seconds=50), "b"),  # an older consultation of b: not the one
        (NOW - timedelta(minutes=1), "c"),
        (NOW - timedelta(minutes=11), "d"),  # outside the window
    ]
    with pytest.raises(PolicyRefused) as caught:
        check_burst(recent, "e", NOW, limit=2, minutes=10)
    error = caught.value
    assert error.params["again"] == datetime(2026, 11, 28, 14, 3, tzinfo=UTC)
    assert error.params["count"] == 3 and "brochure 7.2" in error.message
    assert error.hint is not None and "mcn fallback" in error.hint
    # at that time (nobody new meanwhile) a new patient is accepted; a minute before, not yet
    check_burst(recent, "e", error.params["again"], limit=2, minutes=10)
    with pytest.raises(PolicyRefused):
        check_burst(recent, "e", error.params["again"] - timedelta(minutes=1), limit=2, minutes=10)


def test_burst_allows_the_same_patient_again():
    recent = [(NOW, "a"), (NOW, "b")]
    check_burst(recent, "a", NOW, limit=2, minutes=10)
