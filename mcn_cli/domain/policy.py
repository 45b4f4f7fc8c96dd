"""Legitimate use (brochure 7): consult at a dispensing, one patient at a time, never in bulk."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from mcn_cli.domain.errors import PolicyRefused

DEFAULT_BURST_PATIENTS = 40
DEFAULT_BURST_MINUTES = 10


def check_burst(
    recent: Iterable[tuple[datetime, str]],
    patient: str,
    now: datetime,
    *,
    limit: int = DEFAULT_BURST_PATIENTS,
    minutes: int = DEFAULT_BURST_MINUTES,
) -> None:
    """Refuse a consultation that would make more than ``limit`` different patients within
    ``minutes`` for one pharmacy: that is systematic consultation, which MyCareNet forbids and
    punishes by slowing down or excluding the pharmacy. Consulting the same patient again is fine."""
    since = now - timedelta(minutes=minutes)
    patients = {who for when, who in recent if when >= since}
    if patient in patients:
        return
    if len(patients) >= limit:
        raise PolicyRefused(
            f"refused: {len(patients)} different patients consulted in the last {minutes} minutes; "
            "systematic consultation is forbidden (brochure 7.2): consult only when dispensing"
        )
