"""A tarification office's batch against a running sandbox server (`mcn sandbox serve`).

Run: python bench/ot_batch.py [ROWS] [WORKERS] (default 1 000 rows, 4 workers; try 100000).

Prints, for a full run: rows per second and the peak memory of the `mcn ot batch` process;
then, for a second run interrupted halfway with SIGINT: the time from the signal to the exit,
the exit status (130) and how many lines were done. Goals: memory flat, under 100 MB whatever
the row count; exit within a second or two of SIGINT (the requests in flight are awaited).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import mcn_script, sandbox_server


def _peak_mb(pid: int, stop: threading.Event, peak: list[int]) -> None:
    """Sample the process's resident high-water mark (VmHWM) until it ends (Linux)."""
    status = Path(f"/proc/{pid}/status")
    while not stop.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]))
        except OSError:
            return
        time.sleep(0.1)


def run(
    argv: list[str], env: dict[str, str], interrupt_after: float | None = None
) -> tuple[int, float, float, str]:
    """Exit status, seconds, peak MB, stderr; with ``interrupt_after`` SIGINT then (seconds to exit)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0]
    stop = threading.Event()
    sampler = threading.Thread(target=_peak_mb, args=(process.pid, stop, peak), daemon=True)
    sampler.start()
    if interrupt_after is not None:
        try:
            process.wait(timeout=interrupt_after)
        except subprocess.TimeoutExpired:
            start = time.perf_counter()
            process.send_signal(signal.SIGINT)
    err = process.communicate()[1]
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    return process.returncode, elapsed, peak[0] / 1024, err


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
        batch = home / "rejections.csv"
        with batch.open("w") as out:  # written as it goes: the bench itself stays small too
            out.write("Référence;Pharmacie;NISS;Mutualité;Numéro d'inscription;Date;Code de rejet;Dossier\n")
            for i in range(rows):
                p = patients[i % len(patients)]
                who = f"{p.niss};;" if p.niss else f";{p.mutuality};{p.member}"
                out.write(f"REJ-{i:06d};27150201;{who};{day};INS01;D{i}\n")
        output = home / "results.csv"
        argv = [mcn, "ot", "batch", str(batch), "--output", str(output), "--workers", workers, "--excel"]
        status, elapsed, peak, err = run(argv, env)
        answered = sum(1 for _ in output.open()) - 1
        print(f"{answered} rows in {elapsed:.1f} s with {workers} workers: {answered / elapsed:.0f} rows/s")
        print(f"exit status {status}; peak memory of mcn ot batch: {peak:.0f} MB")
        print(err.strip().splitlines()[-1] if err.strip() else "")

        os.unlink(output)
        halfway = max(1.0, elapsed / 2)
        status, to_exit, peak, err = run(argv, env, interrupt_after=halfway)
        done = sum(1 for _ in output.open()) - 1
        print(f"SIGINT after {halfway:.1f} s: exit {status} {to_exit:.2f} s later; {done} lines written")
        print(err.strip().splitlines()[-1] if err.strip() else "")


if __name__ == "__main__":
    main()
