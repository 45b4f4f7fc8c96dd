"""Helpers shared by the benchmarks: find the console script, time whole commands."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def mcn_script() -> str:
    script = shutil.which("mcn", path=str(Path(sys.executable).parent)) or shutil.which("mcn")
    if not script:
        sys.exit("mcn is not installed: run ./scripts/test.sh or pip install -e . first")
    return script


def median_ms(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def report(rows: Sequence[tuple[str, float]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, ms in rows:
        print(f"{name.ljust(width)}  {ms:7.1f} ms")
