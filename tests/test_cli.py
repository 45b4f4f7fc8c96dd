from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from mcn_cli.cli.main import app
from mcn_cli.status import ExitStatus
from tests.test_commitment import ANNEX


def test_version(mcn):
    result = mcn("--version")
    assert result.code == 0 and result.out.startswith("mcn ")


def test_check_niss_valid_values_exit_0(mcn):
    result = mcn("check", "niss", "85073003328", "17073003384")
    assert result.code == ExitStatus.OK
    assert "85.07.30-033.28" in result.out and "1985-07-30" in result.out and "2017-07-30" in result.out


def test_check_niss_invalid_exit_2_names_check_digits(mcn):
    result = mcn("check", "niss", "85073003329")
    assert result.code == ExitStatus.BAD_INPUT == 2
    assert "check digits" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_check_niss_json_lists_every_value(mcn):
    result = mcn("check", "niss", "--json", "850000 033 06", "85073003329")
    assert result.code == 2
    first, second = result.json()
    assert first["valid"] and first["niss"] == "85000003306" and first["birth_date"] is None
    assert second == {
        "input": "85073003329",
        "valid": False,
        "field": "niss",
        "rule": "check-digits",
        "message": second["message"],
    }


def test_check_nihii_kbo_mutuality(mcn):
    assert mcn("check", "nihii", "27150201", "62599147", "27150201001").code == 0
    assert mcn("check", "nihii", "27150202").code == 2
    assert mcn("check", "kbo", "0403.019.261").code == 0
    assert mcn("check", "kbo", "0403.019.262").code == 2
    result = mcn("check", "mutuality", "--json", "306/1234567", "750")
    assert result.code == 0
    member, marine = result.json()
    assert member["member_number"] == "1234567" and member["union"] == "300"
    assert marine["union"] == "600"
    assert mcn("check", "mutuality", "812").code == 2


@pytest.mark.parametrize(("consulted", "dispensed", "periods", "coverage", "until"), ANNEX)
def test_coverage_annex_examples_json(mcn, consulted, dispensed, periods, coverage, until):
    args = ["coverage", "--date", dispensed, "--consulted", consulted, "--json"]
    for start, end in periods:
        args += ["--period", f"110/110:{start}..{end}"]
    result = mcn(*args)
    assert result.code == 0, result.err
    data = result.json()
    assert data["coverage"]["start"] == coverage[0] and data["coverage"]["end"] == coverage[1]
    assert data["reusable"] is (until is not None)
    assert data["reusable_until"] == until
    assert data["max_days"] == 30


def test_coverage_table_and_belgian_dates(mcn):
    result = mcn("coverage", "-d", "26/10/2011", "-c", "12.11.2011", "-p", "110-110:01/01/2011..31/12/2011")
    assert result.code == 0
    assert "2011-10-26 → 2011-11-25" in result.out
    assert "up to 2011-11-25" in result.out


def test_coverage_never_reusable_says_why(mcn):
    result = mcn("coverage", "-d", "2011-09-26", "-c", "2011-11-12", "-p", "110/110:2011-01-01..2011-12-31")
    assert "never: coverage ended before the consultation date" in result.out


def test_coverage_no_right_exit_3(mcn):
    result = mcn(
        "coverage", "-d", "2012-02-01", "-c", "2012-02-01", "-p", "110/110:2011-01-01..2011-12-31", "--json"
    )
    assert result.code == ExitStatus.NO_COMMITMENT == 3
    assert result.json()["error"]["kind"] == "no-commitment"
    assert "no right at 2012-02-01" in result.err


def test_commitment_days_setting_from_config(mcn, mcn_home):
    mcn_home.mkdir(parents=True)
    (mcn_home / "config.toml").write_text("commitment_days = 10\n")
    result = mcn(
        "coverage", "-d", "2011-11-12", "-c", "2011-11-12", "-p", "110/110:2011-01-01..2011-12-31", "--json"
    )
    assert result.json()["coverage"]["end"] == "2011-11-22"
    result = mcn(
        "coverage",
        "-d",
        "2011-11-12",
        "-c",
        "2011-11-12",
        "-p",
        "110/110:2011-01-01..2011-12-31",
        "--max-days",
        "5",
        "--json",
    )
    assert result.json()["coverage"]["end"] == "2011-11-17"


def test_bad_config_is_bad_input(mcn, mcn_home):
    mcn_home.mkdir(parents=True)
    (mcn_home / "config.toml").write_text("commitment_days = 'thirty'\n")
    result = mcn("coverage", "-d", "2011-11-12", "-c", "2011-11-12", "-p", "110/110:2011-01-01..2011-12-31")
    assert result.code == 2 and "commitment_days must be a int" in result.err


BAD_COVERAGE = [
    (["-d", "2011-02-30", "-p", "110/110:2011-01-01..2011-12-31"], "date"),
    (["-d", "yesterday", "-p", "110/110:2011-01-01..2011-12-31"], "date"),
    (
        ["-d", "2011-11-13", "-c", "2011-11-12", "-p", "110/110:2011-01-01..2011-12-31"],
        "after the consultation",
    ),
    (["-d", "2011-11-12", "-c", "2011-11-12", "-p", "110/110:2011-12-31..2011-01-01"], "before it starts"),
    (["-d", "2011-11-12", "-c", "2011-11-12", "-p", "110/110 2011-01-01..2011-12-31"], "CT1/CT2:START..END"),
    (["-d", "2011-11-12", "-c", "2011-11-12", "-p", "110/110:2011-01-01-2011-12-31"], "CT1/CT2:START..END"),
    (["-d", "2011-11-12", "-c", "2011-11-12", "-p", "1100/110:2011-01-01..2011-12-31"], "3-digit"),
    (["-d", "2011-11-12", "-c", "2011-11-12", "-p", "110/110:2011-01-01..2011-13-31"], "period end"),
    (["-d", "2011-11-12", "-c", "2011-11-12"], "--period"),
    (
        ["-d", "2011-11-12", "-c", "2011-11-12", "-p", "110/110:2011-01-01..2011-12-31", "--max-days", "x"],
        "max-days",
    ),
    (
        ["-d", "2011-11-12", "-c", "2011-11-12", "-p", "110/110:2011-01-01..2011-12-31", "--max-days", "-1"],
        "max-days",
    ),
]


@pytest.mark.parametrize(("args", "needle"), BAD_COVERAGE)
def test_coverage_bad_input_one_line_exit_2(mcn, args, needle):
    result = mcn("coverage", *args)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcn: error: ")
    assert needle in lines[0]


def test_fallback_with_flags(mcn):
    result = mcn("fallback", "--no-network", "--known", "--covered", "--json")
    assert result.code == 0
    data = result.json()
    assert data["outcome"] == "commitment-reuse"
    assert [(s["step"], s["question"], s["answer"]) for s in data["path"]] == [
        (2, "network", False),
        (3, "known", True),
        (4, "covered", True),
    ]
    text = mcn("fallback", "--no-network", "--no-known", "--no-confident", "--no-sis-card", "--no-document")
    assert "model 704" in text.out and "7. " in text.out


def test_fallback_missing_answer_without_terminal_is_bad_input(mcn, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    result = mcn("fallback", "--no-network", "--no-known")
    assert result.code == 2 and "--sis-card or --no-sis-card" in result.err


class Terminal(io.StringIO):
    """Answers typed on a terminal."""

    def isatty(self) -> bool:
        return True


def test_fallback_asks_missing_answers_on_a_terminal(mcn, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal("oui\n"))  # French and Dutch answers count too
    result = mcn("fallback", "--no-network", "--no-known", "--json")
    assert result.json()["outcome"] == "sis-commitment"
    assert "6. Does the patient have a SIS card?" in result.err


def test_unknown_command_and_option_are_usage_errors(mcn):
    assert mcn("frobnicate").code == 2
    result = mcn("check", "niss", "--frob", "1")
    assert result.code == 2 and "--frob" in result.err and "mcn check niss --help" in result.err


def _commands(group, path=()):
    ctx = typer.Context(group, info_name=" ".join(path) or "mcn")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*path, name), command
        if isinstance(command, TyperGroup):
            yield from _commands(command, (*path, name))


NO_RESULT = {("sandbox", "serve")}  # runs a server: prints its address, no result


def test_every_command_has_help_and_json_where_it_prints_results():
    root = typer.main.get_command(app)
    for path, command in _commands(root):
        assert command.help, f"mcn {' '.join(path)} has no help text"
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"mcn {' '.join(path)} {param.opts} has no help"
        if not isinstance(command, TyperGroup) and path not in NO_RESULT:
            assert any("--json" in p.opts for p in command.params), f"mcn {' '.join(path)} lacks --json"


def test_console_script_and_no_heavy_imports_for_check(mcn_home):
    code = (
        "import sys\n"
        "from mcn_cli.cli.main import run\n"
        "status = run(['check', 'niss', '85073003328'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'zeep', 'cryptography', 'pkcs11',"
        " 'lxml', 'platformdirs', 'sqlite3'})\n"
        "print(status, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("0 []")


def test_installed_console_script_runs():
    script = shutil.which("mcn", path=str(Path(sys.executable).parent)) or shutil.which("mcn")
    assert script, "the mcn console script is not installed"
    result = subprocess.run([script, "check", "niss", "85073003329"], capture_output=True, text=True)
    assert result.returncode == 2 and "check digits" in result.stderr and "Traceback" not in result.stderr


MY_COMMANDS = (
    ("consult",), ("reuse",), ("fallback",), ("coverage",), ("check", "niss"), ("check", "mutuality"),
    ("billing", "invoice"), ("audit", "report"), ("audit", "verify"), ("demo",),
)


@pytest.mark.parametrize("command", MY_COMMANDS)
def test_help_shows_no_bracketed_default(mcn, command):
    result = mcn(*command, "--help")
    assert result.code == 0 and "[default:" not in result.out


def test_human_dates_in_french_json_in_iso(mcn):
    result = mcn("--lang", "fr", "coverage", "--date", "2011-12-25", "--consulted", "2011-12-25",
                 "--period", "110/110:2011-01-01..2011-12-31", "--period", "110/110:2012-01-01..2012-12-31")
    assert result.code == 0 and "25/12/2011" in result.out and "2011-12-25" not in result.out
    flags = ("--no-network", "--no-known", "--no-sis-card", "--no-document")
    assert "True" not in mcn("--lang", "fr", "fallback", *flags).out
    data = mcn("--lang", "fr", "coverage", "--date", "2011-12-25", "--consulted", "2011-12-25",
               "--period", "110/110:2011-01-01..2011-12-31", "--json").json()
    assert data["dispensed"] == "2011-12-25"  # JSON stays ISO
