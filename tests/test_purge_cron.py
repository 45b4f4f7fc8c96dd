"""`mcn cache purge` from cron: a data folder without a database is an error, never created."""

from __future__ import annotations

from pathlib import Path

from mcn_cli.status import DESCRIPTIONS, ExitStatus


def everything_under(path: Path) -> set[Path]:
    return set(path.rglob("*")) if path.exists() else set()


def test_a_mistyped_home_is_exit_8_and_creates_nothing(mcn, mcn_home, tmp_path, monkeypatch):
    mistyped = tmp_path / "mcn-hmoe"
    monkeypatch.setenv("MCN_HOME", str(mistyped))
    result = mcn("cache", "purge")
    assert result.code == ExitStatus.NO_DATABASE == 8
    assert "no database at" in result.err and str(mistyped) in result.err and "MCN_HOME" in result.err
    assert "--if-exists" in result.err  # the hint for a fresh install
    assert not mistyped.exists()
    as_json = mcn("cache", "purge", "--json")
    assert as_json.code == 8 and as_json.json()["error"]["status"] == 8
    assert not mistyped.exists()
    assert "MCN_HOME" in DESCRIPTIONS[ExitStatus.NO_DATABASE]


def test_an_existing_empty_data_folder_is_not_given_a_database(mcn, mcn_home):
    (mcn_home / "data").mkdir(parents=True)
    before = everything_under(mcn_home)
    assert mcn("cache", "purge").code == ExitStatus.NO_DATABASE
    assert everything_under(mcn_home) == before


def test_if_exists_keeps_a_fresh_install_quiet_and_creates_nothing(mcn, mcn_home):
    result = mcn("cache", "purge", "--if-exists")
    assert (result.code, result.out, result.err) == (0, "", "")
    assert not mcn_home.exists()
    counts = mcn("cache", "purge", "--if-exists", "--json")
    assert counts.code == 0 and counts.json()["purged"] == 0
    assert not mcn_home.exists()


def test_with_a_database_purge_runs_as_before_with_or_without_the_option(mcn, mcn_home):
    from mcn_cli.store.db import Database, database_file

    Database().close()
    assert database_file().is_file()
    for args in (("cache", "purge"), ("cache", "purge", "--if-exists")):
        result = mcn(*args)
        assert (result.code, result.out, result.err) == (0, "", "")
    assert mcn("cache", "purge", "--json").json() == {
        "purged": 0,
        "settled": 0,
        "expired": 0,
        "uninvoiced": 0,
        "sessions": 0,
    }
