"""Which storage backend runs, and opening it: actions/ only ever call these.

The ``store_url`` setting (or ``MCN_STORE_URL``) chooses PostgreSQL, shared by every counter of
the pharmacy; empty means the workstation's SQLite file (the default). With PostgreSQL the
SQLite file still holds this workstation's sessions, a copy of the wrapped keys (so that it can
work while the server is down) and the spool of what was done meanwhile, delivered to the
server by the first command that reaches it again (see ``store.spool``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mcn_cli.domain.errors import ServiceUnavailable
from mcn_cli.domain.messages import N_, Message

if TYPE_CHECKING:  # imported when a store is opened: the command line starts without them
    from mcn_cli.store.db import Store
    from mcn_cli.store.vault import Vault

URL_ENV = "MCN_STORE_URL"
WORKSTATION_ENV = "MCN_WORKSTATION"

# Told when a command falls back to the local spool (cli/ shows it as a warning on stderr).
warn: Callable[[Message], None] = lambda message: None  # noqa: E731


@dataclass(frozen=True)
class Choice:
    url: str  # empty: SQLite
    workstation: str


def _settings_values() -> tuple[str, str]:
    from mcn_cli.store.settings import load

    settings = load()
    return settings.store_url, settings.workstation


def database_file() -> Path:
    from mcn_cli.store.db import database_file as local_file

    return local_file()


def choice() -> Choice:
    url = os.environ.get(URL_ENV, "")
    workstation = os.environ.get(WORKSTATION_ENV, "")
    if not url or not workstation:
        configured_url, configured_workstation = _settings_values()
        url = url or configured_url
        workstation = workstation or configured_workstation
    if url:
        from mcn_cli.store.settings import check_store_url

        check_store_url(url)
    if not workstation:
        import socket

        workstation = socket.gethostname().split(".")[0] or "workstation"
    return Choice(url, workstation)


def is_shared() -> bool:
    return bool(choice().url)


def open_store(*, offline_ok: bool = False) -> Store:
    """The store chosen by the settings. With ``offline_ok`` (a consultation, a reuse) an
    unreachable PostgreSQL falls back to this workstation's spool, with a warning; otherwise it
    is ``ServiceUnavailable`` (exit 5)."""
    from mcn_cli.store.db import Database

    chosen = choice()
    if not chosen.url:
        return Database(database_file())
    from mcn_cli.store.pg import PgDatabase

    try:
        return PgDatabase(chosen.url, chosen.workstation, offline_ok=offline_ok)
    except ServiceUnavailable as error:
        if not offline_ok:
            raise
        local = Database(database_file())
        warn(
            Message(
                N_("{error}; working on this workstation's spool, delivered when the server is back"),
                {"error": error.as_message()},
            )
        )
        return local


def existing_store() -> Store | None:
    """The chosen store when it exists (PostgreSQL always does; SQLite when its file does)."""
    if not is_shared() and not database_file().is_file():
        return None
    return open_store()


def unlock(db: Store, *, create: bool = True) -> Vault:
    """The store's vault, unlocked; on the shared store, whatever this workstation's spool holds
    is delivered first (exactly once), so every counter sees it."""
    from mcn_cli.store import vault as vault_module

    vault = vault_module.unlock(db, create=create)
    if db.kind == "postgresql":
        from mcn_cli.store import spool

        spool.deliver(db, vault, getattr(db, "workstation", "") or choice().workstation)
    return vault
