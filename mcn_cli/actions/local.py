"""Opening the store and its vault, the way every command does it (store.backend chooses
SQLite or the shared PostgreSQL store; nothing here knows which)."""

from __future__ import annotations

from mcn_cli.store import backend
from mcn_cli.store import vault as vault_module
from mcn_cli.store.cache import CommitmentCache
from mcn_cli.store.db import Store


def open_database() -> Store:
    return backend.open_store()


def open_cache(*, create: bool = True) -> CommitmentCache:
    """The cache, unlocked; on first use a vault with a key file is created."""
    db = open_database()
    return CommitmentCache(db, backend.unlock(db, create=create))


def cache_if_initialised(*, offline_ok: bool = False) -> CommitmentCache | None:
    """The unlocked cache, or None when nothing was ever stored (no key to ask for, nothing created).
    ``offline_ok``: a consultation or a reuse may work on the spool while the shared store is down."""
    if not backend.is_shared() and not backend.database_file().exists():
        return None
    db = backend.open_store(offline_ok=offline_ok)
    if not vault_module.is_initialised(db):
        db.close()
        return None
    return CommitmentCache(db, backend.unlock(db, create=False))


def existing_database() -> Store | None:
    """The store when it exists, else None: nothing is created (mcn cache purge)."""
    return backend.existing_store()
