"""A tarification office's batch: 1 000 rejections against a running sandbox server.

Run: python bench/ot_batch.py [ROWS] [WORKERS]. Prints rows per second and the peak memory of
the `mcn ot batch` process. Goal: at least 50 rows/s and under 150 MB.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import mcn_script, sandbox_server


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    workers = sys.argv[2] if len(sys.argv) > 2 else "4"
    mcn = mcn_script()
    from mcn_cli.sandbox.population import population

    day = (date.today() - timedelta(days=3)).isoformat()
    patients = [p for p in population(date.today()) if p.fault is None]
    with sandbox_server(mcn) as (home, env):
        keystore = home / "data" / "sandbox" / "keystores" / "NIHII-OTD_PHARMACY=64001291.p12"
        subprocess.run([mcn, "login", "--org", str(keystore)], env=env, check=True, stdout=subprocess.DEVNULL)
        lines = ["rejection,pharmacy,niss,mutuality,member_number,date,rejection_code"]
        for i in range(rows):
            p = patients[i % len(patients)]
            who = f"{p.niss},," if p.niss else f",{p.mutuality},{p.member}"
            lines.append(f"REJ-{i:06d},27150201,{who},{day},INS01")
        batch = home / "rejections.csv"
        batch.write_text("\n".join(lines) + "\n")
        out = home / "results.jsonl"
        start = time.perf_counter()
        subprocess.run(
            [mcn, "ot", "batch", str(batch), "--output", str(out), "--workers", workers],
            env=env,
            check=True,
        )
        elapsed = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        answered = sum(1 for _ in out.open())
        print(f"{answered} rows in {elapsed:.1f} s with {workers} workers: {answered / elapsed:.0f} rows/s")
        print(f"peak memory of the largest child process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
