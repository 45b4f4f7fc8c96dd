from __future__ import annotations

import re

from mcn_cli.cli import docgen
from mcn_cli.status import DESCRIPTIONS, ExitStatus
from tests.conftest import ROOT


def test_completions_and_man_pages_are_current():
    stale = [
        relative
        for relative, text in docgen.outputs().items()
        if not (ROOT / relative).exists() or (ROOT / relative).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"regenerate with: python -m mcn_cli.cli.docgen ({', '.join(stale)})"
    extra = {p.name for p in (ROOT / "man").glob("*.1")} - {
        r.split("/")[1] for r in docgen.outputs() if r.startswith("man/")
    }
    assert not extra, f"man pages of removed commands: {extra}"


def test_readme_documents_every_exit_status():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for status in ExitStatus:
        assert re.search(rf"^\| {int(status)} \| ", readme, re.MULTILINE), (
            f"exit {int(status)} missing from README"
        )
    man = (ROOT / "man" / "mcn.1").read_text(encoding="utf-8")
    for status in DESCRIPTIONS:
        assert f"\\fB{int(status)}\\fR" in man


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)
    assert blocks[0].strip() == "./scripts/demo.sh"
    assert blocks[1].strip() == "./scripts/test.sh"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "\n./scripts/test.sh\n" in ci
