"""Certificates through eHealth's registration services (CERTRA.md): request online (contract,
CSR from the contract's DN, GenerateCertificate signed with the eID Signature key), status,
fetch and install, the encryption token through EtkRA (checked in the ETK depot), revocation.

Everything that can be refused locally is refused before anything is sent (CERTRA.md §5).
Files: the keystore folder's ``<LABEL>.p12`` with its companions, as ``certificates`` writes
them; ``<LABEL>.request.json`` records the public key identifier eHealth registered and how the
request is validated. A replacement inside the window is prepared in ``<LABEL>.next.p12`` and
takes the place of the old keystore when it is fetched (the old one kept as ``<LABEL>.previous``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from mcn_cli.actions.certificates import (
    MIN_PASSWORD,
    Password,
    _companion,
    _sandbox_files,
    _trusted,
    _write_all,
    keystore_dir,
)
from mcn_cli.domain.errors import AuthenticationNeeded, InvalidInput, PolicyRefused, ServiceUnavailable
from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import certificates as certs
from mcn_cli.ehealth import certra
from mcn_cli.ehealth import keystore as p12
from mcn_cli.ehealth.certificates import ORG, OT, PERSONAL, Holder
from mcn_cli.ehealth.certra import Actor, CertRaError, Contact, Contract
from mcn_cli.ehealth.signers import EID_KEY, EID_SIGNATURE_KEY, KeystoreSigner
from mcn_cli.store.secure_files import write_private
from mcn_cli.store.settings import Settings, load

REPLACEMENT_DAYS = 90  # eHealth: a replacement may be requested in the last 3 months
MIN_RSA_BITS = 2048
PATTERNS = {PERSONAL: re.compile(r"[0-9]{11}"), ORG: re.compile(r"[0-9]{8}"), OT: re.compile(r"[0-9]{8}")}

Pin = Callable[[], str]
Accept = Callable[[Contract], bool]


class CertificateRefused(PolicyRefused):
    """eHealth's registration service refused: its code and message, one line."""

    def __init__(self, error: CertRaError) -> None:
        super().__init__(N_("eHealth refused ({code}): {text}"), code=error.code, text=error.message)
        self.code = error.code


def refused(error: CertRaError) -> CertificateRefused:
    return CertificateRefused(error)


# --- the eID ----------------------------------------------------------------------------------


def _eid_module(settings: Settings) -> str:
    from mcn_cli.ehealth.signers import default_module

    files = _sandbox_files(settings)
    if files is not None and not settings.pkcs11_module:
        from mcn_cli.sandbox import softhsm

        module = softhsm.module()
        if module is None:
            raise InvalidInput(
                "softhsm", "missing", N_("the sandbox eID needs SoftHSM2: {hint}"), hint=softhsm.INSTALL_HINT
            )
        softhsm.configure(files.softhsm)  # type: ignore[attr-defined]
        return module
    return settings.pkcs11_module or default_module()


def _default_user(settings: Settings, user: str | None) -> str | None:
    if user is None and _sandbox_files(settings) is not None:
        from mcn_cli.sandbox.world import PARC

        return PARC.holder  # the sandbox has a card per pharmacist: the titular's by default
    return user


def eid_certificate(settings: Settings, label: str, user: str | None = None) -> x509.Certificate:
    """The eID's certificate ``label`` (Authentication or Signature), read without the PIN."""
    from pkcs11 import Attribute, ObjectClass
    from pkcs11 import exceptions as p11

    from mcn_cli.ehealth.signers import card_niss, pkcs11_library

    module = _eid_module(settings)
    user = _default_user(settings, user)
    try:
        library = pkcs11_library(module)
    except (RuntimeError, OSError, p11.PKCS11Error):
        raise InvalidInput(
            "pkcs11-module", "load", N_("cannot load the PKCS#11 module {module}"), module=module
        ) from None
    for token in library.get_tokens(token_label="BELPIC"):
        with token.open() as session:
            for obj in session.get_objects(
                {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}
            ):
                certificate = x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE]))
                if user is None or card_niss(certificate) == user:
                    return certificate
    if user is not None:
        raise AuthenticationNeeded(N_("no eID card of {niss} in the readers"), niss=user)
    raise AuthenticationNeeded(N_("no eID card found (no token BELPIC): insert the card"))


def open_key(settings: Settings, label: str, pin: Pin, user: str | None = None) -> Any:
    from mcn_cli.ehealth.signers import open_eid

    return open_eid(_eid_module(settings), pin, user_niss=_default_user(settings, user), key_label=label)


def eid_actor(certificate: x509.Certificate) -> Actor:
    """The eID holder as CertRA's Signer: SSIN, the given names, the surname, as on the card."""
    from mcn_cli.ehealth.signers import card_niss

    niss = card_niss(certificate)
    given = certificate.subject.get_attributes_for_oid(NameOID.GIVEN_NAME)
    surname = certificate.subject.get_attributes_for_oid(NameOID.SURNAME)
    if niss is None or not surname:
        raise AuthenticationNeeded(N_("the eID certificate carries no national number or name"))
    return Actor(certra.SSIN, niss, str(surname[0].value), (str(given[0].value),) if given else ())


def _same_name(a: str, b: str) -> bool:
    return " ".join(certra.plain_upper(a).split()) == " ".join(certra.plain_upper(b).split())


# --- local checks (CERTRA.md §5) ----------------------------------------------------------------


def check_holder(holder: Holder, signer: Actor) -> None:
    """Refuse before sending: the identifier's pattern and check digits, and for a personal
    certificate that the eID holder is the person (NISS and name)."""
    from mcn_cli.domain.identifiers import parse_niss, parse_pharmacy_nihii

    if not PATTERNS[holder.kind].fullmatch(holder.number):
        raise InvalidInput(
            "number",
            "pattern",
            N_("{number} is not a {kind} identifier"),
            number=holder.number,
            kind=holder.kind,
        )
    if holder.kind == PERSONAL:
        parse_niss(holder.number)
        if holder.number != signer.value:
            raise InvalidInput(
                "niss",
                "not-the-signer",
                N_("a personal certificate is for the eID's holder ({signer}), not {niss}"),
                signer=signer.value,
                niss=holder.number,
            )
        full = " ".join([*signer.first_names, signer.name])
        if holder.name and not _same_name(holder.name, full):
            raise InvalidInput(
                "name",
                "not-the-signer",
                N_("the eID names {eid}, not {name}"),
                eid=full,
                name=holder.name,
            )
    else:
        parse_pharmacy_nihii(holder.number)


def check_key(key: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
        raise InvalidInput(
            "key", "rsa", N_("eHealth's registration service takes RSA keys of 2048 bits or more")
        )


def check_contract_dn(contract: Contract, holder: Holder, application_id: str | None) -> x509.Name:
    """The contract's DN as an X.509 name; it must name the holder asked for."""
    name = certra.parse_dn(contract.dn)
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    wanted = holder.label + (f", {application_id}" if application_id else "")
    if not common or common[0].value != wanted:
        raise InvalidInput(
            "contract",
            "dn",
            N_("eHealth's contract is for {dn}, not {label}"),
            dn=contract.dn,
            label=holder.label,
        )
    return name


@dataclass(frozen=True)
class Existing:
    keystore: Path
    not_after: datetime
    replacement_start: datetime


def existing(folder: Path, base: str) -> Existing | None:
    """An installed certificate in the keystore ``<base>.p12`` (valid, not revoked)."""
    keystore = folder / f"{base}.p12"
    crt = _companion(keystore, ".crt")
    if not crt.exists():
        return None
    leaf = certs.load_certificates(crt.read_bytes())[0]
    now = datetime.now(UTC)
    if leaf.not_valid_after_utc <= now or _revoked_locally(keystore):
        return None
    end = leaf.not_valid_after_utc
    return Existing(keystore, end, end - timedelta(days=REPLACEMENT_DAYS))


def _revoked_locally(keystore: Path) -> bool:
    try:
        return bool(json.loads(_companion(keystore, ".revocation.json").read_text()).get("revoked"))
    except (FileNotFoundError, ValueError):
        return False


# --- request -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requested:
    keystore: Path
    public_key_identifier: str
    automatically_validated: bool
    replaces: str | None
    contract_language: str


def request(
    holder: Holder,
    password: Password,
    contact: Contact,
    accept: Accept,
    pin: Pin,
    *,
    language: str = "en",
    application_id: str | None = None,
    services: tuple[str, ...] = (),
    user: str | None = None,
    settings: Settings | None = None,
    folder: Path | None = None,
) -> Requested:
    """GenerateContract → the user accepts it → key + CSR from the contract's DN →
    GenerateCertificate signed with the eID Signature key; the keystore keeps the key."""
    settings = settings or load()
    folder = folder or keystore_dir(settings)
    if application_id is not None and (
        holder.kind == PERSONAL or not certra.APPLICATION_ID.fullmatch(application_id)
    ):
        raise InvalidInput(
            "application-id",
            "format",
            N_("an application id is for organisations only, and matches {pattern}"),
            pattern=certra.APPLICATION_ID.pattern,
        )
    if any(s not in certra.BASE_SERVICES for s in services):
        raise InvalidInput(
            "service", "choice", N_("base services are {choices}"), choices=", ".join(certra.BASE_SERVICES)
        )
    now = datetime.now(UTC)
    # one keystore per certificate: NIHII-PHARMACY=27150201.p12, or with an application id
    # NIHII-PHARMACY=27150201.APP1.p12 (several certificates for one organisation)
    base = f"{holder.label}.{application_id}" if application_id else holder.label
    found = existing(folder, base)
    keystore = folder / f"{base}.p12"
    if found is not None:
        if now < found.replacement_start:
            raise InvalidInput(
                "certificate",
                "active",
                N_(
                    "{label} has a certificate valid until {end}: a replacement may be requested from {start}"
                ),
                label=base,
                end=found.not_after.date(),
                start=found.replacement_start.date(),
            )
        keystore = folder / f"{base}.next.p12"
    if keystore.exists():
        raise InvalidInput(
            "keystore",
            "exists",
            N_("{path} exists already: move it away first (or mcn cert fetch)"),
            path=keystore,
        )
    secret = password()
    if len(secret) < MIN_PASSWORD:
        raise InvalidInput(
            "password", "length", N_("must have at least {count} characters"), count=MIN_PASSWORD
        )
    signer = eid_actor(eid_certificate(settings, EID_SIGNATURE_KEY, user))
    check_holder(holder, signer)
    if holder.kind == PERSONAL:
        actor = signer
    else:
        if not holder.name:
            raise InvalidInput("name", "missing", N_("an organisation's certificate needs its name"))
        actor = Actor(holder.kind, holder.number, holder.name)
    where = certra.services(settings)
    try:
        contract = certra.read_contract(
            certra.call(where.certra, certra.generate_contract(contact, signer, actor, application_id), where)
        )
    except CertRaError as error:
        raise refused(error) from None
    if contract.signer.value != signer.value:
        raise InvalidInput("contract", "signer", N_("eHealth's contract names another signer"))
    subject = check_contract_dn(contract, holder, application_id)
    if not accept(contract):
        raise InvalidInput("contract", "refused", N_("the contract was not accepted: nothing was requested"))
    key = certs.new_key("rsa")
    check_key(key)
    from cryptography.hazmat.primitives import hashes

    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    if csr.subject != subject:  # the CSR says exactly what the contract says (CERTRA.md §2.3)
        raise InvalidInput("csr", "subject", N_("the request's subject differs from the contract's DN"))
    form: dict[str, Any] = {
        "key": "rsa",
        "type": holder.kind,
        "number": holder.number,
        "name": holder.name if holder.kind != PERSONAL else " ".join([*signer.first_names, signer.name]),
        "application_id": application_id,
        "email": contact.email,
        "phone": contact.phone,
        "dn": contract.dn,
        "signer": signer.value,
        "online": True,
        "created": now.isoformat(timespec="seconds"),
    }
    files = {
        keystore: p12.write(p12.Keystore([p12.KeyEntry("authentication", key, None)]), secret),
        _companion(keystore, ".csr"): certs.pem(csr),
        _companion(keystore, ".request.json"): json.dumps(form, indent=2).encode(),
    }
    # The key is kept before eHealth hears of it, with the identifier eHealth will give it (the
    # SHA-1 of the public key): when the answer is lost on the way, mcn cert fetch still finds it.
    expected = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest.hex().upper()
    form.update(public_key_identifier=expected, unconfirmed=True)
    files[_companion(keystore, ".request.json")] = json.dumps(form, indent=2).encode()
    message = certra.generate_certificate(
        contact, csr.public_bytes(serialization.Encoding.DER), contract, services
    )
    eid = open_key(settings, EID_SIGNATURE_KEY, pin, user)
    try:
        certra.sign(message, eid)
    finally:
        eid.close()
    _write_all(files)  # nothing is written before the eID signed
    try:
        registered = certra.read_registered(certra.call(where.certra, message, where))
    except CertRaError as error:  # refused: eHealth keeps nothing, nor does mcn
        for path in files:
            path.unlink(missing_ok=True)
        raise refused(error) from None
    form.pop("unconfirmed")
    if registered.public_key_identifier != expected:
        raise InvalidInput(
            "answer", "identifier", N_("eHealth registered another public key identifier than this key's")
        )
    form.update(
        public_key_identifier=registered.public_key_identifier,
        automatically_validated=registered.automatically_validated,
        replaces=registered.replaces,
        registered=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_private(_companion(keystore, ".request.json"), json.dumps(form, indent=2).encode(), replace=True)
    return Requested(
        keystore,
        registered.public_key_identifier,
        registered.automatically_validated,
        registered.replaces,
        contract.text(language)[0],
    )


# --- status ---------------------------------------------------------------------------------------


def status(
    pin: Pin, *, user: str | None = None, settings: Settings | None = None
) -> list[certra.CertificateInfo]:
    """GetCertificateInfoForCitizen, signed with the eID Authentication key."""
    settings = settings or load()
    where = certra.services(settings)
    message = certra.info_for_citizen()
    eid = open_key(settings, EID_KEY, pin, user)
    try:
        certra.sign(message, eid)
    finally:
        eid.close()
    try:
        return certra.read_infos(certra.call(where.certra, message, where))
    except CertRaError as error:
        raise refused(error) from None


# --- fetch, install, ETK ------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    keystore: Path
    label: str
    state: str  # "pending" or "installed"
    public_key_identifier: str
    automatically_validated: bool | None
    not_after: datetime | None = None
    encryption_serial: int | None = None
    etk: Path | None = None
    etk_published: bool | None = None


def _form(keystore: Path) -> dict[str, Any] | None:
    try:
        form = json.loads(_companion(keystore, ".request.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return form if isinstance(form, dict) else None


def pending(settings: Settings | None = None, folder: Path | None = None) -> list[Path]:
    """Keystores whose online request has no certificate installed yet, or whose certificate is
    installed but whose encryption token is still to register (EtkRA refused or failed)."""
    settings = settings or load()
    folder = folder or keystore_dir(settings)
    if not folder.is_dir():
        return []
    return [
        path
        for path in sorted(folder.glob("*.p12"))
        if not path.name.endswith(".previous.p12")
        and (form := _form(path))
        and form.get("public_key_identifier")
        and (not _companion(path, ".crt").exists() or form.get("etk_pending"))
    ]


def fetch(
    keystore: Path, password: Password, *, settings: Settings | None = None, etk: bool = True
) -> Fetched:
    """GetCertificate (unsigned); when delivered, install it with its chain as ``cert install``
    does, then register the encryption token through EtkRA and check it in the depot.

    The certificate is installed first: an EtkRA refusal or failure (or a crash) leaves it
    usable for login, the request marked ``etk_pending``, and the next fetch registers the
    encryption token alone."""
    settings = settings or load()
    form = _form(keystore)
    if form is None or not form.get("public_key_identifier"):
        raise InvalidInput(
            "keystore",
            "not-requested",
            N_("{name} has no online request (mcn cert request)"),
            name=keystore.name,
        )
    pki = str(form["public_key_identifier"])
    label = f"{form['type']}={form['number']}"
    where = certra.services(settings)
    secret = _Secret(password)
    if _companion(keystore, ".crt").exists():
        if not form.get("etk_pending"):
            raise InvalidInput(
                "keystore", "installed", N_("{name} holds its certificate already"), name=keystore.name
            )
        store = _open(keystore, secret)
        entry = store.get("authentication")
        if entry is None or entry.certificate is None:
            raise InvalidInput(
                "keystore", "installed", N_("{name} holds its certificate already"), name=keystore.name
            )
        return _with_etk(keystore, label, pki, form, entry, store.entries, secret, where)
    try:
        chain_sent = certra.read_certificates(certra.call(where.certra, certra.get_certificate(pki), where))
    except CertRaError as error:
        if error.code == certra.NOT_YET_DELIVERED:
            return Fetched(keystore, label, "pending", pki, form.get("automatically_validated"))
        raise refused(error) from None
    leaf = chain_sent[0]
    store = _open(keystore, secret)
    entry = store.get("authentication")
    if entry is None or not certs.same_key(leaf, entry.private_key):
        raise InvalidInput(
            "certificate",
            "key",
            N_("the certificate eHealth delivered does not match the key in {name}"),
            name=keystore.name,
        )
    if leaf.subject != certra.parse_dn(str(form["dn"])):
        raise InvalidInput("certificate", "subject", N_("the certificate's subject is not the contract's DN"))
    chain = certs.verify_chain(leaf, chain_sent[1:], _trusted_for(settings), datetime.now(UTC))
    installed = p12.KeyEntry("authentication", entry.private_key, leaf, chain)
    _write(keystore, [installed], secret, {".crt": b"".join(certs.pem(c) for c in [leaf, *chain])})
    if etk:
        _mark(keystore, form, etk_pending=True)
    final = _take_place(keystore)
    if not etk:
        return Fetched(
            final, label, "installed", pki, form.get("automatically_validated"), leaf.not_valid_after_utc
        )
    return _with_etk(final, label, pki, _form(final) or form, installed, [installed], secret, where)


class _Secret:
    """The keystore password, asked once however often it is needed."""

    def __init__(self, password: Password) -> None:
        self._password = password
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            self._value = self._password()
        return self._value


def _write(
    keystore: Path, entries: list[p12.KeyEntry], secret: _Secret, companions: dict[str, bytes]
) -> None:
    try:
        write_private(keystore, p12.write(p12.Keystore(entries), secret()), replace=True)
        for suffix, data in companions.items():
            write_private(_companion(keystore, suffix), data, replace=True)
    except OSError as error:
        raise InvalidInput(
            "keystore", "write", N_("cannot write {path}: {reason}"), path=keystore, reason=error.strerror
        ) from None


def _mark(keystore: Path, form: dict[str, Any], *, etk_pending: bool) -> None:
    record = (
        {**form, "etk_pending": True}
        if etk_pending
        else {k: v for k, v in form.items() if k != "etk_pending"}
    )
    write_private(_companion(keystore, ".request.json"), json.dumps(record, indent=2).encode(), replace=True)


def _with_etk(
    keystore: Path,
    label: str,
    pki: str,
    form: dict[str, Any],
    entry: p12.KeyEntry,
    entries: list[p12.KeyEntry],
    secret: _Secret,
    where: certra.Services,
) -> Fetched:
    """Register the encryption token for the installed certificate ``entry`` and add its key to
    the keystore; a refusal or failure keeps the certificate installed and says how to go on."""
    assert entry.certificate is not None
    try:
        encryption_key, encryption, token, published = register_etk(
            KeystoreSigner(entry.private_key, entry.certificate, list(entry.chain)), form, where
        )
    except (CertificateRefused, ServiceUnavailable) as error:
        error.hint = N_(
            "the certificate is installed and works for login; mcn cert fetch registers its "
            "encryption token when EtkRA answers"
        )
        raise
    kept = [e for e in entries if e.alias != str(encryption.serial_number)]
    added = p12.KeyEntry(str(encryption.serial_number), encryption_key, encryption, [entry.certificate])
    _write(keystore, [*kept, added], secret, {".etk": token})
    _mark(keystore, form, etk_pending=False)
    return Fetched(
        keystore,
        label,
        "installed",
        pki,
        form.get("automatically_validated"),
        entry.certificate.not_valid_after_utc,
        encryption.serial_number,
        _companion(keystore, ".etk"),
        published,
    )


def _trusted_for(settings: Settings) -> list[x509.Certificate]:
    trusted = _trusted(settings)
    if _sandbox_files(settings) is None:
        from mcn_cli.ehealth.trust import ehealth_anchors

        trusted += list(ehealth_anchors())
    return trusted


def _open(keystore: Path, password: Password) -> p12.Keystore:
    try:
        data = p12.read_file(keystore)
        return p12.read(data, password())
    except p12.KeystoreUnreadable as error:
        raise InvalidInput("keystore", error.rule, error.detail) from None
    except p12.KeystoreError as error:
        raise AuthenticationNeeded(
            N_("keystore {name}: {error}"), name=keystore.name, error=str(error)
        ) from None


def _take_place(keystore: Path) -> Path:
    """A replacement (``LABEL.next.p12``) becomes ``LABEL.p12``; the old one ``LABEL.previous.p12``."""
    if not keystore.name.endswith(".next.p12"):
        return keystore
    label = keystore.name.removesuffix(".next.p12")
    final = keystore.with_name(f"{label}.p12")
    suffixes = (".p12", ".crt", ".etk", ".csr", ".request.json", ".revocation.json")
    for suffix in suffixes:
        old = keystore.with_name(label + suffix)
        if old.exists():
            old.replace(keystore.with_name(f"{label}.previous{suffix}"))
    for suffix in suffixes:
        new = keystore.with_name(f"{label}.next{suffix}")
        if new.exists():
            new.replace(keystore.with_name(label + suffix))
    return final


def register_etk(
    authentication: KeystoreSigner, form: dict[str, Any], where: certra.Services
) -> tuple[Any, x509.Certificate, bytes, bool]:
    """CERTRA.md §4: a new RSA-2048 encryption key, StartETKRegistration, the challenge decrypted
    and checked, the self-built certificate, CompleteETKRegistration (ActivateETK when it is a
    replacement), all signed with the new authentication key; then the ETK looked up in the
    depot. Returns the key, its certificate, the ETK and whether the depot has it."""
    encryption_key = certs.new_key("rsa")
    public = encryption_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        start = certra.sign(certra.start_etk(public), authentication, authentication.chain)
        serial = certra.solve_challenge(
            certra.read_challenge(certra.call(where.etkra, start, where)), encryption_key
        )
        built = certra.etk_certificate(
            authentication.private_key, authentication.certificate, encryption_key, serial
        )
        complete = certra.sign(
            certra.complete_etk(built.public_bytes(serialization.Encoding.DER)),
            authentication,
            authentication.chain,
        )
        token, to_activate = certra.read_etk(certra.call(where.etkra, complete, where))
        if to_activate:
            activate = certra.sign(certra.activate_etk(), authentication, authentication.chain)
            certra.check_status(certra.call(where.etkra, activate, where))
    except CertRaError as error:
        raise refused(error) from None
    try:
        published = certra.read_depot_etk(
            certra.call(
                where.depot,
                certra.get_etk(str(form["type"]), str(form["number"]), form.get("application_id")),
                where,
            )
        )
    except (CertRaError, ServiceUnavailable):
        # only a check: the ETK is registered already, its key must reach the keystore whatever
        # the depot says (a depot down or failing is "not yet in the depot", not a failed fetch)
        published = b""
    return encryption_key, built, token, published == token


# --- revocation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revoked:
    keystore: Path
    public_key_identifier: str
    reason: str


def public_key_identifier(keystore: Path) -> str:
    """From the request record, else the installed certificate's SubjectKeyIdentifier."""
    form = _form(keystore) or {}
    if form.get("public_key_identifier"):
        return str(form["public_key_identifier"])
    crt = _companion(keystore, ".crt")
    if crt.exists():
        leaf = certs.load_certificates(crt.read_bytes())[0]
        try:
            return (
                leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex().upper()
            )
        except x509.ExtensionNotFound:
            return x509.SubjectKeyIdentifier.from_public_key(leaf.public_key()).digest.hex().upper()
    raise InvalidInput(
        "keystore", "no-certificate", N_("{name} has no certificate to revoke"), name=keystore.name
    )


def revoke(
    keystore: Path,
    reason: str,
    accept: Accept,
    pin: Pin,
    *,
    user: str | None = None,
    settings: Settings | None = None,
) -> Revoked:
    """GenerateRevocationContract → the user accepts it → Revoke signed with the eID Signature key."""
    settings = settings or load()
    if reason not in certra.REVOCATION_REASONS:
        raise InvalidInput(
            "reason",
            "choice",
            N_("must be one of {choices}, got {value!r}"),
            choices=", ".join(certra.REVOCATION_REASONS),
            value=reason,
        )
    if _revoked_locally(keystore):
        raise InvalidInput("keystore", "revoked", N_("{name} is revoked already"), name=keystore.stem)
    pki = public_key_identifier(keystore)
    signer = eid_actor(eid_certificate(settings, EID_SIGNATURE_KEY, user))
    where = certra.services(settings)
    try:
        contract = certra.read_contract(
            certra.call(where.certra, certra.generate_revocation_contract(pki, signer, reason), where)
        )
        if not accept(contract):
            raise InvalidInput(
                "contract", "refused", N_("the contract was not accepted: nothing was revoked")
            )
        message = certra.revoke(pki, contract)
        eid = open_key(settings, EID_SIGNATURE_KEY, pin, user)
        try:
            certra.sign(message, eid)
        finally:
            eid.close()
        certra.check_status(certra.call(where.certra, message, where))
    except CertRaError as error:
        raise refused(error) from None
    record = {
        "public_key_identifier": pki,
        "reason": reason,
        "revoked": datetime.now(UTC).isoformat(timespec="seconds"),
        "online": True,
    }
    write_private(
        _companion(keystore, ".revocation.json"), json.dumps(record, indent=2).encode(), replace=True
    )
    return Revoked(keystore, pki, reason)
