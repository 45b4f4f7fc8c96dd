"""The payment commitment ("engagement de paiement"): its coverage and its reuse (brochure 5, 11.1).

- Coverage starts at the date given in the request (the dispensing date, on or before the
  consultation date) and ends at the end of the insurability period, capped at start + N days
  (N = 30 by the pharmacists' convention: a setting, see ``DEFAULT_COMMITMENT_DAYS``).
- Consecutive periods (the next starts the day after) with the same CT1/CT2 join into one.
- No right at the requested date: no commitment.
- Reuse, only when the network cannot be reached, for a dispensing date inside the coverage,
  both ends included, with the latest commitment that covers it; a commitment whose coverage
  ended before its consultation date is never reusable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from itertools import pairwise

from mcn_cli.domain.errors import InvalidInput, NoCommitment
from mcn_cli.domain.identifiers import Entitlement
from mcn_cli.domain.messages import N_

DEFAULT_COMMITMENT_DAYS = 30


@dataclass(frozen=True)
class InsurabilityPeriod:
    """A period in which the insurer's data on the patient's right are constant."""

    entitlement: Entitlement
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidInput(
                "period",
                "end-before-start",
                N_("ends {end} before it starts {start}"),
                end=self.end,
                start=self.start,
            )

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Coverage:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


class ReuseRefusal(StrEnum):
    """Why a commitment may not be reused for a date; the values are stable (JSON) and are also
    English source text (msgids): cli/ shows ``_(verdict.reason)``."""

    ENDED_BEFORE_CONSULTATION = N_("coverage ended before the consultation date")
    BEFORE_COVERAGE = N_("dispensing date before the coverage start")
    AFTER_COVERAGE = N_("dispensing date after the coverage end")
    NONE_KNOWN = N_("no payment commitment known for this patient")


REUSE_ALLOWED = N_("dispensing date inside the coverage")


@dataclass(frozen=True)
class ReuseVerdict:
    allowed: bool
    refusal: ReuseRefusal | None = None

    @property
    def reason(self) -> str:
        """Stable (JSON) and a msgid: cli/ shows ``_(verdict.reason)``."""
        return self.refusal.value if self.refusal else REUSE_ALLOWED


@dataclass(frozen=True)
class PaymentCommitment:
    consulted: date
    dispensed: date
    coverage: Coverage
    entitlement: Entitlement

    @property
    def reusable(self) -> bool:
        """Whether any later dispensing may ever reuse it (examples 4 and 5 say never)."""
        return self.coverage.end >= self.consulted

    @property
    def reusable_until(self) -> date | None:
        return self.coverage.end if self.reusable else None

    def reusable_for(self, dispensed: date) -> ReuseVerdict:
        if not self.reusable:
            return ReuseVerdict(False, ReuseRefusal.ENDED_BEFORE_CONSULTATION)
        if dispensed < self.coverage.start:
            return ReuseVerdict(False, ReuseRefusal.BEFORE_COVERAGE)
        if dispensed > self.coverage.end:
            return ReuseVerdict(False, ReuseRefusal.AFTER_COVERAGE)
        return ReuseVerdict(True)


def _ordered(periods: Iterable[InsurabilityPeriod]) -> list[InsurabilityPeriod]:
    ordered = sorted(periods, key=lambda p: p.start)
    for before, after in pairwise(ordered):
        if after.start <= before.end:
            raise InvalidInput(
                "period",
                "overlap",
                N_("periods {first_start}..{first_end} and {second_start}..{second_end} overlap"),
                first_start=before.start,
                first_end=before.end,
                second_start=after.start,
                second_end=after.end,
            )
    return ordered


def commitment_for(
    dispensed: date,
    consulted: date,
    periods: Iterable[InsurabilityPeriod],
    max_days: int = DEFAULT_COMMITMENT_DAYS,
) -> PaymentCommitment:
    """The payment commitment a consultation on ``consulted`` gives for ``dispensed``."""
    if max_days < 0:
        raise InvalidInput("max-days", "negative", N_("must be 0 or more, got {days}"), days=max_days)
    if dispensed > consulted:
        raise InvalidInput(
            "date",
            "after-consultation",
            N_("dispensing date {dispensed} is after the consultation date {consulted}"),
            dispensed=dispensed,
            consulted=consulted,
        )
    ordered = _ordered(periods)
    index = next((i for i, p in enumerate(ordered) if p.contains(dispensed)), None)
    if index is None:
        raise NoCommitment(
            N_("no right at {date}: no payment commitment"),
            reason="no right at the dispensing date",
            date=dispensed,
        )
    current = ordered[index]
    end = current.end
    for following in ordered[index + 1 :]:
        if following.start != end + timedelta(days=1) or following.entitlement != current.entitlement:
            break
        end = following.end
    end = min(end, dispensed + timedelta(days=max_days))
    return PaymentCommitment(consulted, dispensed, Coverage(dispensed, end), current.entitlement)


def latest_covering(commitments: Sequence[PaymentCommitment], dispensed: date) -> PaymentCommitment | None:
    """The latest obtained commitment that may be reused for ``dispensed``.

    ``commitments`` come in the order they were obtained; among those consulted the same day
    the later in the sequence wins.
    """
    best: tuple[date, int] | None = None
    chosen: PaymentCommitment | None = None
    for position, commitment in enumerate(commitments):
        if not commitment.reusable_for(dispensed).allowed:
            continue
        key = (commitment.consulted, position)
        if best is None or key > best:
            best, chosen = key, commitment
    return chosen


def reuse_verdict(
    commitments: Sequence[PaymentCommitment], dispensed: date
) -> tuple[PaymentCommitment | None, ReuseVerdict]:
    """The commitment to reuse for ``dispensed`` and the verdict.

    When none may be reused, the latest commitment whose coverage holds the date (else the
    latest of all) is returned with its own verdict, which says why.
    """
    chosen = latest_covering(commitments, dispensed)
    if chosen is not None:
        return chosen, ReuseVerdict(True)
    if not commitments:
        return None, ReuseVerdict(False, ReuseRefusal.NONE_KNOWN)
    ranked = sorted(
        enumerate(commitments),
        key=lambda item: (item[1].coverage.contains(dispensed), item[1].consulted, item[0]),
    )
    latest = ranked[-1][1]
    return latest, latest.reusable_for(dispensed)
