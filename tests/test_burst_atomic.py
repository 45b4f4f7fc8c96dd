"""The legitimate-use guard holds across processes: checked and recorded in one write transaction."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from mcn_cli.actions.local import open_cache
from mcn_cli.domain.errors import PolicyRefused
from mcn_cli.domain.identifiers import parse_member
from mcn_cli.store import audit
from mcn_cli.store.audit import Actor
from tests.conftest import ROOT
from tests.factories import PHARMACIST, PHARMACY

ACTOR = Actor(PHARMACIST, PHARMACY)
pytestmark = pytest.mark.usefixtures("backend")

# One consultation in its own process: unlock, wait for the common start, claim, then keep the
# answer as consult does (so that the audit trail also holds what was consulted).
CONSULT = """
import sys, time
from datetime import UTC, datetime
from mcn_cli.actions.local import open_cache
from mcn_cli.domain.errors import PolicyRefused
from mcn_cli.domain.identifiers import parse_member
from mcn_cli.store.audit import Actor
from tests.factories import PHARMACIST, PHARMACY

cache = open_cache()
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
try:
    cache.claim_burst(PHARMACY, parse_member("306/" + sys.argv[1]), datetime.now(UTC), limit=3,
                      minutes=10, actor=Actor(PHARMACIST, PHARMACY))
except PolicyRefused:
    print("refused")
else:
    print("consulted")
"""


def test_eight_parallel_consultations_with_a_limit_of_3_consult_3_patients(mcn_home):
    open_cache()  # the vault exists before they start
    start = time.time() + 2.0
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CONSULT, f"10000000{i:02d}", str(start)],
            cwd=ROOT,
            env={**os.environ, "MCN_WORKSTATION": f"counter-{i}"},  # the store may be shared
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outcomes.append(out.strip())
    assert sorted(outcomes) == ["consulted"] * 3 + ["refused"] * 5
    cache = open_cache()
    refusals = [e for e in audit.entries(cache.db.connection) if e.outcome == "refused: burst of patients"]
    assert len(refusals) == 5
    assert audit.verify(cache.vault, cache.db.connection).intact


def test_the_same_patient_again_and_the_window_passing_are_allowed(mcn_home):
    cache = open_cache()
    now = datetime.now(UTC)
    patients = [parse_member(f"306/20000000{i:02d}") for i in range(3)]
    for patient in patients:
        cache.claim_burst(PHARMACY, patient, now, limit=3, minutes=10, actor=ACTOR)
    cache.claim_burst(PHARMACY, patients[0], now, limit=3, minutes=10, actor=ACTOR)  # again: fine
    fourth = parse_member("306/2000000099")
    with pytest.raises(PolicyRefused):
        cache.claim_burst(PHARMACY, fourth, now, limit=3, minutes=10, actor=ACTOR)
    cache.claim_burst("27150299", fourth, now, limit=3, minutes=10, actor=ACTOR)  # another pharmacy
    cache.claim_burst(PHARMACY, fourth, now + timedelta(minutes=11), limit=3, minutes=10, actor=ACTOR)
