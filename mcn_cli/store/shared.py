"""Looking after the shared store: enrolling a workstation, its status, copying a workstation's
SQLite cache and audit trail into it (``mcn store enrol|status|copy``; ``migrate`` is store.pg's)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from mcn_cli.domain.errors import DataIntegrity, InvalidInput, McnError
from mcn_cli.domain.messages import N_
from mcn_cli.store import audit, backend, spool
from mcn_cli.store import vault as vault_module
from mcn_cli.store.db import Database
from mcn_cli.store.vault import PHARMACIST_RECORD, record_name


def _needs_shared() -> backend.Choice:
    chosen = backend.choice()
    if not chosen.url:
        raise InvalidInput(
            "store_url",
            "missing",
            N_("no shared store is set: put store_url in config.toml or set MCN_STORE_URL"),
        )
    return chosen


@dataclass(frozen=True)
class Enrolment:
    workstation: str
    store: str
    workstations: tuple[str, ...]
    key_file: str | None  # where the key file copy was put, when one was given


def enrol(key_file: Path | None = None) -> Enrolment:
    """Add this workstation to the shared store: it must open the shared keys (with a copy of
    the key file, or the shared passphrase), then it keeps their copy and is listed."""
    from mcn_cli.store.pg import PgDatabase

    chosen = _needs_shared()
    placed: str | None = None
    with PgDatabase(chosen.url, chosen.workstation) as db:
        keys = vault_module.stored_keys(db)
        if keys is None:
            raise InvalidInput(
                "store",
                "not-initialised",
                N_("the shared store has no keys yet: run mcn cache init on the first workstation"),
            )
        if key_file is not None:
            if vault_module.Protection.from_json(keys[0].decode()).kind != "file":
                raise InvalidInput(
                    "key-file", "passphrase", N_("the shared store's keys are protected by a passphrase")
                )
            before = _local_vault()  # the keys this workstation had, to re-seal its own data
            placed = str(_place_key_file(key_file.expanduser(), keys[1]))
            if before is not None:
                fresh = vault_module._unwrap(vault_module.read_key_file(Path(placed)), keys[1])
                if fresh.data_key != before.data_key:
                    spool.reseal_local(db.local, before, fresh)
        backend.unlock(db, create=False)  # keeps the keys' copy and delivers any spool
        with db.write() as c:
            c.execute(
                "INSERT INTO workstations (name, enrolled_at) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET enrolled_at = excluded.enrolled_at",
                (chosen.workstation, datetime.now(UTC).isoformat(timespec="seconds")),
            )
        names = tuple(r[0] for r in db.connection.execute("SELECT name FROM workstations ORDER BY name"))
        return Enrolment(chosen.workstation, db.describe(), names, placed)


def _local_vault() -> vault_module.Vault | None:
    """This workstation's copy of the keys, unlocked as they are now, if it can be."""
    if not backend.database_file().exists():
        return None
    with Database() as local:
        if not vault_module.is_initialised(local):
            return None
        try:
            return vault_module.unlock(local, create=False)
        except McnError:
            return None


def _opens(key: bytes, blob: bytes) -> bool:
    try:
        vault_module._unwrap(key, blob)
    except DataIntegrity:
        return False
    return True


def _place_key_file(copy: Path, blob: bytes) -> Path:
    """Put a copy of the shared key file in place (owner-only) once it is shown to open the
    shared keys; a key file already there is replaced only when it no longer opens them (the
    store was rekeyed on another counter)."""
    key = vault_module.read_key_file(copy)
    if not _opens(key, blob):
        raise InvalidInput(
            "key-file", "wrong-key", N_("{path} does not open the shared store's keys"), path=copy
        )
    target = vault_module.key_file()
    if not target.exists():
        vault_module.write_key_file(target, key)
    elif vault_module.read_key_file(target) != key:  # it cannot open them: only one key does
        vault_module.write_key_file(target, key, replace=True)
    return target


@dataclass(frozen=True)
class Status:
    backend: str  # "sqlite" or "postgresql"
    store: str
    workstation: str
    reachable: bool
    error: str | None
    schema: int | None
    records: int | None
    audit_entries: int | None
    workstations: tuple[str, ...]
    waiting: spool.Waiting


def status() -> Status:
    """Which store, whether it can be reached, and what waits in this workstation's spool."""
    from mcn_cli.store import pg

    chosen = backend.choice()
    local = Database() if backend.database_file().exists() else None
    try:
        waiting = spool.waiting(local) if local is not None and chosen.url else spool.Waiting(0, 0, None)
    finally:
        if local is not None:
            local.close()
    if not chosen.url:
        here = str(backend.database_file())
        return Status("sqlite", here, chosen.workstation, True, None, None, None, None, (), waiting)
    try:
        raw = pg.connect(chosen.url)
    except McnError as error:
        return Status("postgresql", pg._safe_url(chosen.url), chosen.workstation, False, error.message, None,
                      None, None, (), waiting)
    try:
        version = pg.schema_version(raw)
        records = entries = None
        names: tuple[str, ...] = ()
        if version == pg.SCHEMA_VERSION:
            records = int(raw.execute("SELECT COUNT(*) FROM records").fetchone()[0])
            entries = int(raw.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
            names = tuple(r[0] for r in raw.execute("SELECT name FROM workstations ORDER BY name"))
    finally:
        raw.close()
    return Status("postgresql", pg._safe_url(chosen.url), chosen.workstation, True, None, version, records,
                  entries, names, waiting)


@dataclass(frozen=True)
class Copied:
    records: int
    entries: int
    actors: int
    source_head: str
    target_entries: int
    target_head: str


def _source_path(source: str) -> Path:
    if not source.startswith("sqlite:"):
        raise InvalidInput("from", "form", N_("must be sqlite:PATH, got {value!r}"), value=source)
    path = Path(source.removeprefix("sqlite:")).expanduser()
    if not path.is_file():
        raise InvalidInput("from", "missing", N_("no SQLite store at {path}"), path=path)
    return path


def copy(source: str, target: str, workstation: str | None = None) -> Copied:
    """Move a workstation's SQLite cache and audit trail into a (migrated) PostgreSQL store, in
    one transaction: the source's chain is verified first, the target's after; the records keep
    their seal, the entries are appended to the shared chain (naming where they come from).
    The target takes the source's keys when it has none yet, else must hold the same keys."""
    from mcn_cli.store import pg

    if not pg.is_url(target):
        raise InvalidInput("to", "form", N_("must be a postgresql:// address"))
    path = _source_path(source)
    name = workstation or backend.choice().workstation
    with Database(path) as src, pg.PgDatabase(target, name, local=None) as dst:
        if not vault_module.is_initialised(src):
            raise InvalidInput("from", "empty", N_("the SQLite store at {path} has no keys: nothing to copy"),
                               path=path)
        source_vault = vault_module.unlock(src, create=False)
        checked = audit.verify(source_vault, src.connection)
        if not checked.intact:
            raise DataIntegrity(
                N_("the audit trail of {path} is broken at entry {seq}: nothing was copied "
                   "(mcn audit verify)"),
                path=path,
                seq=checked.breaks[0].seq,
            )
        marker = "copied:" + hashlib.sha256(checked.head.encode()).hexdigest()[:32]
        records = entries = actors = 0
        with dst.write() as c:
            if c.execute("SELECT 1 FROM meta WHERE name = ?", (marker,)).fetchone() is not None:
                raise InvalidInput(
                    "from", "copied", N_("{path} was already copied into this store"), path=path
                )
            keys = vault_module.stored_keys(dst)
            if keys is None:
                vault_module.put_keys(dst, *vault_module.stored_keys(src))  # type: ignore[misc]
                target_vault = source_vault
            else:
                try:
                    target_vault = vault_module.unlock(dst, create=False)
                except DataIntegrity:  # the source's key does not open the shared keys
                    target_vault = None
                if target_vault is None or target_vault.pseudonym_key != source_vault.pseudonym_key:
                    raise InvalidInput(
                        "from",
                        "other-keys",
                        N_("{path} was made with other keys than the shared store's: its pseudonyms "
                           "cannot join the shared trail"),
                        path=path,
                    )
            from mcn_cli.store.cache import _COLUMNS, _FIELDS, _record

            for row in src.connection.execute(f"SELECT {_COLUMNS} FROM records").fetchall():
                record = _record(row)
                if target_vault.data_key != source_vault.data_key:
                    plain = source_vault.open(record.payload, record.aad, record_name(record.id))
                    record = replace(record, payload=target_vault.seal(plain, record.aad))
                else:
                    source_vault.open(record.payload, record.aad, record_name(record.id))  # checked
                c.execute(
                    f"INSERT INTO records ({_COLUMNS}) VALUES ({', '.join('?' * len(_FIELDS))})",
                    tuple(getattr(record, f) for f in _FIELDS),
                )
                records += 1
            for key, sealed in src.connection.execute("SELECT key, sealed FROM actors").fetchall():
                aad = f"actor|{key}".encode()
                plain = source_vault.open(bytes(sealed), aad, PHARMACIST_RECORD)
                c.execute(
                    "INSERT INTO actors (key, sealed) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (key, target_vault.seal(plain, aad)),
                )
                actors += 1
            for seq, text in src.connection.execute("SELECT seq, entry FROM audit ORDER BY seq").fetchall():
                entry = audit.AuditEntry(**json.loads(text))
                audit.reappend(target_vault, c, replace(entry, extra=dict(entry.extra, copied_from=name,
                                                                           copied_seq=seq)))
                entries += 1
            c.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (marker, str(path).encode()))
        after = audit.verify(target_vault, dst.connection)
        if not after.intact:  # pragma: no cover - the copy is one transaction on a verified chain
            raise DataIntegrity(N_("the shared audit trail is broken after the copy: run mcn audit verify"))
        if path.resolve() == backend.database_file().resolve():
            spool.settle_history(src)
        return Copied(records, entries, actors, checked.head, after.entries, after.head)
