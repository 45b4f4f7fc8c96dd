"""`mcn cert`: eHealth certificates from request to revocation."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mcn_cli.cli.output import emit_fields, emit_json, emit_line, emit_table
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.text import check_text, visible


class Text:
    """Human text of `mcn cert` (translate here)."""

    help = (
        "eHealth certificates: request (keystore + CSR), install (with the encryption token), list, revoke."
    )
    request_help = (
        "Make a keystore (RSA 2048 by default; password from a hidden prompt asked twice or --password-fd) "
        "and a "
        "certificate request (PKCS#10, SHA-256) with eHealth's subject layout, for the pharmacy (--org), a "
        "tarification office (--ot) or a pharmacist's personal certificate (--personal)."
    )
    install_help = (
        "Install the certificate eHealth sent: check it against the key, its subject and its chain, store it "
        "under alias 'authentication', create the encryption key and the encryption token (ETK)."
    )
    list_help = (
        "The keystores found, with their state and days left; a warning on stderr for each certificate "
        "expired or expiring within 60 days."
    )
    check_help = (
        "Exit 4 (authentication needed: renew the certificate) when any certificate has expired or "
        "expires within 60 days; for cron or monitoring."
    )
    show_help = "One keystore's certificate in detail."
    revoke_help = "Build the revocation request (the sandbox's CA revokes at once)."
    org_help = "The pharmacy's organisation certificate (NIHII-PHARMACY)."
    ot_help = "A tarification office's certificate (NIHII-OTD_PHARMACY)."
    personal_help = "A pharmacist's personal certificate (SSIN), the fallback when the eID cannot be read."
    nihii_help = "The pharmacy's (or office's) NIHII number, 8 digits with check digits."
    kbo_help = "The company number (KBO/BCE)."
    name_help = (
        "The pharmacy's (or the pharmacist's) name as it stands in the certificate (at most 64 characters)."
    )
    niss_help = "The pharmacist's NISS (personal certificate)."
    email_help = "Contact e-mail for eHealth."
    phone_help = "Contact phone for eHealth."
    password_fd_help = "Read the keystore password from this file descriptor."
    key_help = (
        "Key type: rsa (RSA-2048, what eHealth's registration service asks for) or ec (EC P-384, as "
        "eHealth's newer certificates carry; for the offline path only: a CSR submitted by hand)."
    )
    keystore_help = "The keystore the request made (default: found by the certificate's subject)."
    certificate_help = "The certificate file eHealth sent (PEM or DER, with its chain)."
    name_arg_help = "The keystore: a path, a file name or a label such as NIHII-PHARMACY=27150201."
    reason_help = "Why (key compromised, pharmacy closed, ...)."
    yes_help = "Do not ask for confirmation."
    json_help = "Print JSON."
    which = "give one of --org, --ot or --personal"
    requested = "keystore {keystore}\nrequest  {csr}"
    next_steps = (
        "Next: submit the request with eHealth's certificate service (signed with your eID); when eHealth's "
        "e-mail brings the certificate, run: mcn cert install <certificate file>"
    )
    sandbox_issued = "Sandbox: its eHealth CA issued the certificate at once. Next: mcn cert install {path}"
    installed = "installed in {keystore}: valid until {until}; encryption key {serial}; ETK {etk}"
    empty = "no keystore found"
    headers = ("KEYSTORE", "STATE", "HOLDER", "VALID UNTIL", "DAYS LEFT")
    expiring = "{name} expires in {days} days: request a new certificate now"
    expired = "{name} expired on {date}: it cannot log in; request a new certificate (mcn cert request)"
    confirm = "Revoke the certificate of {name}? It can never be used again"
    revoked_now = "revoked by the sandbox's CA; the request is in {path}"
    revocation = "revocation request written to {path}: submit it with eHealth's certificate service"
    no_confirmation = "revoking needs --yes when stdin is not a terminal"
    mismatch = "the two passwords differ"
    need_password = "the keystore password is needed: use --password-fd N or run in a terminal"


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]
PasswordFd = Annotated[
    int | None, typer.Option("--password-fd", help=Text.password_fd_help, show_default=False)
]


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
            raise InvalidInput("password", "missing", Text.need_password)
        first = getpass.getpass("Password for the new keystore: ")
        if getpass.getpass("Again: ") != first:
            raise InvalidInput("password", "mismatch", Text.mismatch)
        return first

    return ask


EMAIL_MAX = 254  # RFC 5321's longest path, less its angle brackets


def _check_contact(email: str | None, phone: str | None) -> None:
    if email is not None:
        check_text("email", email, max_length=EMAIL_MAX)
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", email):
        raise InvalidInput("email", "format", f"not an e-mail address: {email!r}")
    if phone is not None and not re.fullmatch(r"\+?[0-9 ./()-]{6,20}", phone):
        raise InvalidInput("phone", "format", f"not a phone number: {phone!r}")


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
    password_fd: PasswordFd = None,
    json: Json = False,
) -> None:
    from mcn_cli.actions import certificates
    from mcn_cli.domain.identifiers import parse_kbo, parse_niss, parse_pharmacy_nihii
    from mcn_cli.ehealth.certificates import ORG, OT, PERSONAL, Holder, check_name

    if sum((org, ot, personal)) != 1:
        raise InvalidInput("cert", "kind", Text.which)
    if name:
        check_name(name)  # <= 64 characters, no control character: before any prompt or file
    _check_contact(email, phone)
    company = None
    if personal:
        if niss is None:
            raise InvalidInput("niss", "missing", "--personal needs --niss")
        holder = Holder(PERSONAL, parse_niss(niss).value, name)
    else:
        if nihii is None or kbo is None or not name:
            raise InvalidInput("cert", "missing", "--org and --ot need --nihii, --kbo and --name")
        company = parse_kbo(kbo).value
        holder = Holder(ORG if org else OT, parse_pharmacy_nihii(nihii).value, name)
    if key not in ("rsa", "ec"):
        raise InvalidInput("key", "choice", f"must be rsa or ec, got {key!r}")
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
    emit_line(Text.requested.format(keystore=result.keystore, csr=result.csr))
    emit_line(Text.sandbox_issued.format(path=result.issued) if result.issued else Text.next_steps)


@app.command("install", help=Text.install_help)
def install(
    certificate: Annotated[Path, typer.Argument(help=Text.certificate_help, show_default=False)],
    keystore: Annotated[
        Path | None, typer.Option("--keystore", help=Text.keystore_help, show_default=False)
    ] = None,
    password_fd: PasswordFd = None,
    json: Json = False,
) -> None:
    from functools import cache

    from mcn_cli.actions import certificates
    from mcn_cli.actions.secrets import secret

    password = cache(
        secret(
            "keystore password",
            "MCN_KEYSTORE_PASSWORD",
            fd=password_fd,
            prompt="Keystore password: ",
            fd_option="--password-fd",
        )
    )
    result = certificates.install(certificate, password, keystore=keystore)
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
        Text.installed.format(
            keystore=result.keystore,
            until=result.not_after.date(),
            serial=result.encryption_serial,
            etk=result.etk,
        )
    )


def _listed_json(item: Any) -> dict[str, Any]:
    return {
        "name": item.name,
        "keystore": str(item.keystore),
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
                    i.state,
                    i.holder.label if i.holder else "-",
                    i.not_after.date() if i.not_after else "-",
                    i.days_left if i.days_left is not None else "-",
                )
                for i in found
            ],
        )
    warned = [item for item in found if item.warning]
    for item in warned:
        if item.expired and item.not_after is not None:
            text = Text.expired.format(name=item.name, date=item.not_after.date())
        else:
            text = Text.expiring.format(name=item.name, days=item.days_left)
        sys.stderr.write("mcn: warning: " + visible(text) + "\n")
    if check and warned:
        raise typer.Exit(int(ExitStatus.AUTH_NEEDED))


@app.command("show", help=Text.show_help)
def show(
    name: Annotated[str, typer.Argument(help=Text.name_arg_help, show_default=False)], json: Json = False
) -> None:
    from mcn_cli.actions import certificates

    item = certificates.find(name)
    if json:
        emit_json(_listed_json(item))
        return
    emit_fields([(k.replace("_", " "), v) for k, v in _listed_json(item).items() if v is not None])


@app.command("revoke", help=Text.revoke_help)
def revoke(
    name: Annotated[str, typer.Argument(help=Text.name_arg_help, show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help=Text.reason_help)] = "unspecified",
    yes: Annotated[bool, typer.Option("--yes", help=Text.yes_help)] = False,
    json: Json = False,
) -> None:
    from mcn_cli.actions import certificates

    item = certificates.find(name)
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidInput("yes", "confirmation", Text.no_confirmation)
        if not typer.confirm(Text.confirm.format(name=item.name), err=True):
            raise typer.Abort()
    result = certificates.revoke(item, reason)
    if json:
        emit_json({"request": str(result.request), "revoked": result.revoked_now})
    elif result.revoked_now:
        emit_line(Text.revoked_now.format(path=result.request))
    else:
        emit_line(Text.revocation.format(path=result.request))
