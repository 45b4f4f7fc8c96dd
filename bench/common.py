"""Helpers shared by the benchmarks: find the console script, time whole commands."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


def median_cpu_ms(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> float:
    """The median CPU time (user + system) of a command, in milliseconds."""
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return statistics.median(times)


def user_environment(home: str) -> dict[str, str]:
    """The environment a user's mcn runs in: this home, and bytecode caches allowed (an installed
    package has them; a machine that forbids writing them would measure compilation)."""
    env = {**os.environ, "MCN_HOME": home, "MCN_PIN": "1234"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def report(rows: Sequence[tuple[str, float]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, ms in rows:
        print(f"{name.ljust(width)}  {ms:7.1f} ms")


@contextmanager
def sandbox_server(mcn: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh MCN_HOME with an initialised sandbox and `mcn sandbox serve` running in a separate
    process; yields the home folder and the environment to run mcn in."""
    with tempfile.TemporaryDirectory() as home:
        env = user_environment(home)
        subprocess.run([mcn, "sandbox", "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        server = subprocess.Popen(
            [mcn, "sandbox", "serve", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            print(server.stdout.readline().strip())
            yield Path(home), env
        finally:
            server.terminate()
            server.wait(timeout=10)
