"""`mcn login`, `mcn logout`, `mcn session`: eHealth sessions."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from mcn_cli.cli.cache import recovering_key
from mcn_cli.cli.errors import warn
from mcn_cli.cli.i18n import _, moment, ngettext, render
from mcn_cli.cli.output import emit_fields, emit_json, emit_line, emit_result, emit_table
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_, Message


class Text:
    """Human text of the session commands (translate here)."""

    login_help = _(
        "Open an eHealth session: identify with the eID (PIN from a hidden prompt, MCN_PIN or --pin-fd) "
        "or a personal fallback keystore, with the pharmacy's organisation keystore as holder-of-key. "
        "A session lasts at most 12 hours."
    )
    logout_help = _("Close a session (delete its token and key).")
    session_help = _("The open eHealth sessions.")
    list_help = _("List the open sessions: who, for which pharmacy or office, where, until when.")
    show_help = _("Show one session: user, pharmacy, issued, expires, time left.")
    name_help = _(
        "Session name: several may live side by side, one user each (default: MCN_SESSION when set, "
        "else default)."
    )
    eid_help = _("Identify with the eID card (the default).")
    fallback_help = _("Identify with a personal fallback keystore (SSIN=....p12) instead of the eID.")
    org_help = _(
        "The pharmacy's organisation keystore (NIHII-PHARMACY=....p12) (default: setting org_keystore)."
    )
    user_help = _("With several cards in the readers: the NISS of the card to use.")
    holder_help = _(
        "NISS of the pharmacy's titular pharmacist (the holder), claimed and certified by eHealth "
        "(default: setting pharmacy_holder)."
    )
    renew_help = _(
        "Renew the session's token through WS-Trust before it expires (the same user identifies "
        "again; no organisation keystore needed)."
    )
    # errors: English source text (N_), shown translated, English in --json
    renew_options = N_(
        "--renew keeps the session's user, pharmacy and holder: drop --org, --holder and --user"
    )
    both = N_("give --eid or --fallback KEYSTORE, not both")
    logout_which = N_("give --session NAME or --all, not both")
    trace_help = _(
        "Write the STS exchange to this folder, exactly as sent and received (owner-only files: "
        "they hold personal data)."
    )
    trace_warning = _("mcn: traces hold personal data: delete them once the helpdesk has them")
    pin_fd_help = _("Read the eID PIN from this file descriptor.")
    org_password_fd_help = _("Read the organisation keystore's password from this file descriptor.")
    password_fd_help = _("Read the fallback keystore's password from this file descriptor.")
    all_help = _("Close every session.")
    json_help = _("Print JSON.")
    logged_in = _("session {name!r} open for {user} at {where} {pharmacy} until {expires} ({left})")
    where: ClassVar[dict[str, str]] = {"pharmacy": _("pharmacy"), "ot": _("tarification office")}
    environments: ClassVar[dict[str, str]] = {
        "sandbox": _("sandbox (tests, on this computer)"),
        "acc": _("acceptance (eHealth's tests)"),
        "prod": _("production"),
    }
    none_open = _("no open session (mcn login opens one)")
    headers = (
        _("SESSION"), _("USER"), _("FOR"), _("ENVIRONMENT"), _("EXPIRES"), _("TIME LEFT"), _("WORKSTATION")
    )
    expired = _("expired")
    left = _("{hours} h {minutes:02d} min")
    # labels of mcn session show
    session_label = _("session")
    user_label = _("user")
    pharmacy_label = _("pharmacy")
    office_label = _("tarification office")
    holder_label = _("holder NIHII")
    environment_label = _("environment")
    issued_label = _("issued")
    expires_label = _("expires")
    left_label = _("time left")


def logged_out(count: int) -> str:
    return ngettext("closed {count} session", "closed {count} sessions", count).format(count=count)


Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]


def session_option() -> Any:
    """``--session``: MCN_SESSION when set, else "default" (the help says so: no "[default: …]")."""
    return typer.Option(
        "--session", "-s", envvar="MCN_SESSION", show_envvar=False, show_default=False, help=Text.name_help
    )


Name = Annotated[str, session_option()]


def _left(seconds: float) -> str:
    if seconds <= 0:
        return Text.expired
    minutes = int(seconds // 60)
    return Text.left.format(hours=minutes // 60, minutes=minutes % 60)


def _local(iso: str) -> str:
    return moment(datetime.fromisoformat(iso))


def _environment(env: str) -> str:
    return Text.environments.get(env, env)


def _for(session: Any) -> str:
    return f"{Text.where.get(session.kind, session.kind)} {session.organisation}"


def _warn(message: object) -> None:
    text = render(message) if isinstance(message, Message) else str(message)
    warn(text)


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
        with recovering_key():
            session = renew_session(
                name.strip() or "default", fallback=fallback, credentials=credentials, trace=trace
            )
    else:
        with recovering_key():
            session = open_session(
                name.strip() or "default",
                fallback=fallback,
                org=org,
                user=user,
                holder_niss=holder,
                credentials=credentials,
                trace=trace,
                warn=_warn,
            )
    if trace is not None:
        sys.stderr.write(Text.trace_warning + "\n")
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
    ctx: typer.Context,
    name: Annotated[str | None, session_option()] = None,
    every: Annotated[bool, typer.Option("--all", help=Text.all_help)] = False,
    json: Json = False,
) -> None:
    """Close a session."""
    from typer._click.core import ParameterSource

    from mcn_cli.actions.local import open_database
    from mcn_cli.store import sessions

    if every and ctx.get_parameter_source("name") == ParameterSource.COMMANDLINE:
        raise InvalidInput("logout", "which", Text.logout_which)  # MCN_SESSION alone does not clash
    with open_database() as db:
        count = sessions.delete(db, None if every else ((name or "").strip() or sessions.DEFAULT))
    emit_result(json, {"closed": count}, logged_out(count))


app = typer.Typer(help=Text.session_help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def _open_sessions() -> list[Any]:
    from mcn_cli.actions.local import cache_if_initialised
    from mcn_cli.store import sessions

    with recovering_key():
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
                    _for(s),
                    _environment(s.env),
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

    with recovering_key():
        cache = open_cache()
        session = sessions.require(cache.db, cache.vault, name)
    if json:
        emit_json(session_json(session))
        return
    emit_fields(
        [
            (Text.session_label, session.name),
            (Text.user_label, f"{session.user_name} ({session.user_niss})"),
            (Text.office_label if session.kind == "ot" else Text.pharmacy_label, session.organisation),
            (Text.holder_label, session.holder_nihii11 or "-"),
            (Text.environment_label, _environment(session.env)),
            (Text.issued_label, _local(session.issued)),
            (Text.expires_label, _local(session.expires)),
            (Text.left_label, _left(session.time_left(datetime.now(UTC)))),
        ]
    )
