"""Reuse of a cached payment commitment when the network is down (brochure 5.3, 9.2 steps 3-4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from mcn_cli.actions.local import cache_if_initialised
from mcn_cli.domain.commitment import ReuseVerdict, reuse_verdict
from mcn_cli.domain.consultation import PatientId
from mcn_cli.store.audit import Actor, Event
from mcn_cli.store.cache import Cached


@dataclass(frozen=True)
class ReuseAnswer:
    dispensed: date
    known: bool  # the patient has records in the cache (step 3)
    verdict: ReuseVerdict  # whether a commitment covers the date and may be reused (step 4)
    record: Cached | None  # the commitment to reuse, or the one the refusal speaks of


def find_reusable(
    patient: PatientId, dispensed: date, actor: Actor | None = None, *, audit: bool = True
) -> ReuseAnswer:
    """The latest cached commitment that covers ``dispensed``, the reuse rules applied. With
    ``audit`` (a pharmacist's reuse) the reuse is recorded; a hint that only looks does not."""
    cache = cache_if_initialised(offline_ok=True)
    if cache is None:
        _, verdict = reuse_verdict([], dispensed)
        return ReuseAnswer(dispensed, False, verdict, None)
    try:
        records = cache.for_patient(patient)
        pairs = [(r, r.consultation.commitment) for r in records if r.consultation.commitment]
        chosen, verdict = reuse_verdict([commitment for _, commitment in pairs], dispensed)
        record = next((r for r, commitment in pairs if commitment is chosen), None)
        outcome = "reused" if verdict.allowed else f"refused: {verdict.reason}"
        if audit:
            cache.record_event(Event.REUSE, outcome, actor=actor, patient=patient, dispensed=dispensed)
        return ReuseAnswer(dispensed, bool(records), verdict, record)
    finally:
        cache.db.close()
