"""Legitimate use (brochure 7): consult at a dispensing, one patient at a time, never in bulk."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from mcn_cli.domain.errors import PolicyRefused
from mcn_cli.domain.messages import N_

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
    punishes by slowing down or excluding the pharmacy. Consulting the same patient again is fine.

    The refusal says from when a new patient may be consulted (``again``, a datetime: the first
    whole minute at which fewer than ``limit`` patients remain in the window, if nobody new is
    consulted meanwhile) and points to the emergency flow for a patient at the counter."""
    since = now - timedelta(minutes=minutes)
    latest: dict[str, datetime] = {}
    for when, who in recent:
        if when >= since and (who not in latest or when > latest[who]):
            latest[who] = when
    if patient in latest:
        return
    if len(latest) >= limit:
        raise PolicyRefused(
            N_(
                "refused: too many different patients consulted in the last {minutes} min ({count}, limit "
                "{limit}); systematic consultation is forbidden (brochure 7.2): consult only when "
                "dispensing; a new patient can be consulted again from {again}"
            ),
            hint=N_("until then, for a patient at the counter, follow the emergency flow: mcn fallback"),
            count=len(latest),
            limit=limit,
            minutes=minutes,
            again=_again(sorted(latest.values(), reverse=True)[limit - 1], minutes),
        )


def _again(oldest_kept: datetime, minutes: int) -> datetime:
    """The first whole minute after ``oldest_kept`` leaves a window of ``minutes``: a consultation
    at ``oldest_kept + minutes`` still counts it, so strictly after, rounded up to the minute (the
    time is shown to the minute)."""
    leaves = oldest_kept + timedelta(minutes=minutes)
    return leaves.replace(second=0, microsecond=0) + timedelta(minutes=1)
