"""The commitment cache at scale: 100 000 records.

Run: python bench/cache.py [RECORDS]. Prints:
- the time to fill the cache (one transaction, as an import would);
- `mcn reuse` median wall time against `mcn --version` (goal: under 100 ms beyond start-up);
- `mcn billing settle --month` of every record (settling deletes at once and audits each);
- `mcn cache purge` of as many records left in the settled state (goal: under 10 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from datetime import time as day_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import mcn_script, median_ms, report


def niss(i: int) -> str:
    body = f"85{(i // 28) % 12 + 1:02d}{i % 28 + 1:02d}{i % 997 + 1:03d}"
    return body + f"{97 - int(body) % 97:02d}"


def fill(records: int) -> float:
    from mcn_cli.actions.local import open_cache
    from mcn_cli.domain.commitment import Coverage, PaymentCommitment
    from mcn_cli.domain.consultation import CareReceiver, Consultation, ThirdPartyRegime, Verification
    from mcn_cli.domain.identifiers import Entitlement

    cache = open_cache()
    start = time.perf_counter()
    with cache.db.write():
        for i in range(records):
            day = date(2026, 10, 1 + i % 28)
            commitment = PaymentCommitment(
                day, day, Coverage(day, date(2026, 10, 31)), Entitlement("110", "110")
            )
            cache.store(
                Consultation(
                    consulted_at=datetime.combine(day, day_time(9, 0), tzinfo=UTC),
                    dispensed=day,
                    care_receiver=CareReceiver(
                        niss=niss(i % (records // 5 or 1)), first_name="Jan", last_name="Peeters"
                    ),
                    pharmacy_nihii="27150201",
                    commitment=commitment,
                    third_party=ThirdPartyRegime.STANDARD,
                    verification=Verification("A" * 32, "B" * 10, "42"),
                )
            )
    cache.db.close()
    return time.perf_counter() - start


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    mcn = mcn_script()
    with tempfile.TemporaryDirectory() as home:
        os.environ["MCN_HOME"] = home
        filled = fill(records)
        print(f"filled {records} records in {filled:.1f} s")
        runs = 21
        version = median_ms([mcn, "--version"], runs)
        reuse = median_ms([mcn, "reuse", "--niss", niss(7), "--date", "2026-10-20"], runs)
        report(
            [
                ("mcn --version", version),
                ("mcn reuse (100k cache)", reuse),
                ("reuse beyond start-up", reuse - version),
            ]
        )
        subprocess.run(
            [mcn, "billing", "invoice", "--month", "2026-10"], check=True, stdout=subprocess.DEVNULL
        )
        print(
            f"billing settle --month 2026-10 ({records} records): "
            f"{timed([mcn, 'billing', 'settle', '--month', '2026-10']):.1f} s"
        )
        fill(records)
        from mcn_cli.actions.local import open_database

        with open_database() as db, db.write() as c:
            c.execute("UPDATE records SET state = 'settled'")
        print(f"cache purge ({records} settled records): {timed([mcn, 'cache', 'purge']):.1f} s")


if __name__ == "__main__":
    main()
