"""`mcn cache`: the local encrypted cache of consultation answers and payment commitments."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from mcn_cli.cli.output import emit_fields, emit_json, emit_line, emit_table
from mcn_cli.cli.records import Text as RecordText
from mcn_cli.cli.records import cached_json, consultation_rows, patient_label
from mcn_cli.domain.errors import InvalidInput


class Text:
    """Human text of `mcn cache` (translate here)."""

    help = "The local encrypted cache of consultation answers and payment commitments."
    init_help = (
        "Create the cache's keys: a random key in an owner-only key file (default), or a key "
        "derived from a passphrase (prompt, or MCN_CACHE_PASSPHRASE)."
    )
    rekey_help = (
        "Re-encrypt everything under a new key (new key file, or new passphrase from a prompt or "
        "MCN_CACHE_NEW_PASSPHRASE)."
    )
    list_help = "List cached consultations (patients masked unless --reveal)."
    show_help = "Show one cached consultation (patient masked unless --reveal)."
    stats_help = "Counts by billing state, dates, audit entries and file size."
    purge_help = (
        "Delete what billing no longer needs: settled records, records past the maximum retention, "
        "records never invoiced after the grace period; and expired sessions. "
        "Silent on success; made for cron. A data folder without a database is an error (exit 8: "
        "a mistyped MCN_HOME?) and nothing is created."
    )
    if_exists_help = "Exit 0 quietly when there is no database yet (a fresh install)."
    no_database = "no database at {path}: nothing to purge (is MCN_HOME or the data folder right?)"
    no_database_hint = "on a fresh install with nothing cached yet, use mcn cache purge --if-exists"
    passphrase_help = "Protect the keys with a passphrase instead of a key file."
    key_file_help = "Protect the keys with a new key file (the default unless --passphrase)."
    reveal_help = "Show NISS, membership numbers and names in full."
    state_help = "Only records in this billing state: open, invoiced."
    record_help = "The record id (from mcn cache list)."
    json_help = "Print JSON."
    initialised_file = (
        "cache initialised; its key is in {path}: back it up, without it the cache cannot be read"
    )
    initialised_passphrase = (
        "cache initialised; its key is derived from your passphrase: without it the cache cannot be read"
    )
    rekeyed = "re-encrypted {count} records under a new key"
    empty = "the cache is empty"
    no_record = "no cache record {id}"
    headers = ("ID", "CONSULTED", "DISPENSED", "PATIENT", "CT1/CT2", "COVERAGE", "STATE")
    stats_title = "Cache"


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]
Reveal = Annotated[bool, typer.Option("--reveal", help=Text.reveal_help)]


@app.command("init", help=Text.init_help)
def init(
    passphrase: Annotated[bool, typer.Option("--passphrase", help=Text.passphrase_help)] = False,
    json: Json = False,
) -> None:
    from mcn_cli.actions.local import open_database
    from mcn_cli.store import vault

    with open_database() as db:
        vault.initialise(db, use_passphrase=passphrase)
    if json:
        emit_json(
            {
                "initialised": True,
                "protection": "passphrase" if passphrase else "file",
                "key_file": None if passphrase else str(vault.key_file()),
            }
        )
    elif passphrase:
        emit_line(Text.initialised_passphrase)
    else:
        emit_line(Text.initialised_file.format(path=vault.key_file()))


@app.command("rekey", help=Text.rekey_help)
def rekey(
    passphrase: Annotated[bool, typer.Option("--passphrase", help=Text.passphrase_help)] = False,
    key_file: Annotated[bool, typer.Option("--key-file", help=Text.key_file_help)] = False,
    json: Json = False,
) -> None:
    from mcn_cli.actions.local import open_database
    from mcn_cli.store import sessions, vault
    from mcn_cli.store.cache import CommitmentCache

    if passphrase and key_file:
        raise InvalidInput("rekey", "one-protection", "give --passphrase or --key-file, not both")

    counted: list[int] = []
    with open_database() as db:
        current = vault.protection_of(db)
        if current is None:
            raise InvalidInput("cache", "not-initialised", "the cache is not initialised: run mcn cache init")
        use_passphrase = passphrase or (current.kind == "passphrase" and not key_file)

        def reencrypt(old: vault.Vault, new: vault.Vault) -> None:
            counted.append(CommitmentCache(db, old).reencrypt(old, new))
            sessions.reencrypt(db, old, new)

        vault.rekey(
            db,
            reencrypt,
            use_passphrase=use_passphrase,
        )
    if json:
        emit_json({"rekeyed": counted[0], "protection": "passphrase" if use_passphrase else "file"})
    else:
        emit_line(Text.rekeyed.format(count=counted[0]))


@app.command("list", help=Text.list_help)
def list_records(
    state: Annotated[str | None, typer.Option("--state", help=Text.state_help, show_default=False)] = None,
    reveal: Reveal = False,
    json: Json = False,
) -> None:
    from mcn_cli.actions.local import cache_if_initialised

    if state is not None and state not in ("open", "invoiced"):
        raise InvalidInput("state", "choice", f"must be open or invoiced, got {state!r}")
    cache = cache_if_initialised()
    records = cache.all(state) if cache else []
    if json:
        emit_json([cached_json(r, reveal) for r in records])
        return
    if not records:
        emit_line(Text.empty)
        return
    rows = []
    for r in records:
        c = r.consultation
        commitment = c.commitment
        rows.append(
            (
                r.id,
                c.consulted_at.astimezone().strftime("%Y-%m-%d %H:%M"),
                c.dispensed,
                patient_label(c.care_receiver, reveal),
                commitment.entitlement if commitment else "-",
                f"{commitment.coverage.start}..{commitment.coverage.end}" if commitment else "-",
                r.state,
            )
        )
    emit_table(Text.headers, rows)


@app.command("show", help=Text.show_help)
def show(
    record: Annotated[str, typer.Argument(help=Text.record_help, show_default=False)],
    reveal: Reveal = False,
    json: Json = False,
) -> None:
    from mcn_cli.actions.local import cache_if_initialised

    cache = cache_if_initialised()
    cached = cache.get(record.strip()) if cache else None
    if cached is None:
        raise InvalidInput("record", "unknown", Text.no_record.format(id=record))
    if json:
        emit_json(cached_json(cached, reveal))
        return
    rows = [
        ("id", cached.id),
        (RecordText.state, cached.state),
        *consultation_rows(cached.consultation, reveal),
    ]
    emit_fields(rows)


@app.command("stats", help=Text.stats_help)
def stats(json: Json = False) -> None:
    from mcn_cli.actions.local import open_database
    from mcn_cli.store import cache

    with open_database() as db:
        figures = cache.stats(db)
    if json:
        emit_json(
            {
                "records": figures.by_state,
                "oldest_dispensed": figures.oldest_dispensed,
                "newest_consulted": figures.newest_consulted,
                "audit_entries": figures.audit_entries,
                "file_bytes": figures.file_bytes,
            }
        )
        return
    emit_fields(
        [
            ("open", figures.by_state["open"]),
            ("invoiced", figures.by_state["invoiced"]),
            ("oldest dispensing", figures.oldest_dispensed or "-"),
            ("newest consultation", (figures.newest_consulted or "-")[:16].replace("T", " ")),
            ("audit entries", figures.audit_entries),
            ("size on disk", f"{figures.file_bytes / 1024:.0f} KiB"),
        ],
        Text.stats_title,
    )


@app.command("purge", help=Text.purge_help)
def purge(
    if_exists: Annotated[bool, typer.Option("--if-exists", help=Text.if_exists_help)] = False,
    json: Json = False,
) -> None:
    from mcn_cli.actions.local import existing_database
    from mcn_cli.store import cache, sessions
    from mcn_cli.store.db import database_file
    from mcn_cli.store.settings import load

    settings = load()
    db = existing_database()  # never creates one: a cron job on a mistyped MCN_HOME must hear of it
    if db is None:
        if not if_exists:
            _no_database(database_file())
        counts, expired_sessions = cache.PurgeCounts(), 0
    else:
        with db:
            counts = cache.purge(
                db, date.today(), settings.cache_retention_months, settings.uninvoiced_grace_days
            )
            expired_sessions = sessions.drop_expired(db)
    if json:
        emit_json(
            {
                "purged": counts.total,
                "settled": counts.settled,
                "expired": counts.expired,
                "uninvoiced": counts.uninvoiced,
                "sessions": expired_sessions,
            }
        )


def _no_database(path: Path) -> NoReturn:
    from mcn_cli.domain.errors import NoDatabase

    raise NoDatabase(Text.no_database.format(path=path), hint=Text.no_database_hint)
