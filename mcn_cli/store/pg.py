"""The shared store on PostgreSQL (14+): one pharmacy's records and audit trail for every counter.

The same tables as the SQLite backend (``store.db``), minus the sessions, which stay on each
workstation. The server only ever sees what the SQLite file holds in clear: sealed records,
keyed pseudonyms, dates, billing states and the pharmacy NIHII; the keys are wrapped.

- Every write transaction first takes one transaction-scoped advisory lock
  (``pg_advisory_xact_lock``), so writers queue exactly as SQLite's ``BEGIN IMMEDIATE`` makes
  them: the audit chain's appends, the burst guard and a rekey stay serialised across counters.
- The schema is versioned (``schema_version``) and only ``migrate`` (``mcn store migrate``, as
  the owner role) runs DDL; every other command refuses a missing, older or newer schema.
- The tool's role needs no more than the grants ``migrate --grant ROLE`` gives: rows of the
  cache and of its side tables, and only SELECT and INSERT on the audit trail.

psycopg is imported when a PostgreSQL store is opened, never at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import lru_cache
from typing import Any

from mcn_cli.domain.errors import DataIntegrity, InvalidInput, NoDatabase, ServiceUnavailable
from mcn_cli.domain.messages import N_
from mcn_cli.store.db import Database

LOCK_KEY = 0x6D636E5F73746F72  # "mcn_stor": the one advisory lock every writer takes
MIGRATE_LOCK_KEY = LOCK_KEY + 1
CONNECT_TIMEOUT = 5  # seconds, unless the URL says otherwise (connect_timeout=N)

# Versioned migrations: each one runs once, in its own transaction, by ``migrate`` only.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE records (
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
    binding INTEGER NOT NULL DEFAULT 1,  -- as in SQLite: what a row written without it means
    payload BYTEA NOT NULL
);
CREATE INDEX records_niss ON records (niss_key, consulted_at);
CREATE INDEX records_member ON records (member_key, consulted_at);
CREATE INDEX records_state ON records (state, dispensed);
CREATE INDEX records_dispensed ON records (dispensed);
CREATE TABLE actors (
    key TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL
);
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    entry TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE TABLE burst (
    pharmacy TEXT NOT NULL,
    patient TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX burst_at ON burst (pharmacy, at);
CREATE TABLE workstations (
    name TEXT PRIMARY KEY,
    enrolled_at TEXT NOT NULL
);
CREATE TABLE spool_delivered (
    workstation TEXT PRIMARY KEY,
    last_mac TEXT NOT NULL,
    entries BIGINT NOT NULL
);
INSERT INTO meta (name, value) VALUES ('record_binding', '\\x32');
""",
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Least privilege for the tool's role (README "Shared store on PostgreSQL"): no DDL, and the
# audit trail is append-only for it.
GRANTS = (
    "GRANT SELECT, INSERT, UPDATE, DELETE ON meta, records, actors, burst, workstations, "
    "spool_delivered TO {role}",
    "GRANT SELECT, INSERT ON audit TO {role}",
    "GRANT SELECT ON schema_version TO {role}",
)

_URL = re.compile(r"postgres(?:ql)?://\S*")


def is_url(value: str) -> bool:
    return _URL.fullmatch(value) is not None


@lru_cache(maxsize=256)
def _translate(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (the store's SQL has no literal ``?``)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - a runtime dependency
        raise InvalidInput(
            "store_url", "driver", N_("PostgreSQL needs the psycopg package: pip install 'psycopg[binary]'")
        ) from None
    return psycopg


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def connect(url: str, *, autocommit: bool = True) -> Any:
    """A psycopg connection; an unreachable server is ``ServiceUnavailable`` (exit 5)."""
    psycopg = _psycopg()
    extra = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT}
    try:
        return psycopg.connect(url, autocommit=autocommit, **extra)
    except psycopg.OperationalError as error:
        raise ServiceUnavailable(
            N_("the shared store {url} cannot be reached: {error}"),
            url=_safe_url(url),
            error=str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
        ) from None
    except psycopg.ProgrammingError as error:
        raise InvalidInput(
            "store_url", "form", N_("not a usable PostgreSQL address: {error}"), error=str(error)
        ) from None


def _lost(raw: Any, url: str, error: Exception) -> ServiceUnavailable:
    """The connection dropped during a command (the server stopped or restarted): exit 5, as
    when it cannot be reached at all."""
    text = str(error).strip()
    return ServiceUnavailable(
        N_("the shared store {url} cannot be reached: {error}"),
        url=_safe_url(url),
        error=text.splitlines()[0] if text else type(error).__name__,
    )


def _broken(raw: Any) -> bool:
    return bool(raw.closed or raw.broken)


class _Connection:
    """psycopg behind the interface the store modules use (``execute`` with ``?``); a
    connection lost meanwhile is ``ServiceUnavailable`` (exit 5), not a crash."""

    def __init__(self, raw: Any, url: str = "") -> None:
        self.raw = raw
        self.url = url

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        psycopg = _psycopg()
        try:
            return self.raw.execute(_translate(sql), tuple(parameters))
        except psycopg.OperationalError as error:
            if _broken(self.raw):
                raise _lost(self.raw, self.url, error) from None
            raise


def schema_version(raw: Any) -> int | None:
    """The schema's version, or None when there is none (never migrated)."""
    row = raw.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row[0]:
        return None
    return raw.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]


def _check_schema(raw: Any, url: str) -> None:
    version = schema_version(raw)
    if version is None or version < SCHEMA_VERSION:
        raise NoDatabase(
            N_("the shared store {url} has schema {found}, this mcn needs {needed}: run mcn store migrate"),
            hint=N_("mcn store migrate (as the database's owner)"),
            url=_safe_url(url),
            found=version or 0,
            needed=SCHEMA_VERSION,
        )
    if version > SCHEMA_VERSION:
        raise DataIntegrity(
            N_("the shared store {url} comes from a newer mcn (schema {found}, this one knows {needed})"),
            url=_safe_url(url),
            found=version,
            needed=SCHEMA_VERSION,
        )


class PgDatabase:
    """The shared store: the same interface as ``store.db.Database``."""

    kind = "postgresql"

    def __init__(
        self, url: str, workstation: str = "", local: Database | None = None, *, offline_ok: bool = False
    ) -> None:
        self.url = url
        self.workstation = workstation
        self._local = local
        self.raw = connect(url)
        self._connection = _Connection(self.raw, url)
        self._depth = 0
        # a consultation or a reuse: when the server goes away during the command (while
        # MyCareNet answers), what it writes next goes to this workstation's spool instead
        self.offline_ok = offline_ok
        self.offline = False
        try:
            _check_schema(self.raw, url)
        except BaseException:
            self.raw.close()
            raise

    @property
    def local(self) -> Database:
        """The workstation's SQLite database: its sessions, the keys' copy and the spool."""
        if self._local is None:
            self._local = Database()
        return self._local

    @property
    def connection(self) -> Any:
        """The shared store's connection; this workstation's spool once the server went away
        during a command that may work offline."""
        return self.local.connection if self.offline else self._connection

    @contextmanager
    def write(self) -> Iterator[Any]:
        """A transaction holding the store's advisory lock: writers queue, as in SQLite.
        Nested, it is a savepoint. When the server went away before the transaction could
        start and the command may work offline (``offline_ok``), the transaction is this
        workstation's spool's, with a warning (delivered when the server is back)."""
        if self.offline:
            with self.local.write() as c:
                yield c
            return
        if self._depth:
            with self.raw.transaction():
                self._depth += 1
                try:
                    yield self._connection
                finally:
                    self._depth -= 1
            return
        psycopg = _psycopg()
        with ExitStack() as stack:
            try:
                stack.enter_context(self.raw.transaction())
                self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            except psycopg.OperationalError as error:
                if not _broken(self.raw):
                    raise
                lost = _lost(self.raw, self.url, error)
                if not self.offline_ok:
                    raise lost from None
                stack.pop_all()
                self._go_offline(lost)
            else:
                self._depth = 1
                try:
                    yield self._connection
                finally:
                    self._depth = 0
                return
        with self.local.write() as c:
            yield c

    def _go_offline(self, lost: ServiceUnavailable) -> None:
        from mcn_cli.domain.messages import Message
        from mcn_cli.store import backend

        self.offline = True
        backend.warn(
            Message(
                N_("{error}; working on this workstation's spool, delivered when the server is back"),
                {"error": lost.as_message()},
            )
        )

    def size_bytes(self) -> int:
        return int(self.raw.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    def describe(self) -> str:
        return _safe_url(self.url)

    def close(self) -> None:
        self.raw.close()
        if self._local is not None:
            self._local.close()
            self._local = None

    def __enter__(self) -> PgDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def migrate(url: str, grant: str | None = None) -> tuple[int, int]:
    """Bring the schema to this program's version (DDL: run as the database's owner) and grant
    the tool's role its least privileges. Returns (version before, version after); refuses a
    schema newer than the program's."""
    if grant is not None and _ROLE.fullmatch(grant) is None:
        raise InvalidInput("grant", "form", N_("must be a PostgreSQL role name, got {value!r}"), value=grant)
    raw = connect(url)
    try:
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK_KEY,))
            raw.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            before = schema_version(raw) or 0
            if before > SCHEMA_VERSION:
                raise DataIntegrity(
                    N_("the shared store {url} comes from a newer mcn (schema {found}, this one knows "
                       "{needed}): upgrade mcn, nothing was changed"),
                    url=_safe_url(url),
                    found=before,
                    needed=SCHEMA_VERSION,
                )
            for version, script in MIGRATIONS:
                if version > before:
                    raw.execute(script)
                    raw.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
            if grant is not None:
                for statement in GRANTS:
                    raw.execute(statement.format(role=grant))
    finally:
        raw.close()
    return before, SCHEMA_VERSION
