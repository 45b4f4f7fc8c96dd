from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcn_cli.cli.main import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def mcn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MCN_HOME: nothing touches the real user folders."""
    home = tmp_path / "mcn-home"
    monkeypatch.setenv("MCN_HOME", str(home))
    monkeypatch.delenv("MCN_DEBUG", raising=False)
    for name in list(os.environ):
        if name.startswith("MCN_") and name != "MCN_HOME":
            monkeypatch.delenv(name)
    return home


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def mcn(capsys: pytest.CaptureFixture[str]):
    """Run one mcn command line in-process, as the console script does."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def niss_with_check(body9: str, born_2000: bool = False) -> str:
    """A NISS whose check digits are right, computed from the DOMAIN.md rule."""
    number = int(("2" if born_2000 else "") + body9)
    return body9 + f"{97 - number % 97:02d}"
