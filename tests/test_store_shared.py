"""The shared store on a real PostgreSQL: migrations, least privileges, several workstations,
the spool while the server is down, and copying a workstation's SQLite trail."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mcn_cli.actions.local import cache_if_initialised, open_cache
from mcn_cli.status import ExitStatus
from mcn_cli.store import audit, vault
from mcn_cli.store.audit import Actor
from tests.factories import OTHER_NISS, PHARMACIST, PHARMACY, consultation
from tests.pg_cluster import OWNER, TOOL

ACTOR = Actor(PHARMACIST, PHARMACY)
DOWN = "postgresql://mcn_tool@127.0.0.1:1/nowhere?connect_timeout=1&sslmode=disable"


def owner_url(pg_cluster, tool_url: str) -> str:
    return pg_cluster.url(OWNER, tool_url.rsplit("/", 1)[1].split("?")[0])


def test_a_missing_schema_says_run_migrate_and_migrate_is_versioned(mcn, pg_cluster, monkeypatch):
    database = pg_cluster.empty_database()
    monkeypatch.setenv("MCN_STORE_URL", pg_cluster.url(TOOL, database))
    result = mcn("cache", "list")
    assert result.code == ExitStatus.NO_DATABASE and "run mcn store migrate" in result.err
    assert mcn("cache", "purge").code == ExitStatus.NO_DATABASE  # no DDL outside migrate
    owner = pg_cluster.url(OWNER, database)
    first = mcn("store", "migrate", "--url", owner, "--grant", TOOL, "--json")
    assert first.code == 0 and first.json() == {"before": 0, "after": 1}
    assert mcn("store", "migrate", "--url", owner, "--json").json() == {"before": 1, "after": 1}
    assert mcn("cache", "list").code == ExitStatus.OK
    status = mcn("store", "status", "--json").json()
    assert status["backend"] == "postgresql" and status["schema"] == 1 and status["reachable"]
    assert pg_cluster.password not in mcn("store", "status").out  # the password is never shown


def test_a_newer_schema_is_refused_by_migrate_and_by_every_command(mcn, pg_url, pg_cluster):
    with pg_cluster.admin(pg_url.rsplit("/", 1)[1].split("?")[0]) as c:
        c.execute("INSERT INTO schema_version (version) VALUES (99)")
    refused = mcn("store", "migrate", "--url", owner_url(pg_cluster, pg_url))
    assert refused.code == ExitStatus.DATA_INTEGRITY and "newer mcn" in refused.err
    assert mcn("cache", "list").code == ExitStatus.DATA_INTEGRITY


def test_the_tool_role_cannot_rewrite_the_trail_nor_change_the_schema(pg_url):
    import psycopg

    open_cache().store(consultation(), ACTOR)
    with psycopg.connect(pg_url, autocommit=True) as c:
        for statement in (
            "UPDATE audit SET entry = 'x'",
            "DELETE FROM audit",
            "CREATE TABLE extra (x int)",
            "DROP TABLE records",
            "DELETE FROM schema_version",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(statement)
        assert c.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 1


def test_the_server_sees_no_personal_data_and_sslmode_is_accepted(pg_url, pg_cluster, monkeypatch):
    monkeypatch.setenv("MCN_STORE_URL", pg_url.replace("sslmode=disable", "sslmode=prefer"))
    open_cache().store(consultation(), ACTOR)
    with pg_cluster.admin(pg_url.rsplit("/", 1)[1].split("?")[0]) as c:
        tables = ("meta", "records", "actors", "audit")
        dump = repr([c.execute(f"SELECT * FROM {t}").fetchall() for t in tables])
    for secret in ("85073003328", "Vandenbroucke", "9876543210"):
        assert secret not in dump


# --- several counters ----------------------------------------------------------------------


def as_workstation(monkeypatch, home: Path, name: str) -> None:
    monkeypatch.setenv("MCN_HOME", str(home))
    monkeypatch.setenv("MCN_WORKSTATION", name)


def test_a_second_workstation_enrols_with_a_key_file_copy_and_sees_one_truth(
    mcn, pg_url, mcn_home, tmp_path, monkeypatch
):
    first = open_cache()
    ids = [first.store(consultation(consulted=f"2011-11-{d:02d}"), ACTOR) for d in (3, 10)]
    first.db.close()
    key_copy = tmp_path / "vault.key.copy"
    shutil.copy(vault.key_file(), key_copy)
    os.chmod(key_copy, 0o600)

    as_workstation(monkeypatch, tmp_path / "counter-2", "counter-2")
    refused = mcn("cache", "list")  # no key on this workstation yet
    assert refused.code == ExitStatus.DATA_INTEGRITY
    enrolled = mcn("store", "enrol", "--key-file", str(key_copy), "--json")
    assert enrolled.code == 0, enrolled.err
    assert enrolled.json()["workstations"] == ["counter-2"]
    assert {r["id"] for r in mcn("cache", "list", "--json").json()} == set(ids)
    second = open_cache()
    ids.append(second.store(consultation(consulted="2011-11-20", niss=OTHER_NISS), ACTOR))
    second.db.close()
    assert mcn("billing", "invoice", "--month", "2011-11", "--json").json() == {"invoiced": 3}

    as_workstation(monkeypatch, mcn_home, "counter-1")
    assert mcn("store", "enrol", "--json").json()["workstations"] == ["counter-1", "counter-2"]
    assert mcn("billing", "settle", "--month", "2011-11", "--json").json() == {"settled": 3}
    verified = mcn("audit", "verify", "--json").json()
    assert verified["intact"] and verified["entries"] == 9


def test_a_passphrase_store_enrols_with_the_passphrase_and_a_rekey_serves_everyone(
    mcn, pg_url, mcn_home, tmp_path, monkeypatch
):
    monkeypatch.setenv(vault.PASSPHRASE_ENV, "the pharmacy's passphrase")
    assert mcn("cache", "init", "--passphrase").code == 0
    record = open_cache().store(consultation(), ACTOR)

    as_workstation(monkeypatch, tmp_path / "counter-2", "counter-2")
    assert mcn("store", "enrol").code == 0
    assert mcn("cache", "show", record).code == 0

    as_workstation(monkeypatch, mcn_home, "counter-1")
    monkeypatch.setenv(vault.NEW_PASSPHRASE_ENV, "the pharmacy's new passphrase")
    assert mcn("cache", "rekey", "--json").json()["rekeyed"] == 1

    as_workstation(monkeypatch, tmp_path / "counter-2", "counter-2")
    assert mcn("cache", "show", record).code == ExitStatus.DATA_INTEGRITY  # the old passphrase
    monkeypatch.setenv(vault.PASSPHRASE_ENV, "the pharmacy's new passphrase")
    assert mcn("cache", "show", record).code == 0
    assert mcn("audit", "verify").code == 0


# --- the server down: the spool --------------------------------------------------------------


def test_while_the_server_is_down_the_spool_keeps_the_answer_and_delivers_it_once(
    mcn, pg_url, monkeypatch
):
    open_cache().store(consultation(consulted="2011-11-03"), ACTOR)  # the keys' copy is made here
    monkeypatch.setenv("MCN_STORE_URL", DOWN)
    assert mcn("cache", "list").code == ExitStatus.SERVICE_UNAVAILABLE  # only consult/reuse fall back
    spooled = cache_if_initialised(offline_ok=True)
    assert spooled is not None and spooled.db.kind == "sqlite"
    record = spooled.store(consultation(consulted="2011-11-04", niss=OTHER_NISS), ACTOR)
    spooled.record_event(audit.Event.REUSE, "reused", actor=ACTOR)
    spooled.db.close()
    waiting = mcn("store", "status", "--json").json()
    assert not waiting["reachable"]
    assert waiting["waiting"] == {"entries": 2, "records": 1, "oldest": "2011-11-04T10:00:00+00:00"}

    monkeypatch.setenv("MCN_STORE_URL", pg_url)
    listed = mcn("cache", "list", "--json")  # the first command that reaches the server delivers
    assert record in {r["id"] for r in listed.json()}
    status = mcn("store", "status", "--json").json()
    assert status["waiting"]["entries"] == 0 and status["records"] == 2 and status["audit_entries"] == 3
    cache = open_cache()
    entries = list(audit.entries(cache.db.connection))
    assert [e.extra.get("spooled") for e in entries] == [None, 1, 2]  # their numbers in the spool
    assert {e.extra.get("workstation") for e in entries[1:]} == {"counter-1"}
    assert audit.verify(cache.vault, cache.db.connection).intact
    cache.db.close()
    open_cache().db.close()  # again: nothing delivered twice
    assert mcn("audit", "verify", "--json").json()["entries"] == 3


def test_a_crash_after_the_server_committed_never_delivers_twice(mcn, pg_url, monkeypatch):
    from mcn_cli.store import spool

    open_cache().db.close()
    monkeypatch.setenv("MCN_STORE_URL", DOWN)
    spooled = cache_if_initialised(offline_ok=True)
    spooled.store(consultation(), ACTOR)
    before = spool._after(spooled.db)
    spooled.db.close()
    monkeypatch.setenv("MCN_STORE_URL", pg_url)
    open_cache().db.close()
    # as if the local clean-up had never run: the spool looks full again
    from mcn_cli.store.db import Database

    with Database() as local, local.write() as c:
        spool._set_after(c, before)
    cache = open_cache()
    assert len(cache.all()) == 1
    assert audit.verify(cache.vault, cache.db.connection).entries == 1


# --- copying a workstation's SQLite store --------------------------------------------------------


def test_copy_moves_a_workstations_cache_and_trail_with_both_chains_verified(mcn, pg_url, monkeypatch):
    monkeypatch.delenv("MCN_STORE_URL")
    local = open_cache()
    ids = [local.store(consultation(consulted=f"2011-11-{d:02d}"), ACTOR) for d in (3, 10)]
    local.invoice(ids=ids[:1], actor=ACTOR)
    path = local.db.path
    local.db.close()
    copied = mcn("store", "copy", "--from", f"sqlite:{path}", "--to", pg_url, "--json")
    assert copied.code == 0, copied.err
    data = copied.json()
    assert (data["records"], data["entries"], data["actors"], data["target_entries"]) == (2, 3, 1, 3)
    human = mcn("store", "copy", "--from", f"sqlite:{path}", "--to", pg_url)
    assert human.code == ExitStatus.BAD_INPUT and "already copied" in human.err

    monkeypatch.setenv("MCN_STORE_URL", pg_url)
    states = {r["id"]: r["state"] for r in mcn("cache", "list", "--json").json()}
    assert states == {ids[0]: "invoiced", ids[1]: "open"}
    assert mcn("audit", "verify").code == 0
    assert mcn("store", "status", "--json").json()["waiting"]["entries"] == 0  # history is not spool


def test_a_consultation_while_the_server_is_down_is_answered_spooled_and_delivered(
    mcn, sandbox, pg_url, monkeypatch
):
    from datetime import date

    from tests.conftest import SANDBOX_PIN

    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0  # the session stays on this workstation
    sessions = mcn("session", "list", "--json").json()
    assert [s["workstation"] for s in sessions] == ["counter-1"]
    niss = "85073003328"
    monkeypatch.setenv("MCN_STORE_URL", DOWN)
    answered = mcn("consult", "--niss", niss, "--json")
    assert answered.code == 0, answered.err
    assert "warning" in answered.err and "spool" in answered.err
    reuse = mcn("reuse", "--niss", niss, "--date", date.today().isoformat(), "--json")
    assert "spool" in reuse.err
    waiting = mcn("store", "status", "--json").json()["waiting"]
    assert waiting["records"] == 1 and waiting["entries"] >= 2

    monkeypatch.setenv("MCN_STORE_URL", pg_url)
    assert answered.json()["record"] in {r["id"] for r in mcn("cache", "list", "--json").json()}
    assert mcn("store", "status", "--json").json()["waiting"]["entries"] == 0
    assert mcn("audit", "verify").code == 0


def test_a_workstation_with_its_own_cache_must_copy_it_before_joining(mcn, pg_url, monkeypatch):
    monkeypatch.delenv("MCN_STORE_URL")
    own = open_cache()
    record = own.store(consultation(), ACTOR)
    path = own.db.path
    own.db.close()
    monkeypatch.setenv("MCN_STORE_URL", pg_url)
    assert mcn("cache", "list").out == "the cache is empty\n"  # the shared store has no keys yet
    refused = mcn("cache", "init")
    assert refused.code == ExitStatus.BAD_INPUT and "mcn store copy" in refused.err
    from mcn_cli.domain.errors import InvalidInput

    with pytest.raises(InvalidInput, match="copy it first"):
        open_cache()  # as a consultation would
    assert mcn("store", "status", "--json").json()["records"] == 0  # no keys were made meanwhile
    assert mcn("store", "copy", "--from", f"sqlite:{path}", "--to", pg_url).code == 0
    assert [r["id"] for r in mcn("cache", "list", "--json").json()] == [record]


def test_after_a_rekey_to_a_new_key_file_the_other_counter_enrols_its_copy(
    mcn, pg_url, mcn_home, tmp_path, monkeypatch
):
    record = open_cache().store(consultation(), ACTOR)
    first_copy = tmp_path / "first.key"
    shutil.copy(vault.key_file(), first_copy)
    as_workstation(monkeypatch, tmp_path / "counter-2", "counter-2")
    assert mcn("store", "enrol", "--key-file", str(first_copy)).code == 0
    monkeypatch.setenv("MCN_STORE_URL", DOWN)  # counter-2 works on its spool meanwhile
    spooled = cache_if_initialised(offline_ok=True)
    waiting = spooled.store(consultation(niss=OTHER_NISS), ACTOR)
    spooled.db.close()
    monkeypatch.setenv("MCN_STORE_URL", pg_url)

    as_workstation(monkeypatch, mcn_home, "counter-1")
    assert mcn("cache", "rekey").code == 0
    second_copy = tmp_path / "second.key"
    shutil.copy(vault.key_file(), second_copy)

    as_workstation(monkeypatch, tmp_path / "counter-2", "counter-2")
    assert mcn("cache", "show", record).code == ExitStatus.DATA_INTEGRITY  # its key is the old one
    wrong = mcn("store", "enrol", "--key-file", str(first_copy))
    assert wrong.code == ExitStatus.BAD_INPUT and "does not open" in wrong.err
    assert mcn("store", "enrol", "--key-file", str(second_copy)).code == 0
    assert mcn("cache", "show", record).code == 0
    assert mcn("cache", "show", waiting).code == 0  # the spool was re-sealed, then delivered
    assert mcn("audit", "verify").code == 0


def test_the_burst_guard_reads_past_entries_a_spool_delivered_late(pg_url, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from mcn_cli.domain.identifiers import parse_niss

    cache = open_cache()
    other = parse_niss(OTHER_NISS)
    cache.record_event(audit.Event.CONSULTATION, "failed: timeout", actor=ACTOR, patient=other)
    cache.db.close()
    monkeypatch.setenv("MCN_STORE_URL", DOWN)
    spooled = cache_if_initialised(offline_ok=True)
    spooled.store(consultation(consulted="2011-11-04"), ACTOR)  # an entry dated long ago
    spooled.db.close()
    monkeypatch.setenv("MCN_STORE_URL", pg_url)
    cache = open_cache()  # delivers: the old entry is now the newest of the chain
    since = datetime.now(UTC) - timedelta(minutes=10)
    recent = list(audit.recent(cache.db.connection, since, audit.Event.CONSULTATION))
    assert [e.outcome for e in recent] == ["failed: timeout"]


# --- the server going away during a command ------------------------------------------------------


def _drop_connections(pg_cluster, pg_url: str) -> None:
    """What a server restart does to the connections open meanwhile."""
    database = pg_url.rsplit("/", 1)[1].split("?")[0]
    with pg_cluster.admin() as c:
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND usename = %s",
            (database, TOOL),
        )


def test_a_server_lost_while_mycarenet_answers_spools_the_answer_and_its_entry(
    mcn, pg_url, pg_cluster, monkeypatch
):
    from mcn_cli.store import backend

    open_cache().db.close()  # keys made, their copy kept on the workstation
    warnings: list[object] = []
    monkeypatch.setattr(backend, "warn", warnings.append)
    cache = cache_if_initialised(offline_ok=True)  # a consultation: the server answers at first
    assert cache is not None and cache.db.kind == "postgresql"
    _drop_connections(pg_cluster, pg_url)  # ... and restarts while MyCareNet is asked
    record = cache.store(consultation(), ACTOR)
    cache.record_event(audit.Event.REUSE, "reused", actor=ACTOR)
    cache.db.close()
    assert len(warnings) == 1 and "spool" in str(warnings[0])
    assert mcn("store", "status", "--json").json()["waiting"]["entries"] == 2
    verified = mcn("audit", "verify", "--json")  # the first command that reaches it delivers
    assert verified.code == 0 and verified.json()["entries"] == 2
    assert mcn("cache", "show", record).code == 0
    assert mcn("store", "status", "--json").json()["waiting"]["entries"] == 0


def test_a_server_lost_during_billing_is_exit_5_not_a_crash(pg_url, pg_cluster):
    from mcn_cli.domain.errors import ServiceUnavailable

    cache = open_cache()
    record = cache.store(consultation(), ACTOR)
    _drop_connections(pg_cluster, pg_url)
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        cache.invoice(ids=[record], actor=ACTOR)
    cache.db.close()
    cache = open_cache()
    _drop_connections(pg_cluster, pg_url)
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        cache.all()
    cache.db.close()


def test_two_workstations_with_one_name_never_deliver_a_spool_twice(
    mcn, pg_url, mcn_home, tmp_path, monkeypatch
):
    """Two counters left with the same name (the host's, by default) each spool; one crashes
    after the server committed its delivery, before its local clean-up; the other delivers
    meanwhile. The first one's spool is still not delivered twice."""
    from mcn_cli.store import spool
    from mcn_cli.store.db import Database

    def spool_one(niss: str) -> int:
        monkeypatch.setenv("MCN_STORE_URL", DOWN)
        spooled = cache_if_initialised(offline_ok=True)
        before = spool._after(spooled.db)
        spooled.store(consultation(niss=niss), ACTOR)
        spooled.db.close()
        monkeypatch.setenv("MCN_STORE_URL", pg_url)
        return before

    open_cache().db.close()
    key_copy = tmp_path / "vault.key.copy"
    shutil.copy(vault.key_file(), key_copy)
    os.chmod(key_copy, 0o600)
    as_workstation(monkeypatch, tmp_path / "other", "counter-1")
    assert mcn("store", "enrol", "--key-file", str(key_copy)).code == 0

    as_workstation(monkeypatch, mcn_home, "counter-1")
    before = spool_one("85073003328")
    open_cache().db.close()  # delivered ...
    with Database() as local, local.write() as c:
        spool._set_after(c, before)  # ... but as if the local clean-up had never run

    as_workstation(monkeypatch, tmp_path / "other", "counter-1")
    spool_one(OTHER_NISS)
    open_cache().db.close()

    as_workstation(monkeypatch, mcn_home, "counter-1")
    cache = open_cache()
    assert audit.verify(cache.vault, cache.db.connection).entries == 2
    cache.db.close()


def test_copy_of_a_store_whose_key_file_cannot_open_the_shared_keys_says_other_keys(
    mcn, pg_url, mcn_home, tmp_path, monkeypatch
):
    open_cache().db.close()  # the shared store's keys, made on the first counter
    as_workstation(monkeypatch, tmp_path / "own", "counter-2")
    monkeypatch.delenv("MCN_STORE_URL")
    own = open_cache()  # a workstation that kept its own SQLite store, with its own key file
    own.store(consultation(), ACTOR)
    path = own.db.path
    own.db.close()
    refused = mcn("store", "copy", "--from", f"sqlite:{path}", "--to", pg_url)
    assert refused.code == ExitStatus.BAD_INPUT and "other keys" in refused.err
