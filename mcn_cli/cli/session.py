"""`mcn login`, `mcn logout`, `mcn session`: eHealth sessions."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from mcn_cli.cli.output import emit_fields, emit_json, emit_line, emit_result, emit_table
from mcn_cli.domain.errors import InvalidInput


class Text:
    """Human text of the session commands (translate here)."""

    login_help = (
        "Open an eHealth session: identify with the eID (PIN from a hidden prompt, MCN_PIN or --pin-fd) "
        "or a personal fallback keystore, with the pharmacy's organisation keystore as holder-of-key. "
        "A session lasts at most 12 hours."
    )
    logout_help = "Close a session (delete its token and key)."
    session_help = "The open eHealth sessions."
    list_help = "List the open sessions."
    show_help = "Show one session: user, pharmacy, issued, expires, time left."
    name_help = "Session name: several may live side by side, one user each."
    eid_help = "Identify with the eID card (the default)."
    fallback_help = "Identify with a personal fallback keystore (SSIN=....p12) instead of the eID."
    org_help = (
        "The pharmacy's organisation keystore (NIHII-PHARMACY=....p12) (default: setting org_keystore)."
    )
    user_help = "With several cards in the readers: the NISS of the card to use."
    holder_help = (
        "NISS of the pharmacy's titular pharmacist (the holder), claimed and certified by eHealth "
        "(default: setting pharmacy_holder)."
    )
    renew_help = (
        "Renew the session's token through WS-Trust before it expires (the same user identifies "
        "again; no organisation keystore needed)."
    )
    renew_options = "--renew keeps the session's user, pharmacy and holder: drop --org, --holder and --user"
    trace_help = (
        "Write the STS exchange to this folder, exactly as sent and received (owner-only files: "
        "they hold personal data)."
    )
    trace_warning = "traces hold personal data: delete them once the helpdesk has them"
    pin_fd_help = "Read the eID PIN from this file descriptor."
    org_password_fd_help = "Read the organisation keystore's password from this file descriptor."
    password_fd_help = "Read the fallback keystore's password from this file descriptor."
    all_help = "Close every session."
    json_help = "Print JSON."
    logged_in = "session {name!r} open for {user} at {where} {pharmacy} until {expires} ({left})"
    where: ClassVar[dict[str, str]] = {"pharmacy": "pharmacy", "ot": "tarification office"}
    logged_out = "closed {count} session(s)"
    none_open = "no open session (mcn login opens one)"
    headers = ("SESSION", "USER", "NIHII", "ENV", "ISSUED", "EXPIRES", "LEFT", "WORKSTATION")
    both = "give --eid or --fallback KEYSTORE, not both"
    logout_which = "give --session NAME or --all, not both"


Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]
Name = Annotated[str, typer.Option("--session", "-s", help=Text.name_help)]


def _left(seconds: float) -> str:
    minutes = max(int(seconds // 60), 0)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def session_json(session: Any) -> dict[str, Any]:
    return {
        "session": session.name,
        "kind": session.kind,
        "env": session.env,
        "user": {"niss": session.user_niss, "name": session.user_name},
        "pharmacy": session.organisation,
        "holder_nihii": session.holder_nihii11,
        "holder_niss": session.holder_niss,
        "issued": session.issued,
        "expires": session.expires,
        "seconds_left": int(session.time_left()),
    }


def login(
    name: Name = "default",
    eid: Annotated[bool, typer.Option("--eid", help=Text.eid_help)] = False,
    fallback: Annotated[
        Path | None, typer.Option("--fallback", help=Text.fallback_help, show_default=False)
    ] = None,
    org: Annotated[Path | None, typer.Option("--org", help=Text.org_help, show_default=False)] = None,
    user: Annotated[str | None, typer.Option("--user", help=Text.user_help, show_default=False)] = None,
    holder: Annotated[str | None, typer.Option("--holder", help=Text.holder_help, show_default=False)] = None,
    trace: Annotated[Path | None, typer.Option("--trace", help=Text.trace_help, show_default=False)] = None,
    renew: Annotated[bool, typer.Option("--renew", help=Text.renew_help)] = False,
    pin_fd: Annotated[int | None, typer.Option("--pin-fd", help=Text.pin_fd_help, show_default=False)] = None,
    org_password_fd: Annotated[
        int | None, typer.Option("--org-password-fd", help=Text.org_password_fd_help, show_default=False)
    ] = None,
    password_fd: Annotated[
        int | None, typer.Option("--password-fd", help=Text.password_fd_help, show_default=False)
    ] = None,
    json: Json = False,
) -> None:
    """Open an eHealth session."""
    from mcn_cli.actions.login import Credentials
    from mcn_cli.actions.login import login as open_session
    from mcn_cli.actions.login import renew as renew_session

    if eid and fallback is not None:
        raise InvalidInput("login", "one-identification", Text.both)
    credentials = Credentials(pin_fd, org_password_fd, password_fd)
    if renew:
        if org is not None or holder is not None or user is not None:
            raise InvalidInput("renew", "options", Text.renew_options)
        session = renew_session(
            name.strip() or "default", fallback=fallback, credentials=credentials, trace=trace
        )
    else:
        session = open_session(
            name.strip() or "default",
            fallback=fallback,
            org=org,
            user=user,
            holder_niss=holder,
            credentials=credentials,
            trace=trace,
            warn=lambda message: sys.stderr.write(f"mcn: warning: {message}\n"),
        )
    if trace is not None:
        sys.stderr.write(f"mcn: {Text.trace_warning}\n")
    if json:
        emit_json(session_json(session))
    else:
        emit_line(
            Text.logged_in.format(
                name=session.name,
                user=session.user_name,
                pharmacy=session.organisation,
                where=Text.where.get(session.kind, session.kind),
                expires=_local(session.expires),
                left=_left(session.time_left()),
            )
        )


def logout(
    name: Annotated[
        str | None, typer.Option("--session", "-s", help=Text.name_help, show_default=False)
    ] = None,
    every: Annotated[bool, typer.Option("--all", help=Text.all_help)] = False,
    json: Json = False,
) -> None:
    """Close a session."""
    from mcn_cli.actions.local import open_database
    from mcn_cli.store import sessions

    if name is not None and every:
        raise InvalidInput("logout", "which", Text.logout_which)
    with open_database() as db:
        count = sessions.delete(db, None if every else (name or sessions.DEFAULT))
    emit_result(json, {"closed": count}, Text.logged_out.format(count=count))


app = typer.Typer(help=Text.session_help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def _open_sessions() -> list[Any]:
    from mcn_cli.actions.local import cache_if_initialised
    from mcn_cli.store import sessions

    cache = cache_if_initialised()
    return sessions.all_sessions(cache.db, cache.vault) if cache else []


@app.command("list", help=Text.list_help)
def list_sessions(json: Json = False) -> None:
    from mcn_cli.store import backend

    found = _open_sessions()
    workstation = backend.choice().workstation  # sessions stay on the workstation that opened them
    if json:
        emit_json([{**session_json(s), "workstation": workstation} for s in found])
    elif not found:
        emit_line(Text.none_open)
    else:
        emit_table(
            Text.headers,
            [
                (
                    s.name,
                    s.user_name,
                    s.organisation,
                    s.env,
                    _local(s.issued),
                    _local(s.expires),
                    _left(s.time_left()),
                    workstation,
                )
                for s in found
            ],
        )


@app.command("show", help=Text.show_help)
def show(name: Name = "default", json: Json = False) -> None:
    from mcn_cli.actions.local import open_cache
    from mcn_cli.store import sessions

    cache = open_cache()
    session = sessions.require(cache.db, cache.vault, name)
    if json:
        emit_json(session_json(session))
        return
    emit_fields(
        [
            ("session", session.name),
            ("user", f"{session.user_name} ({session.user_niss})"),
            ("pharmacy", session.organisation),
            ("holder NIHII", session.holder_nihii11 or "-"),
            ("environment", session.env),
            ("issued", _local(session.issued)),
            ("expires", _local(session.expires)),
            ("time left", _left(session.time_left(datetime.now(UTC)))),
        ]
    )
