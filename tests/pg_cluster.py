"""A throwaway PostgreSQL cluster for the tests and benchmarks: initdb and pg_ctl in a temporary
folder, a random port on 127.0.0.1, scram-sha-256 passwords, an owner role that migrates and a
least-privilege role for the tool. As root (CI) the server runs as the ``postgres`` user, since
initdb refuses root."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPER, OWNER, TOOL = "mcn_super", "mcn_owner", "mcn_tool"
TEMPLATE = "mcn_template"


def bindir() -> Path | None:
    """Where initdb and pg_ctl are (Debian keeps them out of PATH), the newest version first."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]), reverse=True
    )
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class Cluster:
    root: Path
    port: int
    password: str
    bin: Path
    counter: int = 0

    def url(self, role: str, database: str, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"sslmode": "disable", **options}.items())
        return f"postgresql://{role}:{self.password}@127.0.0.1:{self.port}/{database}?{query}"

    def admin(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(self.url(SUPER, database), autocommit=True)

    def new_database(self) -> str:
        """A fresh database, migrated (from the template), owned by the owner role."""
        self.counter += 1
        name = f"mcn_{os.getpid()}_{self.counter}"
        with self.admin() as c:
            c.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} OWNER {OWNER}")
        return name

    def empty_database(self) -> str:
        """A fresh database without mcn's schema."""
        self.counter += 1
        name = f"mcn_{os.getpid()}_{self.counter}"
        with self.admin() as c:
            c.execute(f"CREATE DATABASE {name} OWNER {OWNER}")
        return name

    def stop(self) -> None:
        subprocess.run(
            [*_as_server_user(), str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
             "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> Cluster:
    """Start a cluster; raises RuntimeError with the reason when it cannot."""
    where = bindir()
    if where is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="mcn-pg-"))
    password = secrets.token_hex(12)
    (root / "pw").write_text(password + "\n")
    if os.geteuid() == 0:  # initdb refuses root: the server runs as Debian's postgres user
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("as root, the server needs the postgres user (Debian: postgresql)") from None
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    port = _free_port()
    run = [*_as_server_user()]
    made = subprocess.run(
        [*run, str(where / "initdb"), "-D", str(root / "data"), "-U", SUPER, "--pwfile", str(root / "pw"),
         "--auth=scram-sha-256", "-E", "UTF8", "--no-sync", "--locale=C"],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {made.stderr.strip()}")
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=60 -c shared_buffers=128MB"
    )
    result = subprocess.run(
        [*run, str(where / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"), "-o", options, "-w",
         "start"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {result.stderr} {log}")
    cluster = Cluster(root, port, password, where)
    try:
        with cluster.admin() as c:
            c.execute(f"CREATE ROLE {OWNER} LOGIN PASSWORD '{password}'")
            c.execute(f"CREATE ROLE {TOOL} LOGIN PASSWORD '{password}'")
            c.execute(f"CREATE DATABASE {TEMPLATE} OWNER {OWNER}")
            # the tool may connect; nothing else but what migrate grants
            c.execute("REVOKE ALL ON DATABASE postgres FROM PUBLIC")
        with cluster.admin(TEMPLATE) as c:
            c.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            c.execute(f"ALTER SCHEMA public OWNER TO {OWNER}")
        from mcn_cli.store import pg

        pg.migrate(cluster.url(OWNER, TEMPLATE), grant=TOOL)
    except BaseException:
        cluster.stop()
        raise
    return cluster
