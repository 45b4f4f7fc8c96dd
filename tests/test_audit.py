from __future__ import annotations

import pytest

from mcn_cli.actions.local import open_cache
from mcn_cli.domain.identifiers import parse_niss
from mcn_cli.status import ExitStatus
from mcn_cli.store.audit import Actor, Event
from tests.factories import OTHER_NISS, PHARMACIST, PHARMACY, consultation

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def trail(tamper):
    cache = open_cache()
    actor = Actor(PHARMACIST, PHARMACY)
    ids = [cache.store(consultation(consulted=f"2011-11-{d:02d}"), actor) for d in (3, 10, 17, 24)]
    cache.record_event(Event.CONSULTATION, "failed: timeout", actor=actor, patient=parse_niss(OTHER_NISS))
    cache.invoice(ids=ids[:2], actor=actor)
    cache.db.close()
    return tamper, ids


def test_intact_chain_verifies(mcn, trail):
    result = mcn("audit", "verify", "--json")
    assert result.code == 0
    data = result.json()
    assert data["intact"] and data["entries"] == 7 and len(data["head"]) == 64


def _tamper(tamper, sql, *args):
    tamper(sql, *args)


def test_edited_entry_is_detected(mcn, trail):
    path, _ = trail
    _tamper(path, "UPDATE audit SET entry = replace(entry, 'answered', 'refused') WHERE seq = 2")
    result = mcn("audit", "verify", "--json")
    assert result.code == ExitStatus.DATA_INTEGRITY
    assert [b["seq"] for b in result.json()["breaks"]] == [2]


def test_flipped_byte_is_detected(mcn, trail):
    path, _ = trail
    text = path("SELECT entry FROM audit WHERE seq = 3")[0][0]
    flipped = text[:10] + chr(ord(text[10]) ^ 1) + text[11:]
    path("UPDATE audit SET entry = ? WHERE seq = 3", flipped)
    assert mcn("audit", "verify").code == ExitStatus.DATA_INTEGRITY


def test_deleted_entry_is_detected(mcn, trail):
    path, _ = trail
    _tamper(path, "DELETE FROM audit WHERE seq = 4")
    result = mcn("audit", "verify", "--json")
    assert result.code == ExitStatus.DATA_INTEGRITY
    assert "missing" in result.json()["breaks"][0]["problem"]


def test_reordered_entries_are_detected(mcn, trail):
    path, _ = trail
    selected = path("SELECT seq, entry, mac FROM audit WHERE seq IN (2, 3)")
    rows = {seq: (entry, mac) for seq, entry, mac in selected}
    for seq, other in ((2, 3), (3, 2)):
        entry, mac = rows[other]
        path("UPDATE audit SET entry = ?, mac = ? WHERE seq = ?", entry, mac, seq)
    result = mcn("audit", "verify")
    assert result.code == ExitStatus.DATA_INTEGRITY and "entry 2" in result.out


def test_entries_carry_pseudonyms_and_why(trail):
    cache = open_cache()
    from mcn_cli.store import audit

    entries = list(audit.entries(cache.db.connection))
    first = entries[0]
    assert first.event == "consultation" and first.dispensed == "2011-11-03" and first.pharmacy == PHARMACY
    assert first.patient and len(first.patient) == 64 and first.actor and len(first.actor) == 64
    assert audit.actor_niss(cache.vault, cache.db.connection, first.actor) == PHARMACIST
    failed = entries[4]
    assert failed.record is None and failed.outcome == "failed: timeout"


def test_month_report_lists_never_invoiced(mcn, trail):
    _, ids = trail
    result = mcn("audit", "report", "--month", "2011-11", "--json")
    assert result.code == 0
    data = result.json()
    assert data["answered"] == 4 and data["invoiced"] == 2 and data["refused_or_failed"] == 0
    assert [e["record"] for e in data["never_invoiced"]] == ids[2:]
    assert {e["user"] for e in data["never_invoiced"]} == {PHARMACIST}
    text = mcn("audit", "report", "--month", "2011-11").out
    assert "never invoiced" in text and ids[3] in text
    assert mcn("audit", "report", "--month", "11-2011").code == 2
