from __future__ import annotations

import sys

from mcn_cli.actions.local import open_cache, open_database
from mcn_cli.status import ExitStatus
from mcn_cli.store import audit
from tests.factories import OTHER_NISS, PATIENT_NISS, consultation


def test_reuse_latest_commitment_covering_the_date(mcn):
    cache = open_cache()
    cache.store(consultation(consulted="2011-11-01"))
    latest = cache.store(consultation(consulted="2011-11-12", ct=("111", "111")))
    result = mcn("reuse", "--niss", PATIENT_NISS, "--date", "2011-11-20", "--json")
    assert result.code == 0
    data = result.json()
    assert (
        data["reusable"] and data["record"]["id"] == latest and data["record"]["commitment"]["ct1"] == "111"
    )
    text = mcn("reuse", "--niss", "85.07.30-033.28", "--date", "20/11/2011")
    assert text.out.startswith("Reuse allowed: ") and "111/111" in text.out
    older = mcn(
        "reuse", "--mutuality", "306", "--member-number", "9876543210", "--date", "2011-11-05", "--json"
    )
    assert older.code == 0 and older.json()["record"]["commitment"]["ct1"] == "110"


def test_never_reusable_commitment_is_refused_with_reason(mcn):
    open_cache().store(
        consultation(consulted="2011-11-12", dispensed="2011-10-26", periods=(("2011-01-01", "2011-10-30"),))
    )
    result = mcn("reuse", "--niss", PATIENT_NISS, "--date", "2011-10-28", "--json")
    assert result.code == ExitStatus.NO_COMMITMENT
    assert result.json()["reason"] == "coverage ended before the consultation date"
    assert "mcn fallback" in result.err


def test_after_coverage_and_unknown_patient(mcn):
    open_cache().store(consultation())
    after = mcn("reuse", "--niss", PATIENT_NISS, "--date", "2011-12-13")
    assert after.code == ExitStatus.NO_COMMITMENT and "after the coverage end" in after.err
    unknown = mcn("reuse", "--niss", OTHER_NISS, "--date", "2011-11-13", "--json")
    assert unknown.code == ExitStatus.NO_COMMITMENT
    assert unknown.json()["known"] is False


def test_reuse_on_a_fresh_machine_creates_nothing(mcn, mcn_home):
    result = mcn("reuse", "--niss", PATIENT_NISS, "--date", "2011-11-13")
    assert result.code == ExitStatus.NO_COMMITMENT
    assert "no payment commitment known" in result.err


def test_reuse_is_audited(mcn):
    open_cache().store(consultation())
    mcn("reuse", "--niss", PATIENT_NISS, "--date", "2011-11-20")
    with open_database() as db:
        last = list(audit.entries(db.connection))[-1]
    assert last.event == "reuse" and last.outcome == "reused" and last.dispensed == "2011-11-20"


def test_reuse_bad_input(mcn):
    assert mcn("reuse", "--date", "2011-11-20").code == 2
    assert mcn("reuse", "--niss", PATIENT_NISS, "--mutuality", "306", "--date", "2011-11-20").code == 2
    assert mcn("reuse", "--mutuality", "306", "--date", "2011-11-20").code == 2
    assert mcn("reuse", "--niss", "85073003329", "--date", "2011-11-20").code == 2


def test_fallback_answers_steps_3_and_4_from_the_cache(mcn, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    open_cache().store(consultation())
    covered = mcn("fallback", "--no-network", "--niss", PATIENT_NISS, "--date", "2011-11-20", "--json")
    assert covered.json()["outcome"] == "commitment-reuse"
    assert covered.json()["reuse"]["reusable"] is True
    too_late = mcn(
        "fallback", "--no-network", "--niss", PATIENT_NISS, "--date", "2011-12-20", "--confident", "--json"
    )
    data = too_late.json()
    assert data["outcome"] == "basic-principle"
    assert [(s["question"], s["answer"]) for s in data["path"]][:3] == [
        ("network", False),
        ("known", True),
        ("covered", False),
    ]
    unknown = mcn(
        "fallback",
        "--no-network",
        "--niss",
        OTHER_NISS,
        "--date",
        "2011-11-20",
        "--no-confident",
        "--sis-card",
        "--json",
    )
    assert unknown.json()["outcome"] == "sis-commitment"
    assert mcn("fallback", "--no-network", "--date", "2011-11-20").code == 2


def test_refused_reuse_says_the_verdict_first_and_hides_the_commitment(mcn):
    open_cache().store(consultation())  # coverage 2011-11-12 .. 2011-12-12
    result = mcn("reuse", "--niss", PATIENT_NISS, "--date", "2011-12-13")
    assert result.code == ExitStatus.NO_COMMITMENT
    first = result.out.splitlines()[0]
    assert first.startswith("Do not reuse: ") and "2011-12-12" in first and "2011-12-13" in first
    for usable in ("110/110", "SEED012345", "payment approval", "OT check code", "AAAAAAAA"):
        assert usable not in result.out
    assert "mcn fallback" in result.err
    french = mcn("--lang", "fr", "reuse", "--niss", PATIENT_NISS, "--date", "2011-12-13", "--json")
    assert french.json()["reusable"] is False
    assert french.json()["reason"] == "dispensing date after the coverage end"
    nobody = mcn("reuse", "--niss", OTHER_NISS, "--date", "2011-11-20")
    assert nobody.out.startswith("Do not reuse: no payment commitment is known")


def test_reuse_date_defaults_to_today(mcn):
    from datetime import date, timedelta

    today = date.today()
    start = (today - timedelta(days=3)).isoformat()
    end = (today + timedelta(days=300)).isoformat()
    open_cache().store(consultation(consulted=start, periods=((start, end),)))
    result = mcn("reuse", "--niss", PATIENT_NISS, "--json")
    assert result.code == 0 and result.json()["dispensed"] == today.isoformat() and result.json()["reusable"]


class _Terminal:
    """stdin on a terminal, with the answers typed."""

    def __init__(self, text: str) -> None:
        import io

        self._lines = io.StringIO(text)

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self._lines.readline()


def test_interactive_fallback_answers_steps_3_and_4_from_the_cache(mcn, monkeypatch):
    open_cache().store(consultation())
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))  # only step 2 is asked
    result = mcn("fallback", "--niss", PATIENT_NISS, "--date", "2011-11-20", "--json")
    assert result.json()["outcome"] == "commitment-reuse"
    assert "2. " in result.err and "3. " not in result.err and "4. " not in result.err
    monkeypatch.setattr(sys, "stdin", _Terminal("nee\nja\n"))  # not covered: step 5 is asked
    late = mcn("fallback", "--niss", PATIENT_NISS, "--date", "2011-12-20", "--json")
    assert late.json()["outcome"] == "basic-principle" and "5. " in late.err and "4. " not in late.err
    monkeypatch.setattr(sys, "stdin", _Terminal("non\no\n"))  # unknown patient: no step 5
    unknown = mcn("fallback", "--niss", OTHER_NISS, "--date", "2011-11-20", "--json")
    assert unknown.json()["outcome"] == "sis-commitment"
    assert [s["step"] for s in unknown.json()["path"]] == [2, 3, 6]
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))  # network up: the cache is not read
    online = mcn("fallback", "--niss", PATIENT_NISS, "--json")
    assert online.json()["outcome"] == "commitment" and online.json()["reuse"] is None
