from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcn_cli.cli.main import run

ROOT = Path(__file__).resolve().parents[1]
# eHealth's real schemas, templates and samples, beside the project (not part of it). A plain
# clone of the project skips the tests that need them; .ci/run refuses to run without them.
REFERENCE = ROOT.parent / "shared" / "reference"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(),
    reason="needs ../shared/reference (eHealth's real schemas and samples) beside the project; CI has it",
)


@pytest.fixture(autouse=True)
def mcn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MCN_HOME: nothing touches the real user folders."""
    home = tmp_path / "mcn-home"
    monkeypatch.setenv("MCN_HOME", str(home))
    monkeypatch.delenv("MCN_DEBUG", raising=False)
    for name in list(os.environ):
        if name.startswith("MCN_") and name != "MCN_HOME":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MCN_LANG", "en")  # the tests read English unless they choose a language
    return home


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def mcn(capsys: pytest.CaptureFixture[str]):
    """Run one mcn command line in-process, as the console script does."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def niss_with_check(body9: str, born_2000: bool = False) -> str:
    """A NISS whose check digits are right, computed from the DOMAIN.md rule."""
    number = int(("2" if born_2000 else "") + body9)
    return body9 + f"{97 - number % 97:02d}"


SANDBOX_PIN = "73914682"


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sandbox (PKI, keystores, SoftHSM tokens) made once per test run."""
    from mcn_cli.sandbox.setup import initialise
    from mcn_cli.sandbox.world import Files

    root = tmp_path_factory.mktemp("sandbox-template") / "sandbox"
    report = initialise(SANDBOX_PIN, Files(root))
    assert report.tokens == "created", "SoftHSM2 is needed for the tests: apt-get install softhsm2"
    return root


@pytest.fixture
def sandbox(sandbox_template: Path, mcn_home: Path):
    """This test's own copy of the sandbox under its MCN_HOME; servers it starts are stopped after."""
    import shutil

    from mcn_cli.sandbox import runtime
    from mcn_cli.sandbox.world import Files

    target = mcn_home / "data" / "sandbox"
    shutil.copytree(sandbox_template, target)
    yield Files(target)
    runtime.stop_in_process()


@pytest.fixture
def office(mcn, sandbox):
    """The sandbox with a tarification office's session open."""
    result = mcn("login", "--org", str(sandbox.ot_keystore()), "--json")
    assert result.code == 0, result.err
    assert result.json()["kind"] == "ot"
    return sandbox


# --- the storage backends: SQLite (the default) and a real PostgreSQL --------------------------


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster for the whole run. Without PostgreSQL installed the tests
    that need it skip, except in CI (CI=true), where they must run."""
    from tests import pg_cluster as clusters

    try:
        import psycopg  # noqa: F401

        cluster = clusters.start()
    except (ImportError, RuntimeError, OSError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the PostgreSQL store: {error}")
        pytest.skip(f"no PostgreSQL here ({error}); scripts/test.sh installs it")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster, mcn_home, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh migrated database, reached as the least-privilege tool role, chosen by MCN_STORE_URL."""
    from tests.pg_cluster import TOOL

    url = pg_cluster.url(TOOL, pg_cluster.new_database())
    monkeypatch.setenv("MCN_STORE_URL", url)
    monkeypatch.setenv("MCN_WORKSTATION", "counter-1")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, mcn_home: Path) -> str:
    """Run the test against each storage backend."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_url")
    return request.param


@pytest.fixture
def tamper(backend: str, request: pytest.FixtureRequest):
    """Run SQL (``?`` placeholders) on the store as its owner would, outside mcn: an attacker."""
    from mcn_cli.store.db import database_file

    def run_sql(sql: str, *args: Any) -> list[Any]:
        if backend == "sqlite":
            import sqlite3

            with sqlite3.connect(database_file()) as c:
                return c.execute(sql, args).fetchall()
        cluster = request.getfixturevalue("pg_cluster")
        database = os.environ["MCN_STORE_URL"].rsplit("/", 1)[1].split("?")[0]
        with cluster.admin(database) as c:
            cursor = c.execute(sql.replace("?", "%s"), args)
            return cursor.fetchall() if cursor.description else []

    return run_sql
