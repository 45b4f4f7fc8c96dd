"""Certificates from request to revocation, in the keystore folder: a keystore per holder named
as eHealth names them (NIHII-PHARMACY=....p12, SSIN=....p12) with its public companions:
the request (.csr, .request.json), the installed certificate (.crt), the encryption token (.etk)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from mcn_cli.domain.errors import AuthenticationNeeded, InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import certificates as certs
from mcn_cli.ehealth import keystore as p12
from mcn_cli.ehealth.certificates import Holder
from mcn_cli.store import paths
from mcn_cli.store.secure_files import write_private
from mcn_cli.store.settings import Settings, load

WARN_DAYS = 90  # eHealth's replacement window: a new certificate may be asked in the last 3 months
MIN_PASSWORD = 8

Password = Callable[[], str]


def keystore_dir(settings: Settings | None = None) -> Path:
    settings = settings or load()
    return (
        Path(settings.keystore_dir).expanduser() if settings.keystore_dir else paths.data_dir() / "keystores"
    )


def _companion(keystore: Path, suffix: str) -> Path:
    return keystore.with_name(keystore.stem + suffix)


def _write_all(files: dict[Path, bytes]) -> None:
    """Write every file or none: a failure removes what was written."""
    written: list[Path] = []
    try:
        for path, data in files.items():
            write_private(path, data, replace=False)
            written.append(path)
    except FileExistsError as error:
        for path in written:
            path.unlink(missing_ok=True)
        raise InvalidInput(
            "keystore", "exists", N_("{path} exists already: move it away first"), path=error.filename
        ) from None
    except OSError as error:
        for path in written:
            path.unlink(missing_ok=True)
        raise InvalidInput(
            "keystore",
            "write",
            N_("cannot write in {folder}: {reason}; nothing was kept"),
            folder=next(iter(files)).parent,
            reason=error.strerror,
        ) from None


def _sandbox_files(settings: Settings) -> object | None:
    from mcn_cli.ehealth.endpoints import environment_name

    if environment_name(settings) != "sandbox":
        return None
    from mcn_cli.sandbox.world import Files

    files = Files()
    return files if files.exists() else None


@dataclass(frozen=True)
class Requested:
    keystore: Path
    csr: Path
    issued: Path | None  # in the sandbox, the certificate its CA issued at once


def request(
    holder: Holder,
    password: Password,
    *,
    kbo: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    folder: Path | None = None,
    settings: Settings | None = None,
    key_type: str = "rsa",
) -> Requested:
    """Keystore, CSR and request form; ``key_type`` "ec" (P-384) is for the offline path only:
    eHealth's registration service asks for RSA."""
    settings = settings or load()
    folder = folder or keystore_dir(settings)
    keystore = folder / f"{holder.label}.p12"
    if keystore.exists():
        raise InvalidInput(
            "keystore", "exists", N_("{path} exists already: move it away first"), path=keystore
        )
    secret = password()
    if len(secret) < MIN_PASSWORD:
        raise InvalidInput(
            "password", "length", N_("must have at least {count} characters"), count=MIN_PASSWORD
        )
    if key_type not in certs.KEY_TYPES:
        raise InvalidInput(
            "key",
            "choice",
            N_("must be one of {choices}, got {value!r}"),
            choices=", ".join(certs.KEY_TYPES),
            value=key_type,
        )
    key = certs.new_key(key_type)
    csr = certs.signing_request(key, holder)
    form = {
        "key": key_type,
        "type": holder.kind,
        "number": holder.number,
        "name": holder.name,
        "kbo": kbo,
        "email": email,
        "phone": phone,
        "application_id": None,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    files = {
        keystore: p12.write(p12.Keystore([p12.KeyEntry("authentication", key, None)]), secret),
        _companion(keystore, ".csr"): certs.pem(csr),
        _companion(keystore, ".request.json"): json.dumps(form, indent=2).encode(),
    }
    issued = None
    sandbox = _sandbox_files(settings)
    if sandbox is not None:
        from mcn_cli.sandbox.ca import issue

        issued = _companion(keystore, ".issued.pem")
        files[issued] = issue(sandbox, csr)  # type: ignore[arg-type]
    _write_all(files)
    return Requested(keystore, _companion(keystore, ".csr"), issued)


@dataclass(frozen=True)
class Installed:
    keystore: Path
    holder: Holder
    not_after: datetime
    encryption_serial: int
    etk: Path


def _trusted(settings: Settings) -> list[x509.Certificate]:
    trusted: list[x509.Certificate] = []
    if settings.ca_certificates:
        trusted += certs.load_certificates(Path(settings.ca_certificates).expanduser().read_bytes())
    sandbox = _sandbox_files(settings)
    if sandbox is not None:
        trusted += certs.load_certificates(sandbox.ca_cert("root").read_bytes())  # type: ignore[attr-defined]
    return trusted


def install(
    certificate_file: Path,
    password: Password,
    *,
    keystore: Path | None = None,
    settings: Settings | None = None,
) -> Installed:
    settings = settings or load()
    try:
        chain_in_file = certs.load_certificates(certificate_file.read_bytes())
    except OSError as error:
        raise InvalidInput(
            "certificate",
            "unreadable",
            N_("cannot read {path}: {reason}"),
            path=certificate_file,
            reason=error.strerror,
        ) from None
    leaf = chain_in_file[0]
    holder = certs.holder_of(leaf)
    if holder is None:
        raise InvalidInput(
            "certificate", "subject", N_("not an eHealth certificate (CN=NIHII-PHARMACY=..., SSIN=...)")
        )
    keystore = keystore or keystore_dir(settings) / f"{holder.label}.p12"
    try:
        data = p12.read_file(keystore)  # a regular file of sane size, never a FIFO or /dev/zero
    except p12.KeystoreUnreadable as error:
        if error.rule == "missing":
            raise InvalidInput(
                "keystore", "missing", N_("no keystore {path}: give --keystore"), path=keystore
            ) from None
        raise
    try:
        store = p12.read(data, password())
    except p12.KeystoreError as error:
        raise AuthenticationNeeded(
            N_("keystore {name}: {error}"), name=keystore.name, error=str(error)
        ) from None
    entry = store.get("authentication")
    if entry is None:
        raise InvalidInput(
            "keystore", "alias", N_("{name} has no key under alias 'authentication'"), name=keystore.name
        )
    if not certs.same_key(leaf, entry.private_key):
        raise InvalidInput(
            "certificate", "key", N_("the certificate does not match the key in {name}"), name=keystore.name
        )
    expected = _request_holder(keystore)
    if expected is not None and expected.label != holder.label:
        raise InvalidInput(
            "certificate",
            "subject",
            N_("the certificate is for {label}, the request was for {expected}"),
            label=holder.label,
            expected=expected.label,
        )
    chain = certs.verify_chain(leaf, chain_in_file[1:], _trusted(settings), datetime.now(UTC))
    encryption_key = certs.new_key()
    encryption = certs.encryption_certificate(entry.private_key, leaf, encryption_key)
    etk = certs.encryption_token(entry.private_key, leaf, encryption)
    others = [e for e in store.entries if e is not entry]
    rebuilt = p12.Keystore(
        [
            p12.KeyEntry("authentication", entry.private_key, leaf, chain),
            p12.KeyEntry(str(encryption.serial_number), encryption_key, encryption, [leaf]),
            *others,
        ]
    )
    secret = password()
    data = p12.write(rebuilt, secret)
    etk_path = _companion(keystore, ".etk")
    try:
        write_private(keystore, data, replace=True)
        write_private(_companion(keystore, ".crt"), b"".join(certs.pem(c) for c in [leaf, *chain]))
        write_private(etk_path, etk)
    except OSError as error:
        raise InvalidInput(
            "keystore", "write", N_("cannot write {path}: {reason}"), path=keystore, reason=error.strerror
        ) from None
    return Installed(keystore, holder, leaf.not_valid_after_utc, encryption.serial_number, etk_path)


def _request_holder(keystore: Path) -> Holder | None:
    path = _companion(keystore, ".request.json")
    try:
        form = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return Holder(form["type"], form["number"], form.get("name"))


@dataclass(frozen=True)
class Listed:
    name: str
    keystore: Path
    state: str  # "installed", "requested", "pending", "expired", "revoked", "replaced", "unknown"
    holder: Holder | None
    subject: str | None
    issuer: str | None
    serial: int | None
    not_after: datetime | None

    @property
    def days_left(self) -> int | None:
        return None if self.not_after is None else (self.not_after - datetime.now(UTC)).days

    @property
    def expired(self) -> bool:
        return self.state == "expired"

    @property
    def warning(self) -> bool:
        """Expired, or installed and expiring within WARN_DAYS days (a revoked one is not warned of)."""
        if self.expired:
            return True
        return self.state == "installed" and self.days_left is not None and self.days_left < WARN_DAYS


def _folders(settings: Settings) -> list[Path]:
    folders = [keystore_dir(settings)]
    sandbox = _sandbox_files(settings)
    if sandbox is not None:
        folders.append(sandbox.keystores)  # type: ignore[attr-defined]
    return folders


def _revoked(settings: Settings) -> set[int]:
    sandbox = _sandbox_files(settings)
    return sandbox.revoked() if sandbox is not None else set()  # type: ignore[attr-defined]


def describe(keystore: Path, revoked: set[int]) -> Listed:
    crt = _companion(keystore, ".crt")
    if crt.exists():
        leaf = certs.load_certificates(crt.read_bytes())[0]
        state = "installed"
        if keystore.stem.endswith(".previous"):
            state = "replaced"  # a renewal took its place (mcn cert fetch): not warned of
        elif leaf.serial_number in revoked or _revoked_online(keystore):
            state = "revoked"
        elif leaf.not_valid_after_utc <= datetime.now(UTC):
            state = "expired"
        return Listed(
            keystore.stem,
            keystore,
            state,
            certs.holder_of(leaf),
            leaf.subject.rfc4514_string(),
            leaf.issuer.rfc4514_string(),
            leaf.serial_number,
            leaf.not_valid_after_utc,
        )
    state = "requested" if _companion(keystore, ".csr").exists() else "unknown"
    if state == "requested" and _online(keystore):
        state = "pending"  # registered at eHealth: mcn cert fetch
    return Listed(keystore.stem, keystore, state, _request_holder(keystore), None, None, None, None)


def _revoked_online(keystore: Path) -> bool:
    try:
        return bool(json.loads(_companion(keystore, ".revocation.json").read_text()).get("revoked"))
    except (FileNotFoundError, ValueError, AttributeError):
        return False


def _online(keystore: Path) -> bool:
    try:
        return bool(
            json.loads(_companion(keystore, ".request.json").read_text()).get("public_key_identifier")
        )
    except (FileNotFoundError, ValueError, AttributeError):
        return False


def list_keystores(settings: Settings | None = None) -> list[Listed]:
    settings = settings or load()
    revoked = _revoked(settings)
    found = []
    for folder in _folders(settings):
        if folder.is_dir():
            found += [describe(p, revoked) for p in sorted(folder.glob("*.p12"))]
    return found


def find(name: str, settings: Settings | None = None) -> Listed:
    """A keystore by path, file name or holder label (NIHII-PHARMACY=27150201)."""
    settings = settings or load()
    path = Path(name).expanduser()
    if path.suffix == ".p12" and path.exists():
        return describe(path, _revoked(settings))
    for listed in list_keystores(settings):
        if name in (listed.name, listed.keystore.name):
            return listed
    raise InvalidInput("keystore", "unknown", N_("no keystore {name!r} (see mcn cert list)"), name=name)


@dataclass(frozen=True)
class Revocation:
    request: Path
    revoked_now: bool  # the sandbox's CA revoked it at once


def revoke(listed: Listed, reason: str, settings: Settings | None = None) -> Revocation:
    settings = settings or load()
    if listed.serial is None:
        raise InvalidInput(
            "keystore",
            "no-certificate",
            N_("{name} has no installed certificate to revoke"),
            name=listed.name,
        )
    if listed.state == "revoked":
        raise InvalidInput("keystore", "revoked", N_("{name} is revoked already"), name=listed.name)
    form = {
        "serial": listed.serial,
        "subject": listed.subject,
        "issuer": listed.issuer,
        "reason": reason,
        "requested": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = _companion(listed.keystore, ".revocation.json")
    write_private(path, json.dumps(form, indent=2).encode())
    sandbox = _sandbox_files(settings)
    revoked_now = False
    if sandbox is not None:
        from mcn_cli.sandbox.ca import revoke as sandbox_revoke

        revoked_now = sandbox_revoke(sandbox, listed.serial, listed.issuer or "")  # type: ignore[arg-type]
    return Revocation(path, revoked_now)
