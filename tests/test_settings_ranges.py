"""Every setting has a documented range, checked when config.toml is read (exit 2 naming it)."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from datetime import date, timedelta
from pathlib import Path

import pytest

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.status import ExitStatus
from mcn_cli.store import settings as settings_module
from mcn_cli.store.settings import RANGES, Between, Settings, load

INT_EDGES = [(name, rule) for name, rule in RANGES.items() if isinstance(rule, Between)]


def write(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def files_under(home: Path) -> set[Path]:
    return {p for p in home.rglob("*")}


def test_every_setting_has_a_range_and_its_comment_states_it():
    assert set(RANGES) == {f.name for f in fields(Settings)}
    source = inspect.getsource(Settings)
    for name, rule in INT_EDGES:
        comment = source[: source.index(f"    {name}:")].rsplit("\n\n", 1)[-1]
        assert f"{rule.low}..{rule.high}" in comment, f"{name}: its comment does not state its range"
    settings_module.check_ranges(Settings())  # the defaults are inside


@pytest.mark.parametrize(("name", "rule"), INT_EDGES, ids=[n for n, _ in INT_EDGES])
def test_each_whole_number_setting_at_its_edges_and_past_them(mcn_home, name, rule):
    others = {"burst_patients": "burst_minutes = 1440\n"} if name == "burst_patients" else {}
    extra = others.get(name, "")
    for edge in (rule.low, rule.high):
        if name == "burst_minutes" and edge == rule.low:
            extra = "burst_patients = 1\n"
        assert getattr(load(write(mcn_home, f"{name} = {edge}\n{extra}")), name) == edge
    for past in (rule.low - 1, rule.high + 1):
        with pytest.raises(InvalidInput) as raised:
            load(write(mcn_home, f"{name} = {past}\n{extra}"))
        assert raised.value.field == name and raised.value.rule == "range"
        assert name in str(raised.value) and f"{rule.low}..{rule.high}" in str(raised.value)


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("cache_retention_months = 0", "cache_retention_months"),
        ("cache_retention_months = 23", "cache_retention_months"),
        ("uninvoiced_grace_days = -100000", "uninvoiced_grace_days"),
        ("uninvoiced_grace_days = 0", "uninvoiced_grace_days"),
        ("burst_patients = -1", "burst_patients"),
        ("burst_minutes = 0", "burst_minutes"),
        ("burst_patients = 200\nburst_minutes = 10", "burst_patients"),  # 20 a minute: off in effect
        ("timeout_seconds = 0", "timeout_seconds"),
        ("max_answer_bytes = 0", "max_answer_bytes"),
        ("commitment_days = -1", "commitment_days"),
        ('env = "production"', "env"),
        ('sts_protocol = "legacy"', "sts_protocol"),
        ('sts_url = "http://sts.example"', "sts_url"),
        ('insurability_url = "ftp://x"', "insurability_url"),
        ('pharmacy_holder = "12345678901"', "pharmacy_holder"),
        ('contact_email = "support"', "contact_email"),
        ('package_name = ""', "package_name"),
        ('trace_dir = "traces\\u0000x"', "trace_dir"),
        ('keystore_dir = "a\\nb"', "keystore_dir"),
        ('sts_signer = "CN=x\\u001b[2J"', "sts_signer"),
    ],
)
def test_the_command_line_stops_with_exit_2_naming_the_setting_and_writes_nothing(mcn, mcn_home, line, name):
    write(mcn_home, line + "\n")
    before = files_under(mcn_home)
    for args in (("cache", "purge"), ("cache", "purge", "--if-exists"), ("cert", "list")):
        result = mcn(*args)
        assert result.code == ExitStatus.BAD_INPUT, (args, result.err)
        assert name in result.err and "must be" in result.err
    assert files_under(mcn_home) == before


def test_the_licence_password_is_never_repeated(mcn_home):
    with pytest.raises(InvalidInput) as raised:
        load(write(mcn_home, 'license_password = "s3cret\\u0007"\n'))
    assert raised.value.field == "license_password" and "s3cret" not in str(raised.value)


def test_values_inside_are_accepted(mcn_home):
    loaded = load(
        write(
            mcn_home,
            "\n".join(
                [
                    'env = "acc"',
                    'sts_protocol = "saml"',
                    'sts_url = "https://127.0.0.1:8443/sts"',
                    'contact_email = "support@vendor.be"',
                    'trace_dir = "~/mcn traces"',
                    "burst_patients = 100",
                    "burst_minutes = 10",
                ]
            )
            + "\n",
        )
    )
    assert loaded.env == "acc" and loaded.burst_patients == 100


def _open_record(db, record_id: str, dispensed: date, coverage_end: date) -> None:
    with db.write() as c:
        c.execute(
            "INSERT INTO records (id, consulted_at, dispensed, coverage_start, coverage_end, pharmacy, state,"
            " payload) VALUES (?, ?, ?, ?, ?, '12345678', 'open', x'00')",
            (
                record_id,
                dispensed.isoformat(),
                dispensed.isoformat(),
                dispensed.isoformat(),
                coverage_end.isoformat(),
            ),
        )


@pytest.mark.parametrize(
    "retention", [RANGES["cache_retention_months"].low, RANGES["cache_retention_months"].high]
)
@pytest.mark.parametrize("grace", [RANGES["uninvoiced_grace_days"].low, RANGES["uninvoiced_grace_days"].high])
@pytest.mark.parametrize("days", [RANGES["commitment_days"].low, RANGES["commitment_days"].high])
def test_no_setting_in_range_lets_purge_delete_an_open_record_before_coverage_end_plus_grace(
    tmp_path, retention, grace, days
):
    """The longest coverage (dispensing + commitment_days) plus the grace stays inside the
    shortest retention: purge on the last day of the grace keeps the record, the day after not."""
    from mcn_cli.store.cache import purge
    from mcn_cli.store.db import Database

    for dispensed in (date(2024, 1, 31), date(2024, 2, 29), date(2023, 12, 1), date(2024, 7, 15)):
        end = dispensed + timedelta(days=days)
        with Database(tmp_path / f"{dispensed}-{retention}-{grace}-{days}.sqlite3") as db:
            _open_record(db, "r1", dispensed, end)
            assert purge(db, end + timedelta(days=grace), retention, grace).total == 0
            assert purge(db, end + timedelta(days=grace + 1), retention, grace).uninvoiced == 1


def test_the_ranges_are_stated_in_the_error_as_documented(mcn_home):
    with pytest.raises(InvalidInput) as raised:
        load(write(mcn_home, "cache_retention_months = 0\n"))
    assert re.search(r"cache_retention_months must be 24\.\.60 months, got 0", str(raised.value))
