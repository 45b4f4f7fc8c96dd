"""The workstation's side of the shared store: a copy of the keys, and the spool.

With PostgreSQL, the workstation's SQLite file keeps a copy of the wrapped keys (``mirror``,
refreshed each time the shared vault is unlocked): when the server cannot be reached, a
consultation or a reuse still works on this file, which is then the spool — its answer, sealed
as usual, and its audit entries wait there. ``deliver`` (run by the first command that reaches
the server again) moves them exactly once: the records as they are (sealed bytes, same id), the
audit entries appended to the shared chain (with the workstation's name and their local
number), all in one transaction that also records the last local entry delivered, so that a
crash between the server's commit and the local clean-up never delivers anything twice.

Local audit entries up to ``spool_after`` (meta) are this workstation's history from before the
shared store: ``mcn store copy`` moves those, not the spool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.store import audit
from mcn_cli.store.db import Database, Store
from mcn_cli.store.vault import Vault

_AFTER = "spool_after"  # meta: local audit entries up to this number are not the spool's
_SHARED = "keys_shared"  # meta: the keys here are a copy of the shared store's
_ID = "spool_id"  # meta: this file's spool, as the server's spool_delivered knows it


def _own_data(local: Database) -> bool:
    """The file was a store of its own (its keys not a copy) and holds what they seal."""
    c = local.connection
    if c.execute("SELECT 1 FROM meta WHERE name = ?", (_SHARED,)).fetchone() is not None:
        return False
    return (
        c.execute("SELECT 1 FROM records LIMIT 1").fetchone() is not None
        or c.execute("SELECT 1 FROM audit LIMIT 1").fetchone() is not None
    )


def _after(local: Database) -> int | None:
    row = local.connection.execute("SELECT value FROM meta WHERE name = ?", (_AFTER,)).fetchone()
    return None if row is None else int(bytes(row[0]).decode())


def _set_after(c: Any, seq: int) -> None:
    c.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (_AFTER, str(seq).encode()),
    )


def _head(c: Any) -> int:
    return int(c.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0])


def guard(shared: Store) -> None:
    """Refuse to take this workstation's file over while it holds its own records or trail (it
    was a store of its own): those must be copied into the shared store first."""
    local = shared.local
    if _own_data(local):
        raise InvalidInput(
            "store_url",
            "local-data",
            N_("this workstation's own cache {path} holds records or audit entries under other "
               "keys: copy it first (mcn store copy --from sqlite:{path} --to the shared store) "
               "or move it aside"),
            path=local.path,
        )


def mirror(shared: Store, vault: Vault) -> None:
    """Keep this workstation's copy of the shared wrapped keys current. When they changed (a
    rekey on another counter), this workstation's sessions are re-sealed under the new key when
    the old copy still opens, else deleted (log in again)."""
    from mcn_cli.store import vault as vault_module

    local = shared.local
    keys = vault_module.stored_keys(shared)
    if keys is None:
        return
    copy = vault_module.stored_keys(local)
    if copy == keys:
        return
    old: Vault | None = None
    if copy is not None:
        try:
            old = vault_module.unlock(local, create=False, passphrase=lambda confirm: _no_passphrase())
        except Exception:  # the old copy cannot be opened here: its sessions are dropped below
            old = None
        if old is None or old.pseudonym_key != vault.pseudonym_key:
            guard(shared)
    with local.write() as c:
        vault_module.put_keys(local, *keys)
        c.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (_SHARED, b"1")
        )
        if _after(local) is None:
            _set_after(c, _head(c))
    if copy is not None and (old is None or old.data_key != vault.data_key):
        reseal_local(local, old, vault)


def reseal_local(local: Database, old: Vault | None, new: Vault) -> None:
    """After a rekey made on another counter: this workstation's sessions, and what its spool
    holds, re-sealed under ``new`` when ``old`` opens them. Sessions neither key opens are
    dropped (log in again); spooled records are left as they are (``deliver`` refuses them)."""
    from mcn_cli.domain.errors import DataIntegrity
    from mcn_cli.store import sessions
    from mcn_cli.store.cache import _COLUMNS, _record

    sessions.resync(local, old, new)
    if old is None:
        return
    with local.write() as c:
        for row in c.execute(f"SELECT {_COLUMNS} FROM records").fetchall():
            record = _record(row)
            try:
                new.open(record.payload, record.aad)
                continue
            except DataIntegrity:
                pass
            try:
                plain = old.open(record.payload, record.aad)
            except DataIntegrity:
                continue
            c.execute("UPDATE records SET payload = ? WHERE id = ?", (new.seal(plain, record.aad), record.id))
        for key, sealed in c.execute("SELECT key, sealed FROM actors").fetchall():
            aad = f"actor|{key}".encode()
            try:
                new.open(bytes(sealed), aad)
                continue
            except DataIntegrity:
                pass
            try:
                plain = old.open(bytes(sealed), aad)
            except DataIntegrity:
                continue
            c.execute("UPDATE actors SET sealed = ? WHERE key = ?", (new.seal(plain, aad), key))


def settle_history(local: Database) -> None:
    """This workstation's trail so far was copied into the shared store (``mcn store copy``):
    the spool starts after it."""
    with local.write() as c:
        _set_after(c, _head(c))


def _no_passphrase() -> str:
    import os

    from mcn_cli.store.vault import PASSPHRASE_ENV

    return os.environ.get(PASSPHRASE_ENV, "")


@dataclass(frozen=True)
class Waiting:
    """What the spool holds for the shared store."""

    entries: int
    records: int
    oldest: str | None


def waiting(local: Database) -> Waiting:
    after = _after(local)
    if after is None:
        return Waiting(0, 0, None)
    rows = local.connection.execute(
        "SELECT entry FROM audit WHERE seq > ? ORDER BY seq", (after,)
    ).fetchall()
    parsed = [json.loads(text) for (text,) in rows]
    records = {
        e.get("record") for e in parsed if e.get("event") == audit.Event.CONSULTATION and e.get("record")
    }
    present = sum(
        1 for r in records
        if local.connection.execute("SELECT 1 FROM records WHERE id = ?", (r,)).fetchone() is not None
    )
    return Waiting(len(parsed), present, parsed[0]["at"] if parsed else None)


def _spool_id(local: Database) -> str:
    """This file's spool, named for the server's ``spool_delivered``: a random name kept in the
    file, not the workstation's, which two counters may share (the host name by default) and
    which may change between a delivery and its retry."""
    import secrets

    with local.write() as c:
        c.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (_ID, ("spool-" + secrets.token_hex(12)).encode()),
        )
        row = c.execute("SELECT value FROM meta WHERE name = ?", (_ID,)).fetchone()
    return bytes(row[0]).decode()


_RECORD_COLUMNS = (
    "id, niss_key, member_key, consulted_at, dispensed, coverage_start, coverage_end, reusable_until, "
    "pharmacy, state, invoiced_at, binding, payload"
)


def deliver(shared: Store, vault: Vault, workstation: str) -> int:
    """Move the spool to the shared store, exactly once; returns the number of audit entries."""
    local = shared.local
    after = _after(local)
    if after is None:
        return 0
    rows = local.connection.execute(
        "SELECT seq, entry, mac FROM audit WHERE seq > ? ORDER BY seq", (after,)
    ).fetchall()
    if not rows:
        return 0
    # the spool's records, all of them: after a crash some may be on the server already
    delivered_records = [
        e["record"] for e in (json.loads(text) for _, text, _ in rows)
        if e.get("record") and e.get("event") == audit.Event.CONSULTATION
    ]
    last_local = int(rows[-1][0])
    spool_id = _spool_id(local)
    with shared.write() as c:
        done = c.execute(
            "SELECT last_mac, entries FROM spool_delivered WHERE workstation = ?", (spool_id,)
        ).fetchone()
        total = 0 if done is None else int(done[1])
        if done is not None:
            macs = [mac for _, _, mac in rows]
            if done[0] in macs:  # delivered before the local clean-up could run: skip those
                rows = rows[macs.index(done[0]) + 1 :]
        for seq, text, _mac in rows:
            entry = audit.AuditEntry(**json.loads(text))
            if entry.record and entry.event == audit.Event.CONSULTATION:
                row = local.connection.execute(
                    f"SELECT {_RECORD_COLUMNS} FROM records WHERE id = ?", (entry.record,)
                ).fetchone()
                if row is not None:
                    from mcn_cli.store.cache import _record
                    from mcn_cli.store.vault import record_name

                    record = _record(row)  # it must open under the shared key: else deliver nothing
                    vault.open(record.payload, record.aad, record_name(record.id))
                    c.execute(
                        f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES ({', '.join('?' * 13)}) "
                        "ON CONFLICT (id) DO NOTHING",
                        (*row[:-1], bytes(row[-1])),
                    )
            if entry.actor:
                actor = local.connection.execute(
                    "SELECT sealed FROM actors WHERE key = ?", (entry.actor,)
                ).fetchone()
                if actor is not None:
                    c.execute(
                        "INSERT INTO actors (key, sealed) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                        (entry.actor, bytes(actor[0])),
                    )
            extra = dict(entry.extra, workstation=workstation, spooled=seq)
            audit.reappend(vault, c, replace(entry, extra=extra))
        last_mac = rows[-1][2] if rows else (done[0] if done else "")
        c.execute(
            "INSERT INTO spool_delivered (workstation, last_mac, entries) VALUES (?, ?, ?) "
            "ON CONFLICT (workstation) DO UPDATE "
            "SET last_mac = excluded.last_mac, entries = excluded.entries",
            (spool_id, last_mac, total + len(rows)),
        )
    with local.write() as lc:
        for record in delivered_records:
            lc.execute("DELETE FROM records WHERE id = ?", (record,))
        _set_after(lc, last_local)
    return len(rows)
