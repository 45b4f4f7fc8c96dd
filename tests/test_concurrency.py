from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from mcn_cli.actions.local import open_cache
from mcn_cli.store import audit
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("backend")


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.writer", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_writers_and_a_purge_lose_nothing(mcn_home):
    processes = [spawn("store", "40"), spawn("store", "40"), spawn("purge", "40")]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "locked" not in err
    cache = open_cache()
    assert len(cache.all()) == 80
    assert audit.verify(cache.vault, cache.db.connection).intact


def test_sigkill_mid_write_never_leaves_a_broken_record(mcn_home):
    rng = random.Random(7)
    for _ in range(8):
        process = spawn("store", "100000")
        # wait until it writes, then kill it at a random moment
        assert process.stdout is not None
        process.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.15))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    cache = open_cache()
    records = cache.all()  # every record decrypts: none half-written
    assert len(records) > 8
    result = audit.verify(cache.vault, cache.db.connection)
    assert result.intact and result.entries == len(records)
    if cache.db.kind == "sqlite":
        with sqlite3.connect(cache.db.local.path) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
