"""Start-up cost of the commands shell completion and scripts call in loops.

Run: python bench/startup.py [RUNS]. Prints the median wall time of each command beside a
bare interpreter. Goal: `mcn check niss` at most 150 ms median, in every language (French and Dutch load their
catalogue; a locale such as fr_BE.UTF-8 also reads the config for the ``lang`` setting).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tempfile

from bench.common import mcn_script, median_ms, report, user_environment


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    mcn = mcn_script()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "mcn --version": [mcn, "--version"],
        "mcn check niss 85073003328": [mcn, "check", "niss", "85073003328"],
        "mcn coverage (annex 6)": [
            mcn,
            "coverage",
            "--date",
            "2011-12-25",
            "--consulted",
            "2011-12-25",
            "--period",
            "110/110:2011-01-01..2011-12-31",
            "--period",
            "110/110:2012-01-01..2012-12-31",
        ],
    }
    with tempfile.TemporaryDirectory() as home:
        env = user_environment(home)
        for argv in commands.values():
            median_ms(argv, 1, env)  # the first run writes the bytecode caches, as an install does
        print(f"median of {runs} runs")
        rows = [(name, median_ms(argv, runs, env)) for name, argv in commands.items()]
        niss = commands["mcn check niss 85073003328"]
        for label, extra in (("MCN_LANG=fr", {"MCN_LANG": "fr"}), ("MCN_LANG=nl", {"MCN_LANG": "nl"}),
                             ("LANG=nl_BE.UTF-8", {"LANG": "nl_BE.UTF-8"})):
            median_ms(niss, 1, {**env, **extra})
            rows.append((f"mcn check niss, {label}", median_ms(niss, runs, {**env, **extra})))
        report(rows)


if __name__ == "__main__":
    main()
