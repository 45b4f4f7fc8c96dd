"""Opening the local database and its vault, the way every command does it."""

from __future__ import annotations

from mcn_cli.store import vault as vault_module
from mcn_cli.store.cache import CommitmentCache
from mcn_cli.store.db import Database, database_file


def open_database() -> Database:
    return Database(database_file())


def open_cache(*, create: bool = True) -> CommitmentCache:
    """The cache, unlocked; on first use a vault with a key file is created."""
    db = open_database()
    return CommitmentCache(db, vault_module.unlock(db, create=create))


def cache_if_initialised() -> CommitmentCache | None:
    """The unlocked cache, or None when nothing was ever stored (no key to ask for, nothing created)."""
    if not database_file().exists():
        return None
    db = open_database()
    if not vault_module.is_initialised(db):
        db.close()
        return None
    return CommitmentCache(db, vault_module.unlock(db, create=False))


def existing_database() -> Database | None:
    """The local database when its file exists, else None: nothing is created (mcn cache purge)."""
    if not database_file().is_file():
        return None
    return open_database()
