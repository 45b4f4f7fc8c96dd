from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from mcn_cli.actions.local import open_cache, open_database
from mcn_cli.domain.errors import DataIntegrity
from mcn_cli.domain.identifiers import parse_member, parse_niss
from mcn_cli.status import ExitStatus
from mcn_cli.store import audit, vault
from mcn_cli.store.audit import Actor
from mcn_cli.store.cache import purge
from tests.factories import OTHER_NISS, PATIENT_NISS, PHARMACIST, PHARMACY, consultation

pytestmark = pytest.mark.usefixtures("backend")

SECRETS = [PATIENT_NISS, "Vandenbroucke", "Zo\u00eb", "9876543210", PHARMACIST]


def all_bytes(home: Path, tamper=None) -> bytes:
    """Every byte mcn wrote: the files, and what the PostgreSQL server holds."""
    blob = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    if tamper is not None and os.environ.get("MCN_STORE_URL"):
        for table in ("meta", "records", "actors", "audit", "burst"):
            for row in tamper(f"SELECT * FROM {table}"):
                for value in row:
                    blob += bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
    return blob


def test_records_hold_no_personal_data_in_clear(mcn_home, tamper):
    cache = open_cache()
    actor = Actor(PHARMACIST, PHARMACY)
    for i in range(5):
        cache.store(consultation(consulted=f"2011-11-1{i}"), actor)
    cache.record_event(
        audit.Event.CONSULTATION, "failed: timeout", actor=actor, patient=parse_niss(OTHER_NISS)
    )
    blob = all_bytes(mcn_home, tamper)
    assert blob, "nothing was written"
    for secret in [*SECRETS, OTHER_NISS]:
        for encoding in ("utf-8", "utf-16-le"):
            assert secret.encode(encoding) not in blob, f"{secret!r} found in clear"
    # and everything comes back
    assert len(cache.for_patient(parse_niss(PATIENT_NISS))) == 5


def test_files_are_owner_only(mcn_home):
    open_cache().store(consultation())
    for path in mcn_home.rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{path} has mode {mode:o}"


def test_patient_found_by_niss_or_by_member_only(mcn_home):
    cache = open_cache()
    cache.store(consultation())
    cache.store(consultation(niss=OTHER_NISS, member_number="111"))
    by_niss = cache.for_patient(parse_niss(PATIENT_NISS))
    by_member = cache.for_patient(parse_member("306/9876543210"))
    assert [c.id for c in by_niss] == [c.id for c in by_member]
    assert by_niss[0].consultation == consultation()


def test_a_group_readable_key_file_is_refused(mcn, mcn_home):
    open_cache().store(consultation())
    key = vault.key_file()
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    result = mcn("cache", "list")
    assert result.code == ExitStatus.DATA_INTEGRITY
    assert "chmod 600" in result.err and "Traceback" not in result.err


def test_passphrase_cache(mcn, monkeypatch):
    monkeypatch.setenv("MCN_CACHE_PASSPHRASE", "correct horse battery")
    assert mcn("cache", "init", "--passphrase").code == 0
    assert not vault.key_file().exists()
    open_cache().store(consultation())
    assert "**.**.**-**3.28" in mcn("cache", "list").out
    monkeypatch.setenv("MCN_CACHE_PASSPHRASE", "wrong horse battery")
    wrong = mcn("cache", "list")
    assert wrong.code == ExitStatus.DATA_INTEGRITY and "wrong cache key or passphrase" in wrong.err
    monkeypatch.delenv("MCN_CACHE_PASSPHRASE")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    missing = mcn("cache", "list")
    assert missing.code == ExitStatus.AUTH_NEEDED and "MCN_CACHE_PASSPHRASE" in missing.err
    # purge needs no key: cron runs it unattended
    assert mcn("cache", "purge").code == 0


def test_short_passphrase_refused_nothing_written(mcn, monkeypatch):
    monkeypatch.setenv("MCN_CACHE_PASSPHRASE", "short")
    result = mcn("cache", "init", "--passphrase")
    assert result.code == 2 and "at least 12" in result.err
    with open_database() as db:
        assert not vault.is_initialised(db)


def test_init_twice_is_refused(mcn):
    assert mcn("cache", "init").code == 0
    again = mcn("cache", "init")
    assert again.code == 2 and "rekey" in again.err


def test_rekey_reencrypts_and_retires_the_old_key(mcn, mcn_home, monkeypatch):
    cache = open_cache()
    record = cache.store(consultation(), Actor(PHARMACIST, PHARMACY))
    cache.db.close()
    old_key = vault.key_file().read_bytes()
    with open_database() as db:
        before = db.connection.execute("SELECT payload FROM records").fetchone()[0]
    result = mcn("cache", "rekey", "--json")
    assert result.code == 0 and result.json()["rekeyed"] == 1
    assert vault.key_file().read_bytes() != old_key
    with open_database() as db:
        assert db.connection.execute("SELECT payload FROM records").fetchone()[0] != before
    assert open_cache().get(record).consultation == consultation()
    assert mcn("audit", "verify").code == 0  # the chain survives a rekey
    # the old key no longer opens the cache
    vault.key_file().write_bytes(old_key)
    assert mcn("cache", "list").code == ExitStatus.DATA_INTEGRITY


def test_rekey_from_file_to_passphrase(mcn, monkeypatch):
    open_cache().store(consultation())
    monkeypatch.setenv("MCN_CACHE_NEW_PASSPHRASE", "a brand new passphrase")
    assert mcn("cache", "rekey", "--passphrase").code == 0
    assert not vault.key_file().exists()
    monkeypatch.setenv("MCN_CACHE_PASSPHRASE", "a brand new passphrase")
    assert len(open_cache().all()) == 1


def test_interrupted_rekey_recovers_the_pending_key(mcn):
    cache = open_cache()
    cache.store(consultation())
    with open_database() as db:
        real_replace = os.replace
        calls = []

        def crash_on_key_swap(src, dst):
            calls.append(src)
            raise KeyboardInterrupt  # the process dies between commit and the key file's swap

        os.replace = crash_on_key_swap
        try:
            with pytest.raises(KeyboardInterrupt):
                vault.rekey(db, lambda old, new: None, use_passphrase=False)
        finally:
            os.replace = real_replace
    assert calls
    assert mcn("cache", "list").code == 0  # unlock finds the pending key and finishes the swap
    assert not vault.key_file().with_name("vault.key.new").exists()


def test_tampered_payload_or_clear_column_is_detected(mcn, tamper):
    cache = open_cache()
    record = cache.store(consultation())
    payload = bytearray(tamper("SELECT payload FROM records")[0][0])
    payload[20] ^= 1
    tamper("UPDATE records SET payload = ?", bytes(payload))
    result = mcn("cache", "show", record)
    assert result.code == ExitStatus.DATA_INTEGRITY and "integrity" in result.err
    cache.db.close()

    other = open_cache()
    second = other.store(consultation(niss=OTHER_NISS))
    tamper("UPDATE records SET coverage_end = '2099-01-01' WHERE id = ?", second)
    with pytest.raises(DataIntegrity):
        other.get(second)


def test_billing_lifecycle_and_settle_deletes(mcn):
    cache = open_cache()
    nov = [cache.store(consultation(consulted=f"2011-11-{d:02d}")) for d in (2, 15, 30)]
    dec = cache.store(consultation(consulted="2011-12-01"))
    cache.db.close()
    invoiced = mcn("billing", "invoice", "--month", "2011-11", "--json")
    assert invoiced.json() == {"invoiced": 3}
    assert mcn("billing", "invoice", "--month", "2011-11", "--json").json() == {"invoiced": 0}
    states = {r["id"]: r["state"] for r in mcn("cache", "list", "--json").json()}
    assert [states[i] for i in nov] == ["invoiced"] * 3 and states[dec] == "open"
    assert mcn("billing", "settle", "--record", nov[0], "--json").json() == {"settled": 1}
    assert mcn("cache", "show", nov[0]).code == 2
    assert mcn("billing", "settle", "--month", "2011-11", "--json").json() == {"settled": 2}
    assert [r["id"] for r in mcn("cache", "list", "--json").json()] == [dec]
    # the audit trail remembers
    with open_database() as db:
        events = [e.event for e in audit.entries(db.connection)]
    assert events.count("invoiced") == 3 and events.count("settled") == 3


@pytest.mark.parametrize(
    "args",
    [
        ["billing", "invoice"],
        ["billing", "invoice", "--month", "2011-13"],
        ["billing", "invoice", "--month", "2011-11", "--record", "x"],
        ["billing", "settle", "--record", "nope"],
    ],
)
def test_billing_bad_input(mcn, args):
    open_cache().store(consultation())
    assert mcn(*args).code == 2


def test_purge_rules(mcn):
    cache = open_cache()
    today = date(2026, 11, 27)
    old = cache.store(consultation(consulted="2024-10-31", periods=(("2024-01-01", "2024-12-31"),)))
    kept_old = cache.store(consultation(consulted="2024-11-01", periods=(("2024-01-01", "2024-12-31"),)))
    stale_open = cache.store(consultation(consulted="2026-08-01", periods=(("2026-01-01", "2026-12-31"),)))
    recent_open = cache.store(consultation(consulted="2026-09-01", periods=(("2026-01-01", "2026-12-31"),)))
    cache.invoice(ids=[kept_old])
    counts = purge(cache.db, today, retention_months=24, grace_days=60)
    assert (counts.expired, counts.uninvoiced, counts.settled) == (1, 1, 0)
    left = {c.id for c in cache.all()}
    assert left == {kept_old, recent_open}
    assert old not in left and stale_open not in left
    assert purge(cache.db, today, 24, 60).total == 0  # idempotent


def test_purge_cli_is_silent_and_counts_in_json(mcn):
    assert mcn("cache", "purge").out == ""
    cache = open_cache()
    cache.store(consultation(consulted="2011-11-12"))
    result = mcn("cache", "purge", "--json")
    assert result.json() == {"purged": 1, "settled": 0, "expired": 1, "uninvoiced": 0, "sessions": 0}
    quiet = mcn("cache", "purge")
    assert quiet.code == 0 and quiet.out == "" and quiet.err == ""


def test_list_masks_unless_reveal(mcn):
    open_cache().store(consultation())
    masked = mcn("cache", "list")
    assert PATIENT_NISS not in masked.out and "**.**.**-**3.28" in masked.out
    shown = mcn("cache", "show", mcn("cache", "list", "--json").json()[0]["id"])
    assert "Vandenbroucke" not in shown.out and "Z. V." in shown.out
    revealed = mcn("cache", "list", "--json", "--reveal").json()[0]
    assert revealed["patient"]["niss"] == PATIENT_NISS and revealed["patient"]["last_name"] == "Vandenbroucke"
    hidden = mcn("cache", "list", "--json").json()[0]
    assert hidden["patient"]["niss"] != PATIENT_NISS and hidden["patient"]["last_name"] is None
    assert hidden["verification"]["payment_approval"].endswith("01")


def test_stats(mcn):
    cache = open_cache()
    cache.store(consultation())
    cache.invoice(ids=[cache.store(consultation(consulted="2011-11-20"))])
    data = mcn("cache", "stats", "--json").json()
    assert data["records"] == {"open": 1, "invoiced": 1, "settled": 0}
    assert data["audit_entries"] == 3 and data["oldest_dispensed"] == "2011-11-12"
