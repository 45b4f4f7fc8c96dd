"""The shared store on PostgreSQL against SQLite, on a throwaway local cluster.

Run: python bench/shared_store.py [RECORDS] [CONSULTS]. Prints:
- four processes (four workstations) consulting the sandbox at once, CONSULTS each (default 10),
  against one PostgreSQL and, for comparison, one SQLite file: wall time and consultations/s;
- `mcn reuse` median wall time at RECORDS records (default 1 000 000) on each backend, and
  beyond `mcn --version` (goal: PostgreSQL within 20 ms of SQLite beyond start-up);
- `mcn cache purge` of RECORDS settled records on PostgreSQL (goal: under 10 s).

Records are sealed as mcn seals them and loaded in bulk (COPY), so that filling stays quick;
the audit trail is not filled (reuse and purge do not read it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cache import niss
from bench.common import mcn_script, median_ms, report, sandbox_server


def rows(cache, records: int, state: str):
    from mcn_cli.domain.commitment import Coverage, PaymentCommitment
    from mcn_cli.domain.consultation import CareReceiver, Consultation, ThirdPartyRegime, Verification
    from mcn_cli.domain.identifiers import Entitlement
    from mcn_cli.store import codec
    from mcn_cli.store.cache import BINDING, Record, niss_key

    patients = records // 5 or 1
    keys = {}
    for i in range(records):
        day = date(2026, 10, 1 + i % 28)
        who = niss(i % patients)
        key = keys.get(who) or keys.setdefault(who, niss_key(cache.vault, who))
        consultation = Consultation(
            consulted_at=datetime(2026, 10, 1 + i % 28, 9, 0, tzinfo=UTC),
            dispensed=day,
            care_receiver=CareReceiver(niss=who, first_name="Jan", last_name="Peeters"),
            pharmacy_nihii="27150201",
            commitment=PaymentCommitment(
                day, day, Coverage(day, date(2026, 10, 31)), Entitlement("110", "110")
            ),
            third_party=ThirdPartyRegime.STANDARD,
            verification=Verification("A" * 32, "B" * 10, "42"),
        )
        record = Record(
            f"{i:016x}", key, None, consultation.consulted_at.isoformat(timespec="microseconds"),
            day.isoformat(), day.isoformat(), "2026-10-31", "2026-10-31", "27150201", state,
            "2026-11-02T00:00:00+00:00" if state != "open" else None, BINDING, b"",
        )
        yield (*[getattr(record, f) for f in ("id", "niss_key", "member_key", "consulted_at", "dispensed",
                                              "coverage_start", "coverage_end", "reusable_until", "pharmacy",
                                              "state", "invoiced_at", "binding")],
               cache.vault.seal(codec.to_json(consultation), record.aad))


COLUMNS = (
    "id, niss_key, member_key, consulted_at, dispensed, coverage_start, coverage_end, reusable_until, "
    "pharmacy, state, invoiced_at, binding, payload"
)


def fill(records: int, state: str = "open") -> float:
    from mcn_cli.actions.local import open_cache

    cache = open_cache()
    start = time.perf_counter()
    if cache.db.kind == "postgresql":
        with cache.db.raw.transaction(), cache.db.raw.cursor() as cursor:
            cursor.execute("DELETE FROM records")
            with cursor.copy(f"COPY records ({COLUMNS}) FROM STDIN") as copy:
                for row in rows(cache, records, state):
                    copy.write_row(row)
        cache.db.raw.execute("ANALYZE records")
    else:
        with cache.db.write() as c:
            c.execute("DELETE FROM records")
            c.executemany(f"INSERT INTO records ({COLUMNS}) VALUES ({', '.join('?' * 13)})",
                          rows(cache, records, state))
    cache.db.close()
    return time.perf_counter() - start


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


CONSULTER = """
import subprocess, sys, time
mcn, count = sys.argv[1], int(sys.argv[2])
start = float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
for _ in range(count):
    subprocess.run([mcn, "consult", "--niss", "85073003328"], check=True, stdout=subprocess.DEVNULL)
"""


def four_counters(mcn: str, env: dict[str, str], consults: int) -> float:
    start = time.time() + 1.0
    processes = [
        subprocess.Popen([sys.executable, "-c", CONSULTER, mcn, str(consults), str(start)],
                         env={**env, "MCN_WORKSTATION": f"counter-{n}"})
        for n in range(1, 5)
    ]
    for process in processes:
        if process.wait(timeout=600) != 0:
            sys.exit("a consulting process failed")
    return time.time() - start


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    consults = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    mcn = mcn_script()
    from tests import pg_cluster

    cluster = pg_cluster.start()
    try:
        shared = cluster.url(pg_cluster.TOOL, cluster.new_database())
        print(f"PostgreSQL: throwaway cluster on port {cluster.port} (fsync off, as in the tests)")
        with sandbox_server(mcn) as (_, env):
            subprocess.run([mcn, "login"], env=env, check=True, stdout=subprocess.DEVNULL)
            sqlite_s = four_counters(mcn, env, consults)
            pg_env = {**env, "MCN_STORE_URL": shared}
            # this workstation's own cache moves into the shared store first (else it is refused)
            local = Path(env["MCN_HOME"]) / "data" / "mcn.sqlite3"
            subprocess.run([mcn, "store", "copy", "--from", f"sqlite:{local}", "--to", shared], env=pg_env,
                           check=True)
            subprocess.run([mcn, "login"], env=pg_env, check=True, stdout=subprocess.DEVNULL)
            pg_s = four_counters(mcn, pg_env, consults)
            total = 4 * consults
            print(f"four processes consulting at once, {consults} consultations each:")
            print(f"  SQLite      {sqlite_s:6.1f} s  {total / sqlite_s:5.1f} consultations/s")
            print(f"  PostgreSQL  {pg_s:6.1f} s  {total / pg_s:5.1f} consultations/s")
            verified = subprocess.run([mcn, "audit", "verify", "--json"], env=pg_env, capture_output=True,
                                      text=True, check=False)
            print(f"  shared audit trail verifies: {verified.returncode == 0}")

        runs = 21
        figures = {}
        big = cluster.url(pg_cluster.TOOL, cluster.new_database())
        for name, url in (("SQLite", ""), ("PostgreSQL", big)):
            home = Path(cluster.root) / f"home-{name}"
            os.environ["MCN_HOME"] = str(home)
            if url:
                os.environ["MCN_STORE_URL"] = url
            else:
                os.environ.pop("MCN_STORE_URL", None)
            print(f"{name}: filled {records} records in {fill(records):.1f} s")
            version = median_ms([mcn, "--version"], runs)
            reuse = median_ms([mcn, "reuse", "--niss", niss(7), "--date", "2026-10-20"], runs)
            figures[name] = reuse - version
            report([("mcn --version", version), (f"mcn reuse ({records} records)", reuse),
                    ("reuse beyond start-up", reuse - version)])
        difference = figures["PostgreSQL"] - figures["SQLite"]
        print(f"PostgreSQL - SQLite, reuse beyond start-up: {difference:+.1f} ms (goal: within 20 ms)")
        fill(records, "settled")
        print(f"PostgreSQL cache purge ({records} settled records): {timed([mcn, 'cache', 'purge']):.1f} s "
              "(goal: under 10 s)")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
