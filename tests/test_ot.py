from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import date, timedelta

import pytest

from mcn_cli.sandbox import population
from mcn_cli.sandbox.world import PARC
from mcn_cli.status import ExitStatus
from tests.conftest import ROOT, SANDBOX_PIN

TODAY = date.today()
PEOPLE = {p.scenario: p for p in population.population(TODAY)}
DAY = (TODAY - timedelta(days=3)).isoformat()
HEADER = "rejection,pharmacy,niss,mutuality,member_number,date,rejection_code\n"


def records(mcn_home) -> int:
    with sqlite3.connect(mcn_home / "data" / "mcn.sqlite3") as c:
        return c.execute("SELECT COUNT(*) FROM records").fetchone()[0]


def ot_entries(mcn):
    from mcn_cli.actions.local import open_database
    from mcn_cli.store import audit

    with open_database() as db:
        return [e for e in audit.entries(db.connection) if e.event == "ot-consultation"]


def test_ot_consult_is_printed_audited_never_stored(mcn, office, mcn_home):
    patient = PEOPLE["annex-1"]
    result = mcn(
        "ot",
        "consult",
        "--rejection",
        "REJ-2026-0001",
        "--niss",
        patient.niss,
        "--date",
        DAY,
        "--pharmacy",
        PARC.nihii,
        "--json",
    )
    assert result.code == 0, result.err
    data = result.json()
    assert data["stored"] is False and data["outcome"] == "commitment"
    assert data["commitment"]["coverage"]["start"] == DAY
    assert records(mcn_home) == 0
    assert mcn("cache", "list", "--json").json() == []
    (entry,) = ot_entries(mcn)
    assert entry.rejection == "REJ-2026-0001" and entry.pharmacy == "64001291"
    assert len(entry.patient) == 64 and entry.actor is None
    raw = (mcn_home / "data" / "mcn.sqlite3").read_bytes()
    assert patient.niss.encode() not in raw and patient.last.encode() not in raw


def test_without_rejection_refused_nothing_sent(mcn, office):
    from mcn_cli.sandbox import runtime

    runtime.stop_in_process()
    result = mcn("ot", "consult", "--niss", PEOPLE["annex-1"].niss, "--date", DAY)
    assert result.code == ExitStatus.POLICY_REFUSED and "rejection reference" in result.err
    assert not runtime._IN_PROCESS  # no server was needed: nothing was sent


def test_policy_both_ways(mcn, sandbox, office, monkeypatch):
    patient = PEOPLE["annex-1"]
    refused = mcn("consult", "--niss", patient.niss)
    assert refused.code == ExitStatus.POLICY_REFUSED and "mcn ot consult" in refused.err
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login", "--session", "parc").code == 0
    result = mcn(
        "ot", "consult", "--session", "parc", "--rejection", "R1", "--niss", patient.niss, "--date", DAY
    )
    assert result.code == ExitStatus.POLICY_REFUSED and "NIHII-OTD_PHARMACY" in result.err


def test_sandbox_refuses_an_office_without_rejection_and_a_pharmacy_posing_as_office(
    mcn, office, monkeypatch
):
    from mcn_cli.actions.consult import ask, open_channel
    from mcn_cli.actions.local import open_cache
    from mcn_cli.domain.errors import InvalidInput
    from mcn_cli.domain.identifiers import parse_niss
    from mcn_cli.ehealth.insurability import Requester
    from mcn_cli.store import sessions
    from mcn_cli.store.settings import load

    cache = open_cache()
    ot_session = sessions.require(cache.db, cache.vault, "default")
    patient = parse_niss(PEOPLE["annex-1"].niss)
    channel = open_channel(ot_session, Requester(PARC.nihii, office=ot_session.organisation), load(), None)
    with pytest.raises(InvalidInput, match="rejection reference"):
        ask(channel, patient, TODAY, None)
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login", "--session", "parc").code == 0
    pharmacy_session = sessions.require(cache.db, cache.vault, "parc")
    posing = open_channel(pharmacy_session, Requester(PARC.nihii, office=PARC.nihii), load(), None)
    with pytest.raises(InvalidInput, match="cannot consult as a tarification office"):
        ask(posing, patient, TODAY, "R1")


def test_batch_with_a_malformed_row_and_a_fault(mcn, office, mcn_home, tmp_path):
    csv_file = tmp_path / "rejections.csv"
    lines = [
        f"REJ-1,{PARC.nihii},{PEOPLE['annex-1'].niss},,,{DAY},INS01",
        f"REJ-2,{PARC.nihii},8507300332X,,,{DAY},INS01",  # malformed NISS
        f"REJ-3,{PARC.nihii},,{PEOPLE['newborn'].mutuality},{PEOPLE['newborn'].member},{DAY},INS01",
        f"REJ-4,{PARC.nihii},{PEOPLE['fault-soap'].niss},,,{DAY},INS01",  # the insurer fails
        f"REJ-5,{PARC.nihii},{PEOPLE['no-right'].niss},,,{DAY},INS01",
        f",{PARC.nihii},{PEOPLE['annex-2'].niss},,,{DAY},INS01",  # no rejection reference
    ]
    csv_file.write_text(HEADER + "\n".join(lines) + "\n")
    out = tmp_path / "results.csv"
    result = mcn("ot", "batch", str(csv_file), "--output", str(out))
    # the worst line: the insurer's failure (5) is worse than a malformed line (2) or a refusal (6)
    assert result.code == ExitStatus.SERVICE_UNAVAILABLE
    assert "line 3:" in result.err and "line 5:" in result.err and "line 7:" in result.err
    assert result.out == ""
    import csv

    rows = list(csv.DictReader(out.open()))
    assert [r["row"] for r in rows] == ["2", "3", "4", "5", "6", "7"]
    status = {r["row"]: r["status"] for r in rows}
    assert status == {
        "2": "commitment",
        "3": "error",
        "4": "commitment",
        "5": "error",
        "6": "no-right",
        "7": "error",
    }
    exit_codes = {r["row"]: r["exit_status"] for r in rows}
    assert exit_codes["3"] == "2" and exit_codes["5"] == "5" and exit_codes["7"] == "6"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert records(mcn_home) == 0
    entries = ot_entries(mcn)
    assert sorted(e.rejection for e in entries if e.rejection) == ["REJ-1", "REJ-3", "REJ-4", "REJ-5"]
    assert any(e.outcome.startswith("refused: row 7") for e in entries)
    assert mcn("audit", "verify").code == 0


def test_batch_all_good_exit_0_and_json_lines(mcn, office, tmp_path):
    sample = mcn("sandbox", "rejections")
    assert sample.code == 0
    csv_file = tmp_path / "sample.csv"
    csv_file.write_text(sample.out)
    result = mcn("ot", "batch", str(csv_file), "--json", "--workers", "3")
    # no right and several insurers: exit 3, as mcn ot consult gives for the same line
    assert result.code == ExitStatus.NO_COMMITMENT, result.err
    assert "7 of 7 lines done" in result.err and "1 no right" in result.err
    import json

    lines = [json.loads(line) for line in result.out.splitlines()]
    assert len(lines) == 7 and all(line["status"] != "error" for line in lines)
    assert {line["status"] for line in lines} >= {"commitment", "no-right", "multiple-insurers"}


def test_batch_bad_header_and_workers(mcn, office, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    result = mcn("ot", "batch", str(bad))
    assert result.code == ExitStatus.BAD_INPUT and "first line must name the columns" in result.err
    assert mcn("ot", "batch", str(bad), "--workers", "0").code == ExitStatus.BAD_INPUT
    assert mcn("ot", "batch", str(tmp_path / "missing.csv")).code == ExitStatus.BAD_INPUT


def test_batch_from_stdin_silent_in_scripts(office, mcn_home):
    line = f"REJ-1,{PARC.nihii},{PEOPLE['annex-1'].niss},,,{DAY},INS01\n"
    result = subprocess.run(
        [sys.executable, "-m", "mcn_cli", "ot", "batch", "-"],
        input=HEADER + line,
        cwd=ROOT,
        env={**os.environ, "MCN_HOME": str(mcn_home)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and '"status": "commitment"' in result.stdout


def test_an_office_without_a_session_is_told_the_office_login(mcn, sandbox, monkeypatch, tmp_path):
    """Not the pharmacist's login (eID, holder): the office's, with its organisation keystore."""
    patient = PEOPLE["annex-1"].niss
    args = ("ot", "consult", "--rejection", "R1", "--niss", patient, "--date", DAY, "--json")
    nothing_yet = mcn(*args)  # no database at all
    assert nothing_yet.code == ExitStatus.AUTH_NEEDED
    assert nothing_yet.json()["error"]["hint"].startswith("mcn login --org NIHII-OTD_PHARMACY=")
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0  # a pharmacist's session, not the office's
    other = mcn("ot", "consult", "--session", "office", *args[2:])
    assert other.code == ExitStatus.AUTH_NEEDED
    hint = other.json()["error"]["hint"]
    assert hint.startswith("mcn login --org NIHII-OTD_PHARMACY=") and "--session office" in hint
    assert "--holder" not in hint.split("(")[0]
    csv_file = tmp_path / "rejections.csv"
    csv_file.write_text(HEADER + f"REJ-1,{PARC.nihii},{patient},,,{DAY},\n")
    batch = mcn("ot", "batch", str(csv_file), "--session", "office")
    assert batch.code == ExitStatus.AUTH_NEEDED and "mcn login --org NIHII-OTD_PHARMACY=" in batch.err
    refused = mcn(*args)  # the pharmacist's session: refused, and told how an office logs in
    assert refused.code == ExitStatus.POLICY_REFUSED
    assert refused.json()["error"]["hint"].endswith("mcn login --org NIHII-OTD_PHARMACY=<nihii>.p12")
