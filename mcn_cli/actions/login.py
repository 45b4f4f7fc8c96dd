"""Opening an eHealth session: identify with the eID (or a personal fallback keystore), hold the
token with the pharmacy's organisation certificate, keep it sealed for at most 12 hours."""

from __future__ import annotations

import base64
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mcn_cli.actions.local import open_database
from mcn_cli.actions.secrets import secret
from mcn_cli.domain.errors import AuthenticationNeeded, InvalidInput
from mcn_cli.domain.identifiers import parse_niss, parse_personal_nihii, parse_pharmacy_nihii
from mcn_cli.domain.messages import N_, Message
from mcn_cli.ehealth import endpoints, ns, saml, sts_client
from mcn_cli.ehealth.signers import (
    KeystoreSigner,
    Pkcs11Signer,
    Signer,
    card_niss,
    default_module,
    load_keystore,
    open_eid,
)
from mcn_cli.store import sessions, vault
from mcn_cli.store.sessions import Session
from mcn_cli.store.settings import Settings, load

MAX_SESSION = timedelta(hours=12)
OFFICE_KEYSTORE = "NIHII-OTD_PHARMACY=<nihii>.p12"  # an office's organisation keystore, as eHealth names it

# The certificates a login uses, as the messages about them name them.
CERTIFICATES: dict[str, Message] = {
    "organisation": Message(N_("organisation certificate")),
    "identification": Message(N_("identification certificate")),
}


def login_command(
    session_name: str = sessions.DEFAULT,
    *,
    office: bool = False,
    env: str | None = None,
    keystore: str = OFFICE_KEYSTORE,
) -> str:
    """The command line that opens session ``session_name`` (a pharmacist's, or an office's: it
    logs in with its organisation keystore alone, ``keystore``), for hints."""
    words = ["mcn"]
    if env is not None:
        words += ["--env", env]
    words.append("login")
    if office:
        words += ["--org", keystore if keystore == OFFICE_KEYSTORE else shlex.quote(keystore)]
    if session_name != sessions.DEFAULT:
        words += ["--session", shlex.quote(session_name)]
    return " ".join(words)


@dataclass(frozen=True)
class Credentials:
    """Where the secrets come from: file descriptors given on the command line, else env/prompt."""

    pin_fd: int | None = None
    org_password_fd: int | None = None
    password_fd: int | None = None


def _org_nihii(certificate: x509.Certificate) -> str:
    for attribute in certificate.subject:
        value = str(attribute.value)
        if value.startswith("NIHII-PHARMACY="):
            return parse_pharmacy_nihii(value.split("=", 1)[1], "org").value
    raise InvalidInput(
        "org", "not-a-pharmacy", N_("the organisation keystore is not a pharmacy's (NIHII-PHARMACY=...)")
    )


def _office_nihii(certificate: x509.Certificate) -> str | None:
    for attribute in certificate.subject:
        value = str(attribute.value)
        if value.startswith("NIHII-OTD_PHARMACY="):
            return parse_pharmacy_nihii(value.split("=", 1)[1], "org").value
    return None


def _personal_niss(certificate: x509.Certificate) -> str:
    for attribute in certificate.subject:
        value = str(attribute.value)
        if value.startswith("SSIN="):
            return parse_niss(value.split("=", 1)[1], "fallback").value
    raise InvalidInput(
        "fallback", "not-personal", N_("the fallback keystore is not a personal one (SSIN=...)")
    )


def _user_name(certificate: x509.Certificate, niss: str) -> str:
    given = certificate.subject.get_attributes_for_oid(x509.NameOID.GIVEN_NAME)
    surname = certificate.subject.get_attributes_for_oid(x509.NameOID.SURNAME)
    if given and surname:
        return f"{given[0].value} {surname[0].value}"
    for attribute in certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME):
        value = str(attribute.value)
        if "=" not in value and value != "eHealth-platform Belgium":
            return value.title()
    return niss


Warn = Callable[[Message], None]  # str(message) is its English text


def _warn_expiry(certificate: x509.Certificate, what: str, now: datetime, warn: Warn) -> None:
    """A warning when a certificate used to log in expires within WARN_DAYS days."""
    from mcn_cli.actions.certificates import WARN_DAYS

    left = (certificate.not_valid_after_utc - now).days
    if left < WARN_DAYS:
        params = {
            "certificate": CERTIFICATES[what],
            "days": left,
            "until": certificate.not_valid_after_utc.date(),
        }
        if left > 1:
            warn(
                Message(
                    N_(
                        "the {certificate} expires in {days} days (on {until}): request a new one "
                        "(mcn cert request)"
                    ),
                    params,
                )
            )
        else:
            warn(
                Message(
                    N_("the {certificate} expires on {until}: request a new one (mcn cert request)"), params
                )
            )


def _check_validity(certificate: x509.Certificate, what: str, now: datetime) -> None:
    if certificate.not_valid_after_utc <= now:
        raise AuthenticationNeeded(
            N_("the {certificate} expired on {date}"),
            certificate=CERTIFICATES[what],
            date=certificate.not_valid_after_utc.date(),
        )
    if certificate.not_valid_before_utc > now:
        raise AuthenticationNeeded(
            N_("the {certificate} is not valid before {date}"),
            certificate=CERTIFICATES[what],
            date=certificate.not_valid_before_utc,
        )


def login(
    name: str = sessions.DEFAULT,
    *,
    fallback: Path | None = None,
    org: Path | None = None,
    user: str | None = None,
    holder_niss: str | None = None,
    credentials: Credentials = Credentials(),
    settings: Settings | None = None,
    trace: Path | None = None,
    warn: Warn = lambda message: None,
) -> Session:
    """Open session ``name``. ``holder_niss`` (else the pharmacy_holder setting) is the NISS of
    the pharmacy's titular pharmacist, claimed and then certified by eHealth."""
    settings = settings or load()
    env_name = endpoints.environment_name(settings)
    endpoints.sts_protocol(settings)
    if holder_niss is not None:
        holder_niss = parse_niss(holder_niss, "holder").value
    sandbox_files = _sandbox(env_name)
    org_path = org or (Path(settings.org_keystore).expanduser() if settings.org_keystore else None)
    if org_path is None and sandbox_files is not None:
        from mcn_cli.sandbox.world import PARC

        org_path = sandbox_files.org_keystore(PARC.nihii)
    if org_path is None:
        raise InvalidInput("org", "missing", N_("give --org KEYSTORE, or set org_keystore in config.toml"))
    sandbox_password = _sandbox_password(org_path, sandbox_files)
    org_password = secret(
        Message(N_("organisation keystore password")),
        "MCN_ORG_PASSWORD",
        fd=credentials.org_password_fd,
        prompt=Message(N_("Password of {name}: "), {"name": org_path.name}),
        default=sandbox_password,
        fd_option="--org-password-fd",
    )
    holder = load_keystore(org_path, org_password(), "org")
    now = datetime.now(UTC)
    _check_validity(holder.certificate, "organisation", now)
    _warn_expiry(holder.certificate, "organisation", now, warn)
    office = _office_nihii(holder.certificate)
    if office is not None:
        if fallback is not None or user is not None or holder_niss is not None:
            raise InvalidInput(
                "org",
                "office",
                N_("a tarification office logs in with its organisation certificate alone: {command}"),
                command=login_command(name, office=True, keystore=str(org_path)),
            )
        attributes = saml.office_attributes(office)
        return _open(name, "ot", env_name, settings, holder, holder, attributes, office, office, now, trace)
    pharmacy = _org_nihii(holder.certificate)
    if holder_niss is None and settings.pharmacy_holder:
        holder_niss = parse_niss(settings.pharmacy_holder, "pharmacy_holder").value
    if holder_niss is None:
        holder_niss = _sandbox_holder(pharmacy, sandbox_files)
    if holder_niss is None:
        raise InvalidInput(
            "pharmacy_holder",
            "missing",
            N_(
                "the NISS of the pharmacy's titular pharmacist is needed (your own if you are the titular): "
                'set pharmacy_holder = "<NISS>" in config.toml, or give --holder NISS'
            ),
        )

    return _as_pharmacist(
        name,
        env_name,
        settings,
        sandbox_files,
        fallback,
        user,
        credentials,
        holder,
        pharmacy,
        holder_niss,
        trace,
        warn=warn,
    )


def renew(
    name: str = sessions.DEFAULT,
    *,
    fallback: Path | None = None,
    credentials: Credentials = Credentials(),
    settings: Settings | None = None,
    trace: Path | None = None,
) -> Session:
    """Renew session ``name`` through WS-Trust while its token is valid: signed again by the same
    user's identification key (an office's: its organisation key, kept in the session), the STS
    certifies the same attributes anew."""
    settings = settings or load()
    env_name = endpoints.environment_name(settings)
    if endpoints.sts_protocol(settings) != "wstrust":
        raise InvalidInput(
            "sts_protocol",
            "renew",
            N_('only the WS-Trust STS renews a token: set sts_protocol = "wstrust"'),
        )
    with open_database() as db:
        current = sessions.require(db, vault.unlock(db), name)
    if current.env != env_name:
        raise AuthenticationNeeded(
            N_("session {name!r} was opened in {opened}, not {env}: log in again"),
            hint=N_("{command}"),
            name=name,
            opened=current.env,
            env=env_name,
            command=login_command(name, office=current.kind == "ot", env=env_name),
        )
    sandbox_files = _sandbox(env_name)
    holder = holder_signer(current)
    now = datetime.now(UTC)
    if current.kind == "ot":
        if fallback is not None:
            raise InvalidInput(
                "fallback",
                "office",
                N_("a tarification office renews with its organisation key: drop --fallback"),
            )
        attributes = saml.office_attributes(current.organisation)
        org = current.organisation
        return _open(
            name,
            "ot",
            env_name,
            settings,
            holder,
            holder,
            attributes,
            org,
            org,
            now,
            trace,
            current.token_xml(),
        )
    if current.holder_niss is None:
        raise AuthenticationNeeded(
            N_("session {name!r} predates certified holder values: log in again"),
            hint=N_("{command}"),
            name=name,
            command=login_command(name),
        )
    return _as_pharmacist(
        name,
        env_name,
        settings,
        sandbox_files,
        fallback,
        current.user_niss,
        credentials,
        holder,
        current.organisation,
        current.holder_niss,
        trace,
        current.token_xml(),
    )


def _as_pharmacist(
    name: str,
    env_name: str,
    settings: Settings,
    sandbox_files: object,
    fallback: Path | None,
    user: str | None,
    credentials: Credentials,
    holder: KeystoreSigner,
    pharmacy: str,
    holder_niss: str,
    trace: Path | None,
    renewing: bytes | None = None,
    warn: Warn = lambda message: None,
) -> Session:
    """Identify the pharmacist (eID or fallback keystore), then open or renew the session."""
    identification, user_niss = _identify(settings, sandbox_files, fallback, user, credentials, warn)
    try:
        now = datetime.now(UTC)
        _check_validity(identification.certificate, "identification", now)
        _warn_expiry(identification.certificate, "identification", now, warn)
        if user and parse_niss(user, "user").value != user_niss:
            raise InvalidInput(
                "user",
                "mismatch",
                N_("the identification certificate is {found}'s, not {given}'s"),
                found=user_niss,
                given=user,
            )
        attributes = saml.pharmacy_attributes(user_niss, pharmacy, holder_niss)
        return _open(
            name,
            "pharmacy",
            env_name,
            settings,
            identification,
            holder,
            attributes,
            user_niss,
            pharmacy,
            now,
            trace,
            renewing,
        )
    finally:
        if isinstance(identification, Pkcs11Signer):
            identification.close()


def _sandbox(env_name: str) -> object | None:
    """The sandbox's files when it is the environment (it must be set up)."""
    if env_name != "sandbox":
        return None
    from mcn_cli.sandbox.world import Files

    files = Files()
    if not files.exists():
        raise InvalidInput(
            "sandbox", "not-initialised", N_("the sandbox is not set up: run mcn sandbox init")
        )
    return files


def _identify(
    settings: Settings,
    sandbox_files: object,
    fallback: Path | None,
    user: str | None,
    credentials: Credentials,
    warn: Warn = lambda message: None,
) -> tuple[Signer, str]:
    """The identification key (a personal fallback keystore, or the eID: the caller closes it)
    and whose NISS it carries."""
    if fallback is not None:
        password = secret(
            Message(N_("fallback keystore password")),
            "MCN_KEYSTORE_PASSWORD",
            fd=credentials.password_fd,
            prompt=Message(N_("Password of {name}: "), {"name": fallback.name}),
            default=_sandbox_password(fallback, sandbox_files),
            fd_option="--password-fd",
        )
        keystore = load_keystore(fallback, password(), "fallback")
        return keystore, _personal_niss(keystore.certificate)
    module = settings.pkcs11_module or _sandbox_module(sandbox_files) or default_module()
    if user is None and sandbox_files is not None:
        from mcn_cli.sandbox.world import PARC

        user = PARC.holder  # the sandbox has a card per pharmacist: the titular's by default
    pin = secret(
        Message(N_("eID PIN")),
        "MCN_PIN",
        fd=credentials.pin_fd,
        prompt=Message(N_("eID PIN: ")),
        fd_option="--pin-fd",
    )
    eid = open_eid(module, pin, user_niss=parse_niss(user, "user").value if user else None, warn=warn)
    found = card_niss(eid.certificate)
    if found is None:
        eid.close()
        raise AuthenticationNeeded(N_("the eID certificate carries no national number"))
    return eid, found


def _open(
    name: str,
    kind: str,
    env_name: str,
    settings: Settings,
    identification: Signer,
    holder: KeystoreSigner,
    attributes: tuple[saml.Attribute, ...],
    user: str,
    organisation: str,
    now: datetime,
    trace: Path | None,
    renewing: bytes | None = None,
) -> Session:
    """Ask the STS for the token (or to renew ``renewing``) and keep the session; a session
    keeps one user."""
    with open_database() as db:
        cache_vault = vault.unlock(db)
        existing = sessions.find(db, cache_vault, name)
        if existing is not None and existing.user_niss != user:
            raise InvalidInput(
                "session",
                "other-user",
                N_("session {name!r} belongs to {user}: log out first or use --session NAME"),
                name=name,
                user=existing.user_name,
            )
        environment = endpoints.resolve(settings)
        token, certified_kind = sts_client.request_token(
            environment, identification, holder, attributes, trace=trace, renewing=renewing
        )
        if certified_kind != kind:
            if kind == "ot":
                raise AuthenticationNeeded(
                    N_("eHealth certified a pharmacy's session, not a tarification office's")
                )
            raise AuthenticationNeeded(
                N_("eHealth certified a tarification office's session, not a pharmacy's")
            )
        holder_nihii = holder_niss = None
        if kind == "pharmacy":
            holder_niss = token.value(saml.CLAIM_HOLDER, ns.IDENTIFICATION_NS)
            nihii = token.value(saml.CERTIFIED_HOLDER_NIHII) or ""
            try:
                holder_nihii = parse_personal_nihii(nihii, "holder-nihii").value
            except InvalidInput:
                raise AuthenticationNeeded(
                    N_("eHealth certified no valid NIHII for the pharmacy holder ({nihii!r})"), nihii=nihii
                ) from None
        expires = min(token.not_on_or_after, now + MAX_SESSION)
        session = Session(
            name=name,
            kind=kind,
            env=env_name,
            user_niss=user,
            user_name=_user_name(identification.certificate, user),
            organisation=organisation,
            holder_nihii11=holder_nihii,
            issued=now.isoformat(timespec="seconds"),
            expires=expires.isoformat(timespec="seconds"),
            token=base64.b64encode(token.xml).decode(),
            hok_key=base64.b64encode(holder.private_der()).decode(),
            hok_certificate=base64.b64encode(
                holder.certificate.public_bytes(serialization.Encoding.DER)
            ).decode(),
            holder_niss=holder_niss,
        )
        sessions.save(db, cache_vault, session)
    return session


def _sandbox_password(path: Path, files: object) -> str | None:
    """Sandbox keystores open with the documented sandbox password without asking."""
    if files is None:
        return None
    from mcn_cli.sandbox.pki import SANDBOX_PASSWORD
    from mcn_cli.sandbox.world import Files

    assert isinstance(files, Files)
    try:
        inside = path.resolve().is_relative_to(files.keystores.resolve())
    except OSError:
        inside = False
    return SANDBOX_PASSWORD if inside else None


def _sandbox_module(files: object) -> str | None:
    if files is None:
        return None
    from mcn_cli.sandbox import softhsm
    from mcn_cli.sandbox.world import Files

    assert isinstance(files, Files)
    module = softhsm.module()
    if module is None:
        raise InvalidInput(
            "softhsm",
            "missing",
            N_("the sandbox eID needs SoftHSM2: {install}, or log in with --fallback KEYSTORE"),
            install=Message(softhsm.INSTALL_HINT),
        )
    softhsm.configure(files.softhsm)
    return module


def _sandbox_holder(pharmacy: str, files: object) -> str | None:
    if files is None:
        return None
    from mcn_cli.sandbox.world import pharmacy as find

    found = find(pharmacy)
    return found.holder if found else None


def holder_signer(session: Session) -> KeystoreSigner:
    """The holder-of-key key and certificate kept in a session, to sign service calls."""
    # validated when the keystore was opened at login; sealed (authenticated) in the store since:
    # checking the RSA key again would cost ~50 ms on every consultation
    key = serialization.load_der_private_key(
        base64.b64decode(session.hok_key), password=None, unsafe_skip_rsa_key_validation=True
    )
    certificate = x509.load_der_x509_certificate(base64.b64decode(session.hok_certificate))
    return KeystoreSigner(key, certificate)
