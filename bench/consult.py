"""`mcn consult` from a cold process against a running sandbox server (a separate process).

Run: python bench/consult.py [RUNS]. Prints the median wall time of `mcn consult` beside
`mcn --version`, and what zeep costs: its import and the parse of mcn's WSDL (done at most
once per process). Goal: consult under 400 ms median.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import mcn_script, median_ms, report, sandbox_server

ZEEP_COST = """
import time
from mcn_cli.ehealth.insurability import zeep_client
start = time.perf_counter()
import zeep  # noqa: F401
imported = time.perf_counter()
zeep_client()
parsed = time.perf_counter()
zeep_client()
again = time.perf_counter()
print(f"{(imported - start) * 1000:.1f} {(parsed - imported) * 1000:.1f} {(again - parsed) * 1000:.3f}")
"""


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    mcn = mcn_script()
    with sandbox_server(mcn) as (_, env):
        subprocess.run([mcn, "login"], env=env, check=True, stdout=subprocess.DEVNULL)
        consult = [mcn, "consult", "--niss", "85073003328"]
        subprocess.run(consult, env=env, check=True, stdout=subprocess.DEVNULL)  # warm the disk cache
        rows = [
            ("mcn --version", median_ms([mcn, "--version"], runs, env)),
            ("mcn consult (cold process)", median_ms(consult, runs, env)),
        ]
        print(f"median of {runs} runs")
        report(rows)
        imported, parsed, again = subprocess.run(
            [sys.executable, "-c", ZEEP_COST], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        report(
            [
                ("import zeep", float(imported)),
                ("parse mcn's WSDL (first call)", float(parsed)),
                ("zeep client again (cached)", float(again)),
            ]
        )


if __name__ == "__main__":
    main()
