"""`mcn cert`: eHealth certificates from request to revocation."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from mcn_cli.cli.errors import warn
from mcn_cli.cli.i18n import _, render
from mcn_cli.cli.output import emit_fields, emit_json, emit_line, emit_table
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.domain.text import check_text, visible


class Text:
    """Human text of `mcn cert` (translate here)."""

    help = _(
        "eHealth certificates: request online (contract, CSR, eID signature), status, fetch (with the "
        "encryption token), install, list, revoke."
    )
    request_help = _(
        "Request a certificate from eHealth's registration service for the pharmacy (--org), a "
        "tarification office (--ot) or a pharmacist (--personal): eHealth's contract is shown and must be "
        "accepted, the key (RSA 2048) and the request (PKCS#10) follow the contract's subject, and the "
        "request is signed with the eID's Signature key. With --offline: only the keystore and the "
        "request file, for eHealth's web application."
    )
    install_help = _(
        "Install the certificate eHealth sent: check it against the key, its subject and its chain, store it "
        "under alias 'authentication', create the encryption key and the encryption token (ETK)."
    )
    fetch_help = _(
        "Ask eHealth for the certificates requested online (no eID needed, fit for cron): a delivered one is "
        "installed with its chain and gets its encryption token (ETK) through eHealth; a pending one is "
        "no error."
    )
    status_help = _(
        "What eHealth knows of your certificates (status, encryption token, validity, replacement window), "
        "asked with the eID's Authentication key."
    )
    list_help = _(
        "The keystores found, with their folder, state and days left; a warning on stderr for each "
        "certificate expired or inside its replacement window (the last 90 days)."
    )
    check_help = _(
        "Exit 4 (authentication needed: renew the certificate) when any certificate has expired or is "
        "inside its replacement window; for cron or monitoring."
    )
    show_help = _("One keystore's certificate in detail.")
    revoke_help = _(
        "Revoke a certificate and its encryption token at eHealth: the revocation contract is shown and must "
        "be accepted, then signed with the eID's Signature key. With --offline: a revocation request file "
        "(the sandbox's CA revokes at once)."
    )
    org_help = _("The pharmacy's organisation certificate (NIHII-PHARMACY).")
    ot_help = _("A tarification office's certificate (NIHII-OTD_PHARMACY).")
    personal_help = _("A pharmacist's personal certificate (SSIN), the fallback when the eID cannot be read.")
    nihii_help = _("The pharmacy's (or office's) NIHII number, 8 digits with check digits.")
    kbo_help = _("The company number (KBO/BCE).")
    name_help = _(
        "The pharmacy's (or the pharmacist's) name as it stands in the certificate (at most 64 characters)."
    )
    niss_help = _("The pharmacist's NISS (personal certificate): must be the eID's.")
    email_help = _("Contact e-mail for eHealth (needed online).")
    phone_help = _("Contact phone for eHealth (needed online).")
    password_fd_help = _("Read the keystore password from this file descriptor.")
    pin_fd_help = _("Read the eID PIN from this file descriptor.")
    user_help = _("With several cards in the readers: the NISS of the card to use.")
    key_help = _(
        "Key type: rsa (RSA-2048, what eHealth's registration service asks for) or ec (EC P-384, for "
        "--offline only: a CSR submitted by hand)."
    )
    offline_help = _("Only write the keystore and the request file (for eHealth's web application).")
    accept_help = _("Accept eHealth's contract without asking (for scripts; it is still shown on stderr).")
    application_help = _("An application id, to tell apart several certificates of one organisation.")
    service_help = _("An eHealth base service the certificate is for (tsa, consultrn, codage, other).")
    keystore_help = _("The keystore the request made (default: found by the certificate's subject).")
    certificate_help = _("The certificate file eHealth sent (PEM or DER, with its chain).")
    name_arg_help = _("The keystore: a path, a file name or a label such as NIHII-PHARMACY=27150201.")
    fetch_arg_help = _("One keystore to fetch for (default: every pending request).")
    reason_help = _(
        "Why: keyCompromise, affiliationChanged, superseded or cessationOfOperation "
        "(free text with --offline)."
    )
    yes_help = _("Do not ask for confirmation (the contract is still shown on stderr).")
    json_help = _("Print JSON.")
    signature_pin = _("eID PIN (Signature key: it signs your request to eHealth, as your signature would): ")
    authentication_pin = _(
        "eID PIN (Authentication key: it identifies you to eHealth to read your certificates): "
    )
    keystore_password = _("Keystore password: ")
    new_password = _("Password for the new keystore: ")
    again = _("Again: ")
    contract_title = _("eHealth's contract ({language}); read it before you accept:")
    accept_question = _("Do you accept this contract and sign it with your eID?")
    requested = _("keystore {keystore}\nrequest  {csr}")
    next_steps = _(
        "Next: submit the request with eHealth's certificate service (signed with your eID); when eHealth's "
        "e-mail brings the certificate, run: mcn cert install <certificate file>"
    )
    sandbox_issued = _(
        "Sandbox: its eHealth CA issued the certificate at once. Next: mcn cert install {path}"
    )
    registered = _(
        "eHealth registered the request for {label}: public key identifier {pki}\nkeystore {keystore}"
    )
    automatic = _(
        "Validated automatically: the certificate comes soon. Next: mcn cert fetch (it may run from cron)"
    )
    manual = _(
        "eHealth's support validates this request by hand (up to 10 days; an e-mail follows). "
        "Next: mcn cert fetch (it may run from cron)"
    )
    replaces = _("It replaces the certificate {pki}; the old keystore is kept when the new one is fetched.")
    still_pending = _("{label}: still pending at eHealth (public key identifier {pki})")
    fetched = _(
        "{label}: installed in {keystore}, valid until {until}; encryption key {serial}; ETK {etk} ({depot})"
    )
    fetched_no_etk = _("{label}: installed in {keystore}, valid until {until}")
    in_depot = _("published in eHealth's ETK depot")
    not_in_depot = _("not yet in eHealth's ETK depot")
    nothing_pending = _("no certificate request is pending")
    installed = _("installed in {keystore}: valid until {until}; encryption key {serial}; ETK {etk}")
    empty = _("no keystore found")
    headers = (_("KEYSTORE"), _("FOLDER"), _("STATE"), _("HOLDER"), _("VALID UNTIL"), _("DAYS LEFT"))
    status_headers = (
        _("HOLDER"),
        _("CERTIFICATE"),
        _("ETK"),
        _("VALID UNTIL"),
        _("REPLACEABLE FROM"),
        _("VALIDATION"),
    )
    no_certificates = _("eHealth knows no certificate of yours")
    automatic_word = _("automatic")
    manual_word = _("manual")
    states: ClassVar[dict[str, str]] = {
        "installed": _("installed"),
        "requested": _("requested"),
        "pending": _("pending"),
        "expired": _("expired"),
        "revoked": _("revoked"),
        "replaced": _("replaced"),
        "unknown": _("unknown"),
    }
    fields: ClassVar[dict[str, str]] = {
        "name": _("name"),
        "keystore": _("keystore"),
        "folder": _("folder"),
        "state": _("state"),
        "type": _("type"),
        "number": _("number"),
        "subject": _("subject"),
        "issuer": _("issuer"),
        "serial": _("serial"),
        "not_after": _("valid until"),
        "days_left": _("days left"),
        "warning": _("warning"),
    }
    expiring = _("{name} expires in {days} days: request its replacement now (mcn cert request)")
    expired = _("{name} expired on {date}: it cannot log in; request a new certificate (mcn cert request)")
    confirm = _("Revoke the certificate of {name}? It can never be used again")
    revoked_now = _("revoked by the sandbox's CA; the request is in {path}")
    revoked_online = _("eHealth revoked {name} (public key identifier {pki}) and its encryption token")
    revocation = _("revocation request written to {path}: submit it with eHealth's certificate service")


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]
PasswordFd = Annotated[
    int | None, typer.Option("--password-fd", help=Text.password_fd_help, show_default=False)
]
PinFd = Annotated[int | None, typer.Option("--pin-fd", help=Text.pin_fd_help, show_default=False)]
User = Annotated[str | None, typer.Option("--user", help=Text.user_help, show_default=False)]


def _new_password(fd: int | None) -> Any:
    from mcn_cli.actions.secrets import secret

    if fd is not None:
        return secret(
            "keystore password", "MCN_NEW_KEYSTORE_PASSWORD", fd=fd, prompt="", fd_option="--password-fd"
        )

    def ask() -> str:
        import getpass
        import os

        value = os.environ.get("MCN_NEW_KEYSTORE_PASSWORD")
        if value:
            return value
        if not sys.stdin.isatty():
            raise InvalidInput(
                "password",
                "missing",
                N_("the keystore password is needed: use --password-fd N or run in a terminal"),
            )
        first = getpass.getpass(Text.new_password)
        if getpass.getpass(Text.again) != first:
            raise InvalidInput("password", "mismatch", N_("the two passwords differ"))
        return first

    return ask


def _password(fd: int | None) -> Any:
    from functools import cache

    from mcn_cli.actions.secrets import secret

    return cache(
        secret(
            "keystore password",
            "MCN_KEYSTORE_PASSWORD",
            fd=fd,
            prompt=Text.keystore_password,
            fd_option="--password-fd",
        )
    )


def _pin(fd: int | None, prompt: str) -> Any:
    from mcn_cli.actions.secrets import secret

    return secret("eID PIN", "MCN_PIN", fd=fd, prompt=prompt, fd_option="--pin-fd")


EMAIL_MAX = 254  # RFC 5321's longest path, less its angle brackets


def _check_contact(email: str | None, phone: str | None) -> None:
    if email is not None:
        check_text("email", email, max_length=EMAIL_MAX)
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", email):
        raise InvalidInput("email", "format", N_("not an e-mail address: {value!r}"), value=email)
    if phone is not None and not re.fullmatch(r"\+?[0-9 ./()-]{6,20}", phone):
        raise InvalidInput("phone", "format", N_("not a phone number: {value!r}"), value=phone)


def _acceptor(accept: bool) -> Any:
    """Show eHealth's contract (HTML as text, on stderr) and ask; --accept answers yes."""
    from mcn_cli.cli.i18n import confirm, language
    from mcn_cli.ehealth.certra import readable

    def decide(contract: Any) -> bool:
        lang, html = contract.text(language())
        sys.stderr.write(render(Text.contract_title, {"language": lang}) + "\n\n")
        sys.stderr.write(visible(readable(html), keep_newlines=True) + "\n\n")
        if accept:
            return True
        if not sys.stdin.isatty():
            raise InvalidInput(
                "accept",
                "confirmation",
                N_("accepting the contract needs --accept when stdin is not a terminal"),
            )
        return confirm(Text.accept_question)

    return decide


@app.command("request", help=Text.request_help)
def request(
    org: Annotated[bool, typer.Option("--org", help=Text.org_help)] = False,
    ot: Annotated[bool, typer.Option("--ot", help=Text.ot_help)] = False,
    personal: Annotated[bool, typer.Option("--personal", help=Text.personal_help)] = False,
    nihii: Annotated[str | None, typer.Option("--nihii", help=Text.nihii_help, show_default=False)] = None,
    kbo: Annotated[str | None, typer.Option("--kbo", help=Text.kbo_help, show_default=False)] = None,
    name: Annotated[str | None, typer.Option("--name", help=Text.name_help, show_default=False)] = None,
    niss: Annotated[str | None, typer.Option("--niss", help=Text.niss_help, show_default=False)] = None,
    email: Annotated[str | None, typer.Option("--email", help=Text.email_help, show_default=False)] = None,
    phone: Annotated[str | None, typer.Option("--phone", help=Text.phone_help, show_default=False)] = None,
    key: Annotated[str, typer.Option("--key", help=Text.key_help)] = "rsa",
    offline: Annotated[bool, typer.Option("--offline", help=Text.offline_help)] = False,
    accept: Annotated[bool, typer.Option("--accept", help=Text.accept_help)] = False,
    application_id: Annotated[
        str | None, typer.Option("--application-id", help=Text.application_help, show_default=False)
    ] = None,
    service: Annotated[
        list[str] | None, typer.Option("--service", help=Text.service_help, show_default=False)
    ] = None,
    user: User = None,
    password_fd: PasswordFd = None,
    pin_fd: PinFd = None,
    json: Json = False,
) -> None:
    from mcn_cli.actions import certificates
    from mcn_cli.domain.identifiers import parse_kbo, parse_niss, parse_pharmacy_nihii
    from mcn_cli.ehealth.certificates import ORG, OT, PERSONAL, Holder, check_name

    if sum((org, ot, personal)) != 1:
        raise InvalidInput("cert", "kind", N_("give one of --org, --ot or --personal"))
    if name:
        check_name(name)  # <= 64 characters, no control character: before any prompt or file
    _check_contact(email, phone)
    company = None
    if personal:
        if niss is None:
            raise InvalidInput("niss", "missing", N_("--personal needs --niss"))
        holder = Holder(PERSONAL, parse_niss(niss).value, name)
    else:
        if nihii is None or not name or (offline and kbo is None):
            raise InvalidInput(
                "cert", "missing", N_("--org and --ot need --nihii and --name (and --kbo offline)")
            )
        company = parse_kbo(kbo).value if kbo is not None else None
        holder = Holder(ORG if org else OT, parse_pharmacy_nihii(nihii).value, name)
    if key not in ("rsa", "ec"):
        raise InvalidInput("key", "choice", N_("must be rsa or ec, got {value!r}"), value=key)
    if offline:
        if accept or user or application_id or service:
            raise InvalidInput(
                "offline",
                "combination",
                N_("--offline cannot be combined with --accept, --user, --application-id or --service"),
            )
        result = certificates.request(
            holder, _new_password(password_fd), kbo=company, email=email, phone=phone, key_type=key
        )
        if json:
            emit_json(
                {
                    "keystore": str(result.keystore),
                    "csr": str(result.csr),
                    "issued": str(result.issued) if result.issued else None,
                    "holder": holder.label,
                }
            )
            return
        emit_line(render(Text.requested, {"keystore": result.keystore, "csr": result.csr}))
        emit_line(render(Text.sandbox_issued, {"path": result.issued}) if result.issued else Text.next_steps)
        return
    _online_request(
        holder,
        key,
        email,
        phone,
        accept,
        application_id,
        tuple(service or ()),
        user,
        password_fd,
        pin_fd,
        json,
    )


def _online_request(
    holder: Any,
    key: str,
    email: str | None,
    phone: str | None,
    accept: bool,
    application_id: str | None,
    services: tuple[str, ...],
    user: str | None,
    password_fd: int | None,
    pin_fd: int | None,
    json: bool,
) -> None:
    from mcn_cli.actions import registration
    from mcn_cli.cli.i18n import language
    from mcn_cli.domain.identifiers import parse_niss
    from mcn_cli.ehealth.certra import Contact

    if key != "rsa":
        raise InvalidInput(
            "key", "rsa", N_("eHealth's registration service takes RSA keys: --key ec is for --offline")
        )
    if email is None or phone is None:
        raise InvalidInput("contact", "missing", N_("eHealth needs a contact: give --email and --phone"))
    result = registration.request(
        holder,
        _new_password(password_fd),
        Contact(email, phone),
        _acceptor(accept),
        _pin(pin_fd, Text.signature_pin),
        language=language(),
        application_id=application_id,
        services=services,
        user=parse_niss(user, "user").value if user else None,
    )
    if json:
        emit_json(
            {
                "keystore": str(result.keystore),
                "holder": holder.label,
                "public_key_identifier": result.public_key_identifier,
                "automatically_validated": result.automatically_validated,
                "replaces": result.replaces,
                "contract_language": result.contract_language,
            }
        )
        return
    emit_line(
        render(
            Text.registered,
            {"label": holder.label, "pki": result.public_key_identifier, "keystore": result.keystore},
        )
    )
    if result.replaces:
        emit_line(render(Text.replaces, {"pki": result.replaces}))
    emit_line(Text.automatic if result.automatically_validated else Text.manual)


@app.command("fetch", help=Text.fetch_help)
def fetch(
    name: Annotated[str | None, typer.Argument(help=Text.fetch_arg_help, show_default=False)] = None,
    password_fd: PasswordFd = None,
    json: Json = False,
) -> None:
    from mcn_cli.actions import certificates, registration
    from mcn_cli.cli.errors import human, human_hint, say, status_for
    from mcn_cli.domain.errors import McnError

    targets = [certificates.find(name).keystore] if name else registration.pending()
    password = _password(password_fd)
    results = []
    failed: list[tuple[Path, McnError]] = []
    for path in targets:
        try:
            results.append(registration.fetch(path, password))
        except McnError as error:
            if name:
                raise
            # from cron, one request eHealth refused (or a keystore gone wrong) must not keep
            # the others from being fetched: each failure is said, the exit status is the first's
            failed.append((path, error))
            say(f"{path.name}: {human(error)}", human_hint(error))
    if json:
        emit_json(
            [
                *(
                    {"keystore": str(path), "state": "error", "error": error.message}
                    for path, error in failed
                ),
                *(
                    {
                        "keystore": str(r.keystore),
                        "holder": r.label,
                        "state": r.state,
                        "public_key_identifier": r.public_key_identifier,
                        "automatically_validated": r.automatically_validated,
                        "not_after": r.not_after,
                        "encryption_serial": str(r.encryption_serial)
                        if r.encryption_serial is not None
                        else None,
                        "etk": str(r.etk) if r.etk else None,
                        "etk_in_depot": r.etk_published,
                    }
                    for r in results
                ),
            ]
        )
    elif not results and not failed:
        emit_line(Text.nothing_pending)
    for r in [] if json else results:
        if r.state == "pending":
            emit_line(render(Text.still_pending, {"label": r.label, "pki": r.public_key_identifier}))
        elif r.etk is not None and r.not_after is not None:
            emit_line(
                render(
                    Text.fetched,
                    {
                        "label": r.label,
                        "keystore": r.keystore,
                        "until": r.not_after.date(),
                        "serial": r.encryption_serial,
                        "etk": r.etk,
                        "depot": Text.in_depot if r.etk_published else Text.not_in_depot,
                    },
                )
            )
        elif r.not_after is not None:
            emit_line(
                render(
                    Text.fetched_no_etk,
                    {"label": r.label, "keystore": r.keystore, "until": r.not_after.date()},
                )
            )
    if failed:
        raise typer.Exit(int(status_for(failed[0][1])))


@app.command("status", help=Text.status_help)
def status(user: User = None, pin_fd: PinFd = None, json: Json = False) -> None:
    from mcn_cli.actions import registration
    from mcn_cli.domain.identifiers import parse_niss

    infos = registration.status(
        _pin(pin_fd, Text.authentication_pin), user=parse_niss(user, "user").value if user else None
    )
    if json:
        emit_json(
            [
                {
                    "public_key_identifier": i.public_key_identifier,
                    "holder": f"{i.actor.type}={i.actor.value}",
                    "application_id": i.application_id,
                    "status": i.status,
                    "etk_status": i.etk_status,
                    "automatically_validated": i.automatically_validated,
                    "revocable": i.revocable,
                    "replaceable": i.replaceable,
                    "replacement_start": i.replacement_start,
                    "requested": i.requested,
                    "serial": i.serial,
                    "dn": i.dn,
                    "not_after": i.not_after,
                }
                for i in infos
            ]
        )
        return
    if not infos:
        emit_line(Text.no_certificates)
        return
    emit_table(
        Text.status_headers,
        [
            (
                f"{i.actor.type}={i.actor.value}" + (f" {i.application_id}" if i.application_id else ""),
                i.status,
                i.etk_status,
                i.not_after.date() if i.not_after else "-",
                i.replacement_start.date() if i.replacement_start else "-",
                Text.automatic_word if i.automatically_validated else Text.manual_word,
            )
            for i in infos
        ],
    )


@app.command("install", help=Text.install_help)
def install(
    certificate: Annotated[Path, typer.Argument(help=Text.certificate_help, show_default=False)],
    keystore: Annotated[
        Path | None, typer.Option("--keystore", help=Text.keystore_help, show_default=False)
    ] = None,
    password_fd: PasswordFd = None,
    json: Json = False,
) -> None:
    from mcn_cli.actions import certificates

    result = certificates.install(certificate, _password(password_fd), keystore=keystore)
    if json:
        emit_json(
            {
                "keystore": str(result.keystore),
                "holder": result.holder.label,
                "not_after": result.not_after,
                "encryption_serial": str(result.encryption_serial),
                "etk": str(result.etk),
            }
        )
        return
    emit_line(
        render(
            Text.installed,
            {
                "keystore": result.keystore,
                "until": result.not_after.date(),
                "serial": result.encryption_serial,
                "etk": result.etk,
            },
        )
    )


def _listed_json(item: Any) -> dict[str, Any]:
    return {
        "name": item.name,
        "keystore": str(item.keystore),
        "folder": str(item.keystore.parent),
        "state": item.state,
        "type": item.holder.kind if item.holder else None,
        "number": item.holder.number if item.holder else None,
        "subject": item.subject,
        "issuer": item.issuer,
        "serial": str(item.serial) if item.serial is not None else None,
        "not_after": item.not_after,
        "days_left": item.days_left,
        "warning": item.warning,
    }


@app.command("list", help=Text.list_help)
def list_certificates(
    check: Annotated[bool, typer.Option("--check", help=Text.check_help)] = False,
    json: Json = False,
) -> None:
    from mcn_cli.actions import certificates
    from mcn_cli.cli.i18n import day
    from mcn_cli.status import ExitStatus

    found = certificates.list_keystores()
    if json:
        emit_json([_listed_json(item) for item in found])
    elif not found:
        emit_line(Text.empty)
    else:
        emit_table(
            Text.headers,
            [
                (
                    i.keystore.name,
                    str(i.keystore.parent),
                    Text.states.get(i.state, i.state),
                    i.holder.label if i.holder else "-",
                    day(i.not_after.date()) if i.not_after else "-",
                    i.days_left if i.days_left is not None else "-",
                )
                for i in found
            ],
        )
    warned = [item for item in found if item.warning]
    for item in warned:
        if item.expired and item.not_after is not None:
            text = render(Text.expired, {"name": item.name, "date": item.not_after.date()})
        else:
            text = render(Text.expiring, {"name": item.name, "days": item.days_left})
        warn(text)
    if check and warned:
        raise typer.Exit(int(ExitStatus.AUTH_NEEDED))


@app.command("show", help=Text.show_help)
def show(
    name: Annotated[str, typer.Argument(help=Text.name_arg_help, show_default=False)], json: Json = False
) -> None:
    from mcn_cli.actions import certificates
    from mcn_cli.cli.i18n import moment, value_text

    item = certificates.find(name)
    fields = _listed_json(item)
    if json:
        emit_json(fields)
        return
    fields["state"] = Text.states.get(item.state, item.state)
    fields["not_after"] = moment(item.not_after) if item.not_after else None
    emit_fields(
        [
            (Text.fields.get(k, k), value_text(v) if isinstance(v, bool) else v)
            for k, v in fields.items()
            if v is not None
        ]
    )


@app.command("revoke", help=Text.revoke_help)
def revoke(
    name: Annotated[str, typer.Argument(help=Text.name_arg_help, show_default=False)],
    reason: Annotated[str | None, typer.Option("--reason", help=Text.reason_help, show_default=False)] = None,
    yes: Annotated[bool, typer.Option("--yes", "--accept", help=Text.yes_help)] = False,
    offline: Annotated[bool, typer.Option("--offline", help=Text.offline_help)] = False,
    user: User = None,
    pin_fd: PinFd = None,
    json: Json = False,
) -> None:
    from mcn_cli.actions import certificates, registration
    from mcn_cli.domain.identifiers import parse_niss

    item = certificates.find(name)
    if not offline:
        if reason is None:
            raise InvalidInput(
                "reason",
                "missing",
                N_("give --reason keyCompromise, affiliationChanged, superseded or cessationOfOperation"),
            )
        result = registration.revoke(
            item.keystore,
            reason,
            _acceptor(yes),
            _pin(pin_fd, Text.signature_pin),
            user=parse_niss(user, "user").value if user else None,
        )
        if json:
            emit_json(
                {
                    "keystore": str(result.keystore),
                    "public_key_identifier": result.public_key_identifier,
                    "reason": result.reason,
                    "revoked": True,
                }
            )
        else:
            emit_line(render(Text.revoked_online, {"name": item.name, "pki": result.public_key_identifier}))
        return
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidInput(
                "yes", "confirmation", N_("this needs --yes (or --accept) when stdin is not a terminal")
            )
        from mcn_cli.cli.i18n import confirm

        if not confirm(render(Text.confirm, {"name": item.name})):
            raise typer.Abort()
    offline_result = certificates.revoke(item, reason or "unspecified")
    if json:
        emit_json({"request": str(offline_result.request), "revoked": offline_result.revoked_now})
    elif offline_result.revoked_now:
        emit_line(render(Text.revoked_now, {"path": offline_result.request}))
    else:
        emit_line(render(Text.revocation, {"path": offline_result.request}))
