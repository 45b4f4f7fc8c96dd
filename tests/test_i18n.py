"""French, Dutch and English: the catalogues are complete and current, the language is chosen as
documented, human output has no English left in French or Dutch, machine output never changes."""

from __future__ import annotations

import difflib
import re
import string
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from mcn_cli.cli import i18n
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.status import ExitStatus
from tests.conftest import ROOT, SANDBOX_PIN

babel = pytest.importorskip("babel", reason="Babel builds the catalogues (pip install -e '.[test]')")
sys.path.insert(0, str(ROOT / "scripts"))
import catalogues  # noqa: E402

LANGS = ("fr", "nl")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.fixture(scope="module")
def template():
    return catalogues.collect()


@pytest.fixture(scope="module", params=LANGS)
def catalogue(request):
    return request.param, catalogues.read(request.param)


@pytest.fixture(autouse=True)
def english_after():
    yield
    i18n.use("en")


def test_every_message_is_translated_and_keeps_its_placeholders(template, catalogue):
    lang, translated = catalogue
    missing, fuzzy, broken = [], [], []
    for message in template:
        if not message.id:
            continue
        found = translated.get(message.id)
        if found is None or not (found.string if isinstance(found.string, str) else all(found.string)):
            missing.append(message.id)
            continue
        if found.fuzzy:
            fuzzy.append(message.id)
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = found.string if isinstance(found.string, tuple) else (found.string,)
        wanted = set().union(*(placeholders(i) for i in ids))
        for text in strings:
            if "{" in ids[0] or "{" in text:
                if placeholders(text) - wanted or (placeholders(text) != wanted and len(ids) == 1):
                    broken.append(f"{message.id!r} -> {text!r}")
    assert not missing, f"{lang}: {len(missing)} untranslated, e.g. {missing[:5]}"
    assert not fuzzy, f"{lang}: fuzzy entries {fuzzy[:5]}"
    assert not broken, f"{lang}: placeholders differ: {broken[:5]}"


def test_catalogues_are_current():
    stale = catalogues.stale()
    assert not stale, f"run python3 scripts/catalogues.py: not current {stale}"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "fr_BE.UTF-8"}, "fr"),
        ({"LANG": "nl_BE.UTF-8"}, "nl"),
        ({"LC_ALL": "nl_BE.UTF-8", "LANG": "fr_BE.UTF-8"}, "nl"),
        ({"LANGUAGE": "de:nl", "LANG": "fr_BE.UTF-8"}, "nl"),
        ({"LANG": "de_BE.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
        ({"MCN_LANG": "nl", "LANG": "fr_BE.UTF-8"}, "nl"),
    ],
)
def test_language_from_the_environment(environ, expected):
    assert i18n.choose([], environ) == expected


def test_lang_option_wins_and_config_comes_before_the_locale(mcn_home):
    assert i18n.choose(["check", "--lang", "nl"], {"MCN_LANG": "fr"}) == "nl"
    assert i18n.choose(["--lang=fr", "check"], {"MCN_LANG": "nl"}) == "fr"
    assert i18n.choose(["--", "--lang", "fr"], {}) == "en"
    mcn_home.mkdir(parents=True, exist_ok=True)
    (mcn_home / "config.toml").write_text('lang = "nl"\n', encoding="utf-8")
    assert i18n.choose([], {"LANG": "fr_BE.UTF-8"}) == "nl"
    assert i18n.choose([], {"MCN_LANG": "fr"}) == "fr"


def test_an_unknown_language_is_refused_by_name():
    with pytest.raises(InvalidInput) as refused:
        i18n.choose(["--lang", "de"], {})
    assert refused.value.field == "lang"
    with pytest.raises(InvalidInput) as refused:
        i18n.choose([], {"MCN_LANG": "xx"})
    assert refused.value.field == "MCN_LANG"


def test_a_bad_lang_is_exit_2_before_anything(mcn, monkeypatch):
    result = mcn("--lang", "de", "check", "niss", "85073003328")
    assert result.code == ExitStatus.BAD_INPUT and "lang" in result.err and result.out == ""


@pytest.mark.parametrize("word", ["y", "yes", "o", "oui", "j", "ja", "Oui", " JA "])
def test_yes_in_three_languages(word):
    assert i18n.answer(word) is True


@pytest.mark.parametrize("word", ["n", "no", "non", "nee", "neen"])
def test_no_in_three_languages(word):
    assert i18n.answer(word) is False


def test_confirm_asks_again_until_it_understands(monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("peut-être\noui\n"))
    i18n.use("fr")
    assert i18n.confirm("Révoquer ?") is True
    assert "oui ou non" in capsys.readouterr().err.lower()


def test_dates_and_times_as_people_write_them():
    i18n.use("fr")
    assert i18n.day(date(2026, 11, 28)) == "28/11/2026"
    assert i18n.render("{when}", {"when": date(2026, 1, 2)}) == "02/01/2026"
    i18n.use("nl")
    assert i18n.day(date(2026, 11, 28)) == "28/11/2026"
    assert i18n.moment(datetime(2026, 11, 28, 13, 5).astimezone()).startswith("28/11/2026 13:05")
    i18n.use("en")
    assert i18n.day(date(2026, 11, 28)) == "2026-11-28"


# --- whole flows: no English left, machine output identical ----------------------------------


def english_fragments(lang: str) -> list[str]:
    """Pieces of English messages (between placeholders, 14 characters or more) whose translation
    differs: none of them may appear in French or Dutch output."""
    translated = catalogues.read(lang)
    pieces: set[str] = set()
    for message in translated:
        if not message.id or isinstance(message.id, tuple) or message.string == message.id:
            continue
        for literal, *_ in string.Formatter().parse(message.id):
            for piece in re.split(r"[\n:;()\"']", literal):
                piece = piece.strip(" .,")
                if len(piece) >= 14 and " " in piece and piece not in message.string:
                    pieces.add(piece)
    return sorted(pieces)


def english_left(lang: str, text: str) -> list[str]:
    return [piece for piece in english_fragments(lang) if piece in text]


def run_flow(mcn, lang: str, monkeypatch) -> tuple[str, list[str]]:
    """A day at the counter in one language: human output (for the check) and JSON documents."""
    from mcn_cli.sandbox import population

    monkeypatch.setenv("MCN_LANG", lang)
    human, machine = [], []

    def both(*args: str, human_only: bool = False) -> None:
        result = mcn(*args)
        human.append(result.out + result.err)
        if not human_only:
            machine.append(mcn(*args, "--json").out)

    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    both("session", "list")
    today = date.today()
    for patient in population.population(today):  # every sandbox situation, faults included
        if patient.fault == "timeout":
            continue  # the same words as a failing MyCareNet, after a long wait
        who = (
            ["--niss", patient.niss]
            if patient.niss
            else ["--mutuality", patient.mutuality, "--member-number", patient.member]
        )
        day = (today + timedelta(days=patient.try_date)).isoformat()
        result = mcn("consult", *who, "--date", day)
        human.append(result.out + result.err)
        result = mcn("reuse", *who, "--date", day)
        human.append(result.out + result.err)
        result = mcn(
            "fallback",
            "--no-network",
            *who,
            "--date",
            day,
            "--no-sis-card",
            "--document",
            "--document-confident",
        )
        human.append(result.out + result.err)
    for answers in (
        ["--network"],
        ["--no-network", "--no-known", "--sis-card"],
        ["--no-network", "--known", "--no-covered", "--confident"],
        ["--no-network", "--no-known", "--no-sis-card", "--no-document"],
    ):
        both("fallback", *answers)
    both("cache", "list")
    both("check", "niss", "85073003328", "85073003329")
    both(
        "coverage",
        "--date",
        "2026-11-28",
        "--consulted",
        "2026-11-28",
        "--period",
        "110/110:2026-01-01..2026-12-31",
    )
    both("audit", "verify")
    both("billing", "invoice", "--month", today.strftime("%Y-%m"))
    both("audit", "report", "--month", today.strftime("%Y-%m"))
    both("cache", "stats")
    both("sandbox", "patients")
    both("cert", "list")
    human.append(mcn("consult").err)
    human.append(mcn("consult", "--nis", "1").err)
    human.append(mcn("check", "niss", "85073003329").err)
    human.append(mcn("logout").err)
    human.append(mcn("consult", "--niss", "85073003328").err)  # no session any more
    human.extend(help_pages(mcn))
    return "\n".join(human), machine


def help_pages(mcn) -> list[str]:
    """``--help`` of every command and subcommand."""
    from mcn_cli.cli.main import COMMANDS, load_command

    pages = [mcn("--help").out]
    for name in COMMANDS:
        pages.append(mcn(name, "--help").out)
        for sub in getattr(load_command(name), "commands", {}):
            pages.append(mcn(name, sub, "--help").out)
    return pages


@pytest.mark.parametrize("lang", LANGS)
def test_a_day_at_the_counter_has_no_english_left(mcn, sandbox, monkeypatch, lang):
    human, _ = run_flow(mcn, lang, monkeypatch)
    left = english_left(lang, human)
    assert not left, f"{lang}: English left in the output: {left[:8]}"


def test_machine_output_is_the_same_in_every_language(mcn, sandbox, monkeypatch, tmp_path):
    documents = {}
    for lang in ("en", "fr", "nl"):
        home = tmp_path / lang
        monkeypatch.setenv("MCN_HOME", str(home))
        import shutil

        shutil.copytree(sandbox.root, home / "data" / "sandbox")
        _, documents[lang] = run_flow(mcn, lang, monkeypatch)

    def stable(text: str) -> str:  # times, record ids and tokens differ from run to run
        text = re.sub(r"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)?", "<time>", text)
        text = re.sub(r"/(en|fr|nl)/data/", "/<home>/data/", text)  # each language its own home
        return re.sub(
            r'"(\w*(id|seconds|left|hash|mac|chain|key|token|pharmacy|approval|seed|ot_check|reference|head|patient|record|actor|bytes)'
            r'\w*)": ("[^"]*"|\d+)',
            r'"\1": _',
            text,
        )

    for lang in ("fr", "nl"):
        for mine, english in zip(documents[lang], documents["en"], strict=True):
            assert stable(mine) == stable(english), "\n".join(
                difflib.unified_diff(stable(english).splitlines(), stable(mine).splitlines(), lineterm="")
            )


def test_check_niss_starts_without_loading_more_than_its_catalogue():
    import subprocess

    code = (
        "import sys; from mcn_cli.cli.main import run; run(['check', 'niss', '85073003328']);"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('babel', 'rich', 'cryptography', 'lxml')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"MCN_LANG": "fr", "PATH": "/usr/bin:/bin", "MCN_HOME": str(Path("/nonexistent"))},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("[]"), result.stdout


@pytest.mark.parametrize(
    ("lang", "word"), [("fr", "chiffré"), ("nl", "versleutelde"), ("en", "encrypted")]
)
def test_completion_describes_commands_in_the_users_language(lang, word):
    """The completion scripts are the same in every language: what zsh and fish show beside a
    command comes from mcn at each Tab, in the user's language."""
    import os
    import shutil
    import subprocess

    script = shutil.which("mcn", path=str(Path(sys.executable).parent)) or shutil.which("mcn")
    env = {**os.environ, "_MCN_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "mcn ca", "MCN_LANG": lang}
    result = subprocess.run([script], capture_output=True, text=True, env=env, timeout=30)
    assert '"cache"' in result.stdout and word in result.stdout, result.stdout + result.stderr
    assert result.stdout.count("\n") == 1, result.stdout  # one line: a description is never wrapped
