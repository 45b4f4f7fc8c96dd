"""The local SQLite database: one file, owner-only, WAL, secure_delete, safe across processes.

It holds the vault's wrapped keys, the commitment cache and the audit trail, so that a
consultation and its audit entry, or a rekey and every re-encrypted record, commit together.

It is one of the two storage backends (the other is ``store.pg``, PostgreSQL shared by several
counters): both offer the same small interface, ``Store`` below — a ``connection`` whose
``execute`` takes SQL with ``?`` placeholders that both engines understand, and ``write()``, a
transaction that excludes every other writer. Encryption, sealing and pseudonyms stay above it.
With PostgreSQL the SQLite file remains the workstation's own: its sessions, a copy of the
wrapped keys and the spool of consultations made while the server could not be reached.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from mcn_cli.domain.errors import DataIntegrity
from mcn_cli.domain.messages import N_
from mcn_cli.store import paths


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the store modules use of a connection: SQL with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


class Store(Protocol):
    """The storage interface: the SQLite ``Database`` and ``store.pg.PgDatabase`` both offer it."""

    kind: str  # "sqlite" or "postgresql"

    @property
    def connection(self) -> Connection: ...

    @property
    def local(self) -> Database: ...

    def write(self) -> AbstractContextManager[Any]: ...

    def size_bytes(self) -> int: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    niss_key TEXT,
    member_key TEXT,
    consulted_at TEXT NOT NULL,
    dispensed TEXT NOT NULL,
    coverage_start TEXT,
    coverage_end TEXT,
    reusable_until TEXT,
    pharmacy TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'invoiced', 'settled')),
    invoiced_at TEXT,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_niss ON records (niss_key, consulted_at);
CREATE INDEX IF NOT EXISTS records_member ON records (member_key, consulted_at);
CREATE INDEX IF NOT EXISTS records_state ON records (state, dispensed);
CREATE TABLE IF NOT EXISTS actors (
    key TEXT PRIMARY KEY,
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    name TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL,
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS burst (
    pharmacy TEXT NOT NULL,
    patient TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS burst_at ON burst (pharmacy, at);
"""

# Schema 3: ``records.binding`` says what a record's seal covers (1: its row without the billing
# state, as sealed before schema 3; 2: also its state and invoicing date), and ``burst`` holds
# the consultations the legitimate-use guard counts (checked and recorded in one transaction).
_ADDED_COLUMNS = (("records", "binding", "INTEGER NOT NULL DEFAULT 1"),)


def database_file() -> Path:
    return paths.data_dir() / "mcn.sqlite3"


def _create_private(path: Path) -> None:
    paths.private_dir(path.parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Database:
    """A connection with mcn's pragmas; ``write()`` opens an IMMEDIATE transaction."""

    kind = "sqlite"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or database_file()
        _create_private(self.path)
        old_umask = os.umask(0o077)  # the -wal and -shm files SQLite creates stay owner-only
        try:
            self.connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._setup()
        except sqlite3.DatabaseError as error:
            raise DataIntegrity(
                N_("local database {path} is unreadable: {error}"), path=self.path, error=str(error)
            ) from None
        finally:
            os.umask(old_umask)

    def _setup(self) -> None:
        c = self.connection
        c.execute("PRAGMA busy_timeout = 30000")
        c.execute("PRAGMA journal_mode = WAL")
        c.execute("PRAGMA synchronous = FULL")
        c.execute("PRAGMA secure_delete = ON")
        version = c.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            with self.write():
                # another process may have upgraded it meanwhile: look again under the write lock
                if c.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            c.execute(statement)
                    for table, column, kind in _ADDED_COLUMNS:
                        present = {row[1] for row in c.execute(f"PRAGMA table_info({table})")}
                        if column not in present:
                            c.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise DataIntegrity(
                N_("local database {path} comes from a newer mcn (schema {version})"),
                path=self.path,
                version=version,
            )

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once so that concurrent writers queue instead of failing.

        Nested inside another one it becomes a savepoint, so callers may batch many writes.
        """
        c = self.connection
        if c.in_transaction:
            c.execute("SAVEPOINT nested")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK TO nested")
                c.execute("RELEASE nested")
                raise
            else:
                c.execute("RELEASE nested")
            return
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")

    @property
    def local(self) -> Database:
        """The workstation's own database (sessions, spool): this one."""
        return self

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
