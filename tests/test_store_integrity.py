"""The cache keeps its word: billing state bound to the record, deleted rows and audit entries
noticed, an unreadable audit entry named, and no record ever sealed under a discarded key."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest

from mcn_cli.actions.local import open_cache, open_database
from mcn_cli.domain.errors import DataIntegrity
from mcn_cli.domain.identifiers import parse_niss
from mcn_cli.status import ExitStatus
from mcn_cli.store import audit, codec, vault
from mcn_cli.store.audit import Actor
from mcn_cli.store.cache import CommitmentCache, Record
from tests.conftest import ROOT
from tests.factories import OTHER_NISS, PATIENT_NISS, PHARMACIST, PHARMACY, consultation

ACTOR = Actor(PHARMACIST, PHARMACY)


def recent_consultation(niss: str = PATIENT_NISS):
    today = date.today()
    return consultation(
        consulted=today.isoformat(),
        periods=((f"{today.year - 1}-01-01", f"{today.year + 1}-12-31"),),
        niss=niss,
        member_number=None,
    )


pytestmark = pytest.mark.usefixtures("backend")
_ATTACKER: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _attacker(tamper):
    _ATTACKER["sql"] = tamper


def sql(cache: CommitmentCache, statement: str, *args: object) -> None:
    """SQL run on the store outside mcn, as its owner: SQLite's file, or the PostgreSQL server."""
    _ATTACKER["sql"](statement, *args)  # type: ignore[operator]


@pytest.fixture
def stored() -> tuple[CommitmentCache, str]:
    cache = open_cache()
    record = cache.store(recent_consultation(), ACTOR)
    cache.store(recent_consultation(OTHER_NISS), ACTOR)
    return cache, record


# --- the billing state is bound to the sealed record -------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE records SET state = 'invoiced', invoiced_at = '2026-01-01T00:00:00+00:00' WHERE id = ?",
        "UPDATE records SET state = 'invoiced' WHERE id = ?",
        "UPDATE records SET binding = 1 WHERE id = ?",  # a downgrade to the old binding
    ],
)
def test_an_sql_edit_of_the_billing_state_is_exit_7(mcn, stored, statement):
    cache, record = stored
    sql(cache, statement, record)
    result = mcn("cache", "list")
    assert result.code == ExitStatus.DATA_INTEGRITY, result
    assert record in result.err
    with pytest.raises(DataIntegrity):
        cache.get(record)


def test_an_edited_invoiced_record_back_to_open_is_exit_7(mcn, stored):
    cache, record = stored
    assert cache.invoice(ids=[record], actor=ACTOR) == 1
    assert cache.get(record).state == "invoiced"  # invoicing re-sealed it with its state
    sql(cache, "UPDATE records SET state = 'open', invoiced_at = NULL WHERE id = ?", record)
    assert mcn("cache", "list").code == ExitStatus.DATA_INTEGRITY
    with pytest.raises(DataIntegrity):
        cache.invoice(ids=[record], actor=ACTOR)  # nor can it be invoiced twice that way


def test_settling_a_record_whose_state_was_edited_is_refused(stored):
    cache, record = stored
    sql(cache, "UPDATE records SET state = 'invoiced' WHERE id = ?", record)
    with pytest.raises(DataIntegrity):
        cache.settle(ids=[record], actor=ACTOR)
    assert open_database().connection.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 2


def _old_record(cache: CommitmentCache, state: str = "open") -> str:
    """A record as mcn sealed it before schema 3: its state outside the associated data."""
    item = recent_consultation()
    record = Record(
        id="00aa00aa00aa00aa",
        niss_key=cache.vault.pseudonym("niss", PATIENT_NISS),
        member_key=None,
        consulted_at=item.consulted_at.isoformat(timespec="microseconds"),
        dispensed=item.dispensed.isoformat(),
        coverage_start=None,
        coverage_end=None,
        reusable_until=None,
        pharmacy=PHARMACY,
        state=state,
        invoiced_at=None,
        binding=1,
        payload=b"",
    )
    payload = cache.vault.seal(codec.to_json(item), record.aad)
    with cache.db.write() as c:
        c.execute(
            "INSERT INTO records (id, niss_key, member_key, consulted_at, dispensed, pharmacy, state, "
            "payload) VALUES (?, ?, NULL, ?, ?, ?, ?, ?)",
            (record.id, record.niss_key, record.consulted_at, record.dispensed, PHARMACY, state, payload),
        )
        audit.append(
            cache.vault, c, audit.Event.CONSULTATION, "answered", record=record.id, dispensed=item.dispensed
        )
        c.execute("DELETE FROM meta WHERE name = 'record_binding'")
    return record.id


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_schema_2_database_is_upgraded_and_its_records_resealed_on_the_next_write(mcn):
    """SQLite's own schema upgrade (PostgreSQL's schema changes are mcn store migrate's)."""
    cache = open_cache()
    record = _old_record(cache)
    path = cache.db.path
    cache.db.close()
    with sqlite3.connect(path) as c:  # as mcn left it before schema 3
        c.execute("ALTER TABLE records DROP COLUMN binding")
        c.execute("DROP TABLE burst")
        c.execute("PRAGMA user_version = 2")
    cache = open_cache()
    assert cache.get(record).state == "open"  # read as it was: nothing lost
    row = cache.db.connection.execute("SELECT binding FROM records WHERE id = ?", (record,)).fetchone()
    assert row[0] == 1
    cache.record_event(audit.Event.REUSE, "reused", actor=ACTOR, patient=parse_niss(PATIENT_NISS))
    row = cache.db.connection.execute("SELECT binding FROM records WHERE id = ?", (record,)).fetchone()
    assert row[0] == 2  # re-sealed with its state by that write
    assert cache.get(record).state == "open"
    sql(cache, "UPDATE records SET state = 'invoiced' WHERE id = ?", record)
    assert mcn("cache", "list").code == ExitStatus.DATA_INTEGRITY
    assert mcn("audit", "verify").code == ExitStatus.OK


def test_a_rekey_reseals_old_records_with_their_state(mcn):
    cache = open_cache()
    record = _old_record(cache, "invoiced")
    assert mcn("cache", "rekey").code == ExitStatus.OK
    cache = open_cache()
    assert cache.get(record).state == "invoiced"
    sql(cache, "UPDATE records SET state = 'open' WHERE id = ?", record)
    assert mcn("cache", "list").code == ExitStatus.DATA_INTEGRITY


# --- deleted rows and audit entries -------------------------------------------------------


def test_a_deleted_record_row_is_found_by_audit_verify(mcn, stored):
    cache, record = stored
    assert mcn("audit", "verify").code == ExitStatus.OK
    sql(cache, "DELETE FROM records WHERE id = ?", record)
    result = mcn("audit", "verify", "--json")
    assert result.code == ExitStatus.DATA_INTEGRITY
    problems = [b["problem"] for b in result.json()["breaks"]]
    assert any(record in p and "deleted" in p for p in problems), problems


def test_settled_and_purged_records_are_not_reported_missing(mcn, stored):
    cache, record = stored
    cache.invoice(ids=[record], actor=ACTOR)
    cache.settle(ids=[record], actor=ACTOR)
    old = cache.store(consultation(), ACTOR)  # dispensed in 2011: past any retention
    sql(cache, "DELETE FROM records WHERE id = ?", old)  # as purge would
    assert mcn("audit", "verify").code == ExitStatus.OK


def test_a_record_row_the_trail_does_not_know_is_reported(mcn, stored):
    cache, record = stored
    sql(cache, "UPDATE records SET id = 'ffffffffffffffff' WHERE id = ?", record)
    result = mcn("audit", "verify", "--json")
    assert result.code == ExitStatus.DATA_INTEGRITY
    assert any("ffffffffffffffff" in b["problem"] for b in result.json()["breaks"])


def _trail(cache: CommitmentCache, entries: int = 6) -> None:
    for _ in range(entries):
        cache.record_event(audit.Event.REUSE, "reused", actor=ACTOR, patient=parse_niss(PATIENT_NISS))


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM audit WHERE seq = 4",
        "UPDATE audit SET entry = replace(entry, 'reused', 'refused') WHERE seq = 4",
    ],
)
def test_a_deleted_or_edited_entry_in_the_middle_is_exit_7(mcn, statement):
    cache = open_cache()
    _trail(cache)
    sql(cache, statement)
    result = mcn("audit", "verify", "--json")
    assert result.code == ExitStatus.DATA_INTEGRITY
    assert result.json()["breaks"][0]["seq"] in (4, 5)


def test_one_unreadable_entry_is_named_and_stops_only_the_trail_commands(mcn):
    cache = open_cache()
    _trail(cache)
    sql(cache, "UPDATE audit SET entry = '{not json' WHERE seq = 3")
    result = mcn("audit", "verify", "--json")
    assert result.code == ExitStatus.DATA_INTEGRITY
    assert {"seq": 3, "problem": "entry is unreadable"} in result.json()["breaks"]
    month = date.today().strftime("%Y-%m")
    report = mcn("audit", "report", "--month", month)
    assert report.code == ExitStatus.DATA_INTEGRITY
    assert "audit entry 3" in report.err
    # consulting goes on: the burst guard reads past it, storing and reusing still work
    cache = open_cache()
    now = datetime.now(UTC)
    reuses = list(audit.recent(cache.db.connection, now - timedelta(minutes=5), audit.Event.REUSE))
    assert [e.seq for e in reuses] == [6, 5, 4, 2, 1]
    cache.claim_burst(PHARMACY, parse_niss(PATIENT_NISS), now, limit=3, minutes=10, actor=ACTOR)
    cache.store(recent_consultation(), ACTOR)
    assert mcn("cache", "list").code == ExitStatus.OK


# --- rekey during consultations ----------------------------------------------------------


def test_a_vault_unlocked_before_a_rekey_seals_under_the_new_key(mcn):
    cache = open_cache()  # a consultation unlocked the cache, then waits for MyCareNet
    assert mcn("cache", "rekey").code == ExitStatus.OK
    record = cache.store(recent_consultation(), ACTOR)  # its answer comes after the rekey
    fresh = open_cache()
    assert fresh.get(record).consultation.care_receiver.niss == PATIENT_NISS
    assert mcn("cache", "list").code == ExitStatus.OK
    assert mcn("audit", "verify").code == ExitStatus.OK


def test_a_new_passphrase_it_cannot_know_makes_the_store_refuse(mcn, monkeypatch):
    monkeypatch.setenv(vault.PASSPHRASE_ENV, "the first passphrase")
    assert mcn("cache", "init", "--passphrase").code == ExitStatus.OK
    cache = open_cache()
    monkeypatch.setenv(vault.NEW_PASSPHRASE_ENV, "the second passphrase")
    assert mcn("cache", "rekey").code == ExitStatus.OK
    # this process still knows only the first passphrase
    with pytest.raises(DataIntegrity, match="rekeyed"):
        cache.store(recent_consultation(), ACTOR)
    monkeypatch.setenv(vault.PASSPHRASE_ENV, "the second passphrase")
    assert mcn("cache", "list").code == ExitStatus.OK  # nothing unreadable was left
    assert mcn("audit", "verify").code == ExitStatus.OK
    last = list(audit.entries(open_database().connection))[-1]
    assert last.outcome.endswith("not kept: the cache was rekeyed meanwhile") and last.record is None


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_rekeys_during_consultations_in_other_processes_leave_every_record_readable(mcn_home):
    open_cache()  # the vault, with a key file
    writers = [_spawn("-m", "tests.writer", "store", "60") for _ in range(2)]
    for writer in writers:
        assert writer.stdout is not None
        writer.stdout.readline()  # it unlocked the cache and stores
    for _ in range(3):
        rekey = _spawn("-m", "mcn_cli", "cache", "rekey")
        _, err = rekey.communicate(timeout=120)
        assert rekey.returncode == 0, err
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    cache = open_cache()
    assert len(cache.all()) == 120  # every record decrypts under the current key
    result = audit.verify(cache.vault, cache.db.connection)
    assert result.intact and result.entries == 120
