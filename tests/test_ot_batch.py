"""`mcn ot batch` with the files and accidents of real offices: Excel exports, Ctrl-C, resume,
a malformed line, a service that keeps failing."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest

from mcn_cli.sandbox import population
from mcn_cli.sandbox.world import PARC
from mcn_cli.status import ExitStatus
from tests.conftest import ROOT

TODAY = date.today()
PEOPLE = {p.scenario: p for p in population.population(TODAY)}
HEALTHY = [p for p in population.population(TODAY) if p.fault is None and p.niss]
DAY = (TODAY - timedelta(days=3)).isoformat()
HEADER = "rejection,pharmacy,niss,mutuality,member_number,date,rejection_code\n"


def ot_entries():
    from mcn_cli.actions.local import open_database
    from mcn_cli.store import audit

    with open_database() as db:
        return [e for e in audit.entries(db.connection) if e.event == "ot-consultation"]


def rows_file(tmp_path, count: int, name: str = "rejections.csv"):
    lines = [f"REJ-{i:05d},{PARC.nihii},{HEALTHY[i % len(HEALTHY)].niss},,,{DAY},INS01" for i in range(count)]
    path = tmp_path / name
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def test_an_excel_export_runs(mcn, office, tmp_path):
    """';', BOM, capitalised French headers, accents, blank rows, an office's own columns."""
    annex, newborn = PEOPLE["annex-1"], PEOPLE["newborn"]
    day = (TODAY - timedelta(days=3)).strftime("%d/%m/%Y")
    text = (
        "\ufeffRéférence;Pharmacie;NISS;Mutualité;Numéro d'inscription;Date de délivrance;Code de rejet;"
        "Dossier interne;Remarque\r\n"
        f"REJ-1;{PARC.nihii};{annex.niss};;;{day};INS01;D-001;à revoir\r\n"
        f"REJ-2;{PARC.nihii};;{newborn.mutuality};{newborn.member};{day};INS02;D-002;=SUM(A1)\r\n"
        ";;;;;;;;\r\n;;;;;;;;\r\n"
    )
    source = tmp_path / "export.csv"
    source.write_bytes(text.encode("utf-8"))
    out = tmp_path / "results.csv"
    result = mcn("ot", "batch", str(source), "--output", str(out), "--excel")
    assert result.code == 0, result.err
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert [r["row"] for r in rows] == ["2", "3"]
    assert [r["status"] for r in rows] == ["commitment", "commitment"]
    assert rows[0]["Dossier interne"] == "D-001" and rows[0]["Remarque"] == "à revoir"
    assert rows[1]["Remarque"] == "'=SUM(A1)"  # carried, but never a formula
    assert len(ot_entries()) == 2

    # the same file as Windows-1252 (Excel's "CSV (séparateur: point-virgule)"), Dutch headers, tabs
    dutch = (
        "Referentie\tApotheek\tINSZ\tZiekenfonds\tInschrijvingsnummer\tDatum\tWeigeringscode\tDossier\r\n"
        f"REJ-3\t{PARC.nihii}\t{annex.niss}\t\t\t{day}\tINS01\tDossier é\r\n"
        "\t\t\t\t\t\t\t\r\n"
    )
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes(dutch.encode("cp1252"))
    jsonl = tmp_path / "results.JSONL"
    result = mcn("ot", "batch", str(legacy), "--output", str(jsonl))
    assert result.code == 0, result.err
    (line,) = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert line["Dossier"] == "Dossier é" and line["status"] == "commitment" and line["row"] == 2


def test_an_unreadable_encoding_is_named(mcn, office, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(HEADER.encode() + b"REJ-1,\x81\x8d\xff,,,,\n")
    result = mcn("ot", "batch", str(bad))
    assert result.code == ExitStatus.BAD_INPUT
    assert "UTF-8" in result.err and "Windows-1252" in result.err
    assert ot_entries() == []


def test_the_format_follows_format_then_the_extension(mcn, office, tmp_path):
    source = rows_file(tmp_path, 2)
    upper = tmp_path / "results.CSV"
    assert mcn("ot", "batch", str(source), "--output", str(upper)).code == 0
    assert upper.read_text().startswith("row,rejection,")
    with_json = tmp_path / "x.csv"
    assert mcn("ot", "batch", str(source), "--json", "--output", str(with_json)).code == 0
    assert with_json.read_text().startswith("row,rejection,")
    forced = tmp_path / "y.csv"
    assert mcn("ot", "batch", str(source), "--format", "JSONL", "--output", str(forced)).code == 0
    assert json.loads(forced.read_text().splitlines()[0])["row"] == 2
    assert mcn("ot", "batch", str(source), "--format", "xlsx").code == ExitStatus.BAD_INPUT


def test_a_malformed_line_fails_alone(mcn, office, tmp_path):
    niss = PEOPLE["annex-1"].niss
    source = tmp_path / "rejections.csv"
    source.write_text(
        HEADER
        + f"REJ-1,{PARC.nihii},{niss},,,{DAY},INS01\n"
        + f'"REJ\x07-2",{PARC.nihii},{niss},,,{DAY},INS01\n'
        + f"REJ-3,{PARC.nihii},{niss},,,not a date,INS01\n"
        + f"REJ-4,{PARC.nihii},{niss},,,{DAY},INS01\n"
    )
    out = tmp_path / "results.jsonl"
    result = mcn("ot", "batch", str(source), "--output", str(out))
    assert result.code == ExitStatus.BAD_INPUT
    assert "line 3: rejection: must not contain control characters" in result.err
    assert "line 4: date" in result.err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["row"], x["status"]) for x in lines] == [
        (2, "commitment"),
        (3, "error"),
        (4, "error"),
        (5, "commitment"),
    ]
    assert sorted(e.rejection for e in ot_entries()) == ["REJ-1", "REJ-4"]


def test_consecutive_service_failures_stop_the_batch(mcn, office, tmp_path):
    source = rows_file(tmp_path, 30)
    out = tmp_path / "results.jsonl"
    assert mcn("sandbox", "fault", "http-500").code == 0
    result = mcn("ot", "batch", str(source), "--output", str(out), "--workers", "1", "--max-failures", "3")
    assert result.code == ExitStatus.SERVICE_UNAVAILABLE
    assert "stopped after 3 service failures in a row" in result.err and "resume with" in result.err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 3 and {x["exit_status"] for x in lines} == {5}
    assert len(ot_entries()) == 3  # each failed request is audited, the other 27 never left
    assert mcn("sandbox", "fault", "none").code == 0
    again = mcn("ot", "batch", str(source), "--output", str(out), "--resume")
    assert again.code == ExitStatus.NO_COMMITMENT, again.err  # some of the people have no right
    assert "30 of 30 lines done" in again.err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {x["row"] for x in lines if x["status"] != "error"} == set(range(2, 32))
    assert len(ot_entries()) == 33  # the 3 failed lines were sent again, nothing else twice


@pytest.fixture
def server(office, mcn_home):
    """`mcn sandbox serve` in its own process, each answer slowed down to 0.25 s."""
    env = {**os.environ, "MCN_HOME": str(mcn_home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mcn_cli", "sandbox", "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "sandbox serving on" in process.stdout.readline()
        yield env
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_batch_which_resumes(mcn, server, tmp_path, signum):
    count = 200
    source = rows_file(tmp_path, count)
    out = tmp_path / "results.csv"
    assert mcn("sandbox", "fault", "slow", "--seconds", "0.25").code == 0
    command = [sys.executable, "-m", "mcn_cli", "ot", "batch", str(source), "--output", str(out)]
    batch = subprocess.Popen(command, cwd=ROOT, env=server, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and len(out.read_text().splitlines()) > 8:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the batch wrote nothing")
        sent_at = time.monotonic()
        batch.send_signal(signum)
        err = batch.communicate(timeout=15)[1]
        took = time.monotonic() - sent_at
    finally:
        if batch.poll() is None:
            batch.kill()
    assert batch.returncode == ExitStatus.INTERRUPTED, err
    assert took < 3, took
    rows = list(csv.DictReader(out.open()))
    assert 8 <= len(rows) < count
    assert f"{len(rows)} of {count} lines done" in err and "resume with" in err and "--resume" in err
    assert [int(r["row"]) for r in rows] == list(range(2, 2 + len(rows)))  # in order, no gap
    assert len(ot_entries()) == len(rows)  # every request that left is audited, and written
    assert mcn("sandbox", "fault", "none").code == 0

    resumed = subprocess.run(
        [*command, "--resume"], cwd=ROOT, env=server, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode in (0, ExitStatus.NO_COMMITMENT), resumed.stderr
    rows = list(csv.DictReader(out.open()))
    assert sorted(int(r["row"]) for r in rows) == list(range(2, 2 + count))
    assert len(ot_entries()) == count  # nothing answered was sent again
    assert mcn("audit", "verify").code == 0


def test_a_resume_refuses_the_output_of_another_file(mcn, office, tmp_path):
    out = tmp_path / "results.jsonl"
    assert mcn("ot", "batch", str(rows_file(tmp_path, 2)), "--output", str(out)).code == 0
    other = tmp_path / "other.csv"
    other.write_text(HEADER + f"OTHER-1,{PARC.nihii},{HEALTHY[0].niss},,,{DAY},INS01\n")
    result = mcn("ot", "batch", str(other), "--output", str(out))
    assert result.code == ExitStatus.BAD_INPUT and "another file" in result.err
    assert mcn("ot", "batch", str(other), "--resume").code == ExitStatus.BAD_INPUT  # no --output


def test_a_line_cut_by_a_kill_is_written_again(mcn, office, tmp_path):
    source = rows_file(tmp_path, 3)
    out = tmp_path / "results.csv"
    assert mcn("ot", "batch", str(source), "--output", str(out)).code == 0
    text = out.read_text()
    out.write_text(text[: text.rindex("REJ-00002") + 4])  # the last line cut short
    assert mcn("ot", "batch", str(source), "--output", str(out)).code == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["row"] for r in rows] == ["2", "3", "4"] and rows[-1]["status"] == "commitment"


def test_a_trace_folder_that_cannot_be_written_is_audited_and_stops(mcn, office, mcn_home, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    (mcn_home / "config.toml").write_text(f'trace_dir = "{blocker}"\n')
    source = rows_file(tmp_path, 10)
    out = tmp_path / "results.jsonl"
    result = mcn("ot", "batch", str(source), "--output", str(out), "--workers", "1", "--max-failures", "2")
    assert result.code == ExitStatus.ERROR, result.err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 2 and all("internal error" in x["error"] for x in lines)
    entries = ot_entries()
    assert len(entries) == 2 and all(e.outcome.startswith("failed: internal error") for e in entries)


def test_requests_in_flight_are_audited_when_writing_fails(mcn, office, tmp_path, monkeypatch):
    import threading

    from mcn_cli.actions import ot
    from mcn_cli.actions.batch_input import open_source

    sent = []
    lock = threading.Lock()
    real_ask = ot.ask

    def counting_ask(*args, **kwargs):
        with lock:
            sent.append(args[3])
        return real_ask(*args, **kwargs)

    monkeypatch.setattr(ot, "ask", counting_ask)
    source = open_source(str(rows_file(tmp_path, 40)))
    written = []

    def emit(result):
        written.append(result)
        if len(written) == 3:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        ot.batch(source.rows(), emit, workers=4)
    assert len(sent) < 40  # it stopped sending
    assert sorted(e.rejection for e in ot_entries()) == sorted(sent)  # every request that left
