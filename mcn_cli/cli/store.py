"""`mcn store`: the shared store on PostgreSQL (migrate, enrol a workstation, status, copy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcn_cli.cli.i18n import _
from mcn_cli.cli.output import emit_fields, emit_json, emit_line


class Text:
    """Human text of `mcn store` (translate here)."""

    help = _(
        "The shared store: one pharmacy's cache and audit trail on PostgreSQL for every counter "
        "(store_url or MCN_STORE_URL; SQLite on this workstation otherwise)."
    )
    migrate_help = _(
        "Create or upgrade the shared store's tables (run as the database's owner); refused when "
        "the database comes from a newer mcn."
    )
    url_help = _("The owner's address (default: store_url or MCN_STORE_URL).")
    grant_help = _("Grant this role the tool's least privileges (see README).")
    enrol_help = _(
        "Add this workstation to the shared store: it opens the shared keys with a copy of the key "
        "file (--key-file) or the shared passphrase (MCN_CACHE_PASSPHRASE or a prompt)."
    )
    key_file_help = _("A copy of the shared store's key file, put in place owner-only.")
    status_help = _("Which store is used, whether it answers, and what waits in this workstation's spool.")
    copy_help = _(
        "Copy a workstation's SQLite cache and audit trail into a PostgreSQL store (chains "
        "verified before and after)."
    )
    from_help = _("The source: sqlite:PATH.")
    to_help = _("The target: a postgresql:// address (migrated).")
    json_help = _("Print JSON.")
    migrated = _("schema at version {after} (was {before})")
    enrolled = _("workstation {name} enrolled in {store}; workstations: {names}")
    key_placed = _("key file copied to {path}")
    copied = _(
        "copied {records} records, {entries} audit entries and {actors} pharmacists; "
        "shared trail intact: {total} entries, head {head}"
    )
    title = _("Store")
    backend = _("backend")
    store = _("store")
    workstation = _("workstation")
    reachable = _("reachable")
    schema = _("schema")
    records = _("records")
    entries = _("audit entries")
    workstations = _("workstations")
    waiting = _("waiting in the spool")
    waiting_value = _("{entries} audit entries, {records} records (oldest {oldest})")
    yes = _("yes")
    no = _("no: {error}")


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]


@app.command("migrate", help=Text.migrate_help)
def migrate(
    url: Annotated[str | None, typer.Option("--url", help=Text.url_help, show_default=False)] = None,
    grant: Annotated[str | None, typer.Option("--grant", help=Text.grant_help, show_default=False)] = None,
    json: Json = False,
) -> None:
    from mcn_cli.domain.errors import InvalidInput
    from mcn_cli.store import backend, pg
    from mcn_cli.store.settings import check_store_url

    target = url or backend.choice().url
    if not target:
        raise InvalidInput("url", "missing", _("give --url or set store_url (MCN_STORE_URL)"))
    check_store_url(target)
    before, after = pg.migrate(target, grant)
    if json:
        emit_json({"before": before, "after": after})
    else:
        emit_line(Text.migrated.format(before=before, after=after))


@app.command("enrol", help=Text.enrol_help)
def enrol(
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help=Text.key_file_help, show_default=False)
    ] = None,
    json: Json = False,
) -> None:
    from mcn_cli.store import shared

    done = shared.enrol(key_file)
    if json:
        emit_json(
            {
                "workstation": done.workstation,
                "store": done.store,
                "workstations": list(done.workstations),
                "key_file": done.key_file,
            }
        )
        return
    if done.key_file:
        emit_line(Text.key_placed.format(path=done.key_file))
    names = ", ".join(done.workstations)
    emit_line(Text.enrolled.format(name=done.workstation, store=done.store, names=names))


@app.command("status", help=Text.status_help)
def status(json: Json = False) -> None:
    from mcn_cli.store import shared

    s = shared.status()
    if json:
        emit_json(
            {
                "backend": s.backend,
                "store": s.store,
                "workstation": s.workstation,
                "reachable": s.reachable,
                "error": s.error,
                "schema": s.schema,
                "records": s.records,
                "audit_entries": s.audit_entries,
                "workstations": list(s.workstations),
                "waiting": {
                    "entries": s.waiting.entries,
                    "records": s.waiting.records,
                    "oldest": s.waiting.oldest,
                },
            }
        )
        return
    rows: list[tuple[str, object]] = [
        (Text.backend, s.backend),
        (Text.store, s.store),
        (Text.workstation, s.workstation),
    ]
    if s.backend == "postgresql":
        rows.append((Text.reachable, Text.yes if s.reachable else Text.no.format(error=s.error)))
        if s.reachable:
            rows += [
                (Text.schema, s.schema if s.schema is not None else 0),
                (Text.records, s.records if s.records is not None else "-"),
                (Text.entries, s.audit_entries if s.audit_entries is not None else "-"),
                (Text.workstations, ", ".join(s.workstations) or "-"),
            ]
        rows.append(
            (
                Text.waiting,
                Text.waiting_value.format(
                    entries=s.waiting.entries, records=s.waiting.records, oldest=s.waiting.oldest or "-"
                ),
            )
        )
    emit_fields(rows, Text.title)


@app.command("copy", help=Text.copy_help)
def copy(
    source: Annotated[str, typer.Option("--from", help=Text.from_help, show_default=False)],
    target: Annotated[str, typer.Option("--to", help=Text.to_help, show_default=False)],
    json: Json = False,
) -> None:
    from mcn_cli.store import shared

    done = shared.copy(source, target)
    if json:
        emit_json(
            {
                "records": done.records,
                "entries": done.entries,
                "actors": done.actors,
                "source_head": done.source_head,
                "target_entries": done.target_entries,
                "target_head": done.target_head,
            }
        )
    else:
        emit_line(
            Text.copied.format(
                records=done.records,
                entries=done.entries,
                actors=done.actors,
                total=done.target_entries,
                head=done.target_head,
            )
        )
