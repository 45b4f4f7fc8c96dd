"""`mcn consult` from a cold process against a running sandbox server (a separate process).

Run: python bench/consult.py [RUNS]. Prints the median wall time of `mcn consult` beside
`mcn --version`, the median CPU time of `mcn consult` beside a bare `python -c pass` measured in
the same run, and their ratio. Goals: consult under 400 ms median wall, and at most 8x the CPU
of `python -c pass`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import mcn_script, median_cpu_ms, median_ms, report, sandbox_server


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
        print(f"median of {runs} runs, wall time")
        report(rows)
        bare = median_cpu_ms([sys.executable, "-c", "pass"], runs, env)
        cpu = median_cpu_ms(consult, runs, env)
        print(f"median of {runs} runs, CPU time (user + system)")
        report([("python -c pass", bare), ("mcn consult (cold process)", cpu)])
        print(f"consult / python -c pass: {cpu / bare:.1f}x (goal: at most 8x)")


if __name__ == "__main__":
    main()
