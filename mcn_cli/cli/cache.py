"""`mcn cache`: the local encrypted cache of consultation answers and payment commitments."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, ClassVar, NoReturn

import typer

from mcn_cli.cli.i18n import _, day, moment
from mcn_cli.cli.output import emit_fields, emit_json, emit_line, emit_table
from mcn_cli.cli.records import Text as RecordText
from mcn_cli.cli.records import cached_json, consultation_rows, patient_label
from mcn_cli.domain.errors import DataIntegrity, InvalidInput, KeyLost
from mcn_cli.domain.messages import N_


class Text:
    """Human text of `mcn cache` (translate here)."""

    help = _("The local encrypted cache of consultation answers and payment commitments.")
    init_help = _(
        "Create the cache's keys: a random key in an owner-only key file (default), or a key "
        "derived from a passphrase (prompt, or MCN_CACHE_PASSPHRASE)."
    )
    rekey_help = _(
        "Re-encrypt everything under a new key (new key file, or new passphrase from a prompt or "
        "MCN_CACHE_NEW_PASSPHRASE)."
    )
    list_help = _("List cached consultations (patients masked unless --reveal).")
    show_help = _("Show one cached consultation (patient masked unless --reveal).")
    stats_help = _("Counts by billing state, dates, audit entries and file size.")
    purge_help = _(
        "Delete what billing no longer needs: settled records, records past the maximum retention, "
        "records never invoiced after the grace period; and expired sessions. "
        "Silent on success; made for cron. A data folder without a database is an error (exit 8: "
        "a mistyped MCN_HOME?) and nothing is created."
    )
    if_exists_help = _("Exit 0 quietly when there is no database yet (a fresh install).")
    passphrase_help = _("Protect the keys with a passphrase instead of a key file.")
    key_file_help = _("Protect the keys with a new key file (the default unless --passphrase).")
    reveal_help = _("Show NISS, membership numbers and names in full.")
    state_help = _("Only records in this billing state: open, invoiced.")
    record_help = _("The record id (from mcn cache list).")
    json_help = _("Print JSON.")
    initialised_file = _(
        "cache initialised; its key is in {path}: back it up, without it the cache cannot be read"
    )
    initialised_passphrase = _(
        "cache initialised; its key is derived from your passphrase: without it the cache cannot be read"
    )
    rekeyed = _("re-encrypted {count} records under a new key")
    empty = _("the cache is empty")
    headers = (_("ID"), _("CONSULTED"), _("DISPENSED"), _("PATIENT"), _("CT1/CT2"), _("COVERAGE"), _("STATE"))
    span = _("{start} → {end}")
    stats_title = _("Cache")
    states: ClassVar[dict[str, str]] = {"open": _("open"), "invoiced": _("invoiced"), "settled": _("settled")}
    open_label = _("open")
    invoiced_label = _("invoiced")
    oldest_label = _("oldest dispensing")
    newest_label = _("newest consultation")
    audit_label = _("audit entries")
    size_label = _("size on disk")
    size = _("{size} KiB")
    # errors: English source text (N_), shown translated, English in --json
    no_database = N_("no database at {path}: nothing to purge (is MCN_HOME or the data folder right?)")
    no_database_hint = N_("on a fresh install with nothing cached yet, use mcn cache purge --if-exists")
    no_record = N_("no cache record {id}")
    one_protection = N_("give --passphrase or --key-file, not both")
    not_initialised = N_("the cache is not initialised: run mcn cache init")
    state_choice = N_("must be open or invoiced, got {value!r}")
    # the cache's key lost or wrong (store/vault.py says what is wrong; this says the way out)
    key_lost_hint = N_(
        "restore the key file {key_file} from your backup (owner-only: chmod 600 {key_file}); without a "
        "backup, start a new cache: move {database} aside (and {key_file}, if it is there), then run "
        "mcn cache init. The cached payment commitments and the audit trail under the lost key can no "
        "longer be read, and the open sessions are lost (log in again)"
    )
    passphrase_lost_hint = N_(
        "give the passphrase set by mcn cache init or the last mcn cache rekey (MCN_CACHE_PASSPHRASE or "
        "the prompt); if it is lost, start a new cache: move {database} aside, then run mcn cache init. "
        "The cached payment commitments and the audit trail under the lost passphrase can no longer be "
        "read, and the open sessions are lost (log in again)"
    )


def key_recovery(error: DataIntegrity) -> bool:
    """When ``error`` says the cache's key is lost or wrong, give it the hint of the way out
    (restore the key from the backup, or start a new cache and lose what the old one held).
    True when it did."""
    from mcn_cli.store import vault
    from mcn_cli.store.db import database_file

    if error.hint_id is not None or not isinstance(error, KeyLost):
        return False
    database = database_file()
    protection = None
    if error.wrong and database.is_file():
        try:
            from mcn_cli.actions.local import open_database

            with open_database() as db:
                protection = vault.protection_of(db)
        except Exception:  # the hint is a help: the error itself is what counts
            protection = None
    passphrase = protection is not None and protection.kind == "passphrase"
    error.params = {**error.params, "key_file": vault.key_file(), "database": database}
    error.hint = Text.passphrase_lost_hint if passphrase else Text.key_lost_hint
    return True


@contextmanager
def recovering_key() -> Iterator[None]:
    """Commands that unlock the cache: a lost or wrong key comes with the way out."""
    try:
        yield
    except DataIntegrity as error:
        key_recovery(error)
        raise


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

    with recovering_key(), open_database() as db:
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
        raise InvalidInput("rekey", "one-protection", Text.one_protection)

    counted: list[int] = []
    with recovering_key(), open_database() as db:
        current = vault.protection_of(db)
        if current is None:
            raise InvalidInput("cache", "not-initialised", Text.not_initialised)
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
        raise InvalidInput("state", "choice", Text.state_choice, value=state)
    with recovering_key():
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
                moment(c.consulted_at),
                day(c.dispensed),
                patient_label(c.care_receiver, reveal),
                commitment.entitlement if commitment else "-",
                Text.span.format(start=day(commitment.coverage.start), end=day(commitment.coverage.end))
                if commitment
                else "-",
                Text.states.get(r.state, r.state),
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

    with recovering_key():
        cache = cache_if_initialised()
        cached = cache.get(record.strip()) if cache else None
    if cached is None:
        raise InvalidInput("record", "unknown", Text.no_record, id=record)
    if json:
        emit_json(cached_json(cached, reveal))
        return
    rows = [
        ("id", cached.id),
        (RecordText.state, Text.states.get(cached.state, cached.state)),
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
            (Text.open_label, figures.by_state["open"]),
            (Text.invoiced_label, figures.by_state["invoiced"]),
            (Text.oldest_label, _day_text(figures.oldest_dispensed)),
            (Text.newest_label, _moment_text(figures.newest_consulted)),
            (Text.audit_label, figures.audit_entries),
            (Text.size_label, Text.size.format(size=f"{figures.file_bytes / 1024:.0f}")),
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

    raise NoDatabase(Text.no_database, hint=Text.no_database_hint, path=path)


def _day_text(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return day(date.fromisoformat(iso[:10]))
    except ValueError:
        return iso


def _moment_text(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return moment(datetime.fromisoformat(iso))
    except ValueError:
        return iso
