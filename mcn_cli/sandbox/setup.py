"""`mcn sandbox init`: make the test PKI, keystores and eID tokens (idempotent)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from mcn_cli.domain.messages import N_
from mcn_cli.domain.pin import check_pin
from mcn_cli.ehealth.certra import OFFICE, PHARMACY, SSIN, Actor, plain_upper
from mcn_cli.ehealth.signers import EID_KEY, EID_SIGNATURE_KEY
from mcn_cli.ehealth.trust import EHEALTH_OU
from mcn_cli.sandbox import pki, softhsm, world
from mcn_cli.sandbox.pki import SANDBOX_PASSWORD, Issued
from mcn_cli.sandbox.world import Files
from mcn_cli.store.secure_files import write_private


@dataclass(frozen=True)
class SetupReport:
    created: bool  # the PKI and keystores were made now (False: they were there)
    tokens: str  # "created", "kept", or "unavailable" (SoftHSM2 missing)
    files: Files


def _ca(files: Files, name: str, subject: str, parent: Issued | None) -> Issued:
    issued = pki.issue(
        pki.name((NameOID.COUNTRY_NAME, "BE"), (NameOID.COMMON_NAME, subject)),
        pki.rsa_key(),
        parent,
        ca=True,
        days=20 * 365,
    )
    pki.write_certificate(files.ca_cert(name), issued.certificate)
    pki.write_key(files.ca_key(name), issued.key)
    return issued


def load_ca(files: Files, name: str) -> Issued:
    return Issued(pki.load_key(files.ca_key(name)), pki.load_certificate(files.ca_cert(name)))


def _keystore(path: Path, issued: Issued, chain: list[x509.Certificate]) -> None:
    """The keystore and, beside it, its public certificate chain (what mcn cert list reads)."""
    write_private(path, pki.keystore_bytes(issued, chain, SANDBOX_PASSWORD))
    write_private(
        path.with_name(path.stem + ".crt"), b"".join(pki.pem(c) for c in [issued.certificate, *chain])
    )


def _make_pki(files: Files) -> None:
    root = _ca(files, "root", "mcn sandbox Root CA", None)
    citizen = _ca(files, "citizen", "mcn sandbox Citizen CA", root)
    ehealth = _ca(files, "ehealth", "mcn sandbox eHealth CA", root)
    sts = pki.issue(
        pki.name(
            (NameOID.COUNTRY_NAME, "BE"),
            (NameOID.ORGANIZATION_NAME, "Federal Government"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, EHEALTH_OU),
            (NameOID.COMMON_NAME, world.STS_SIGNER),
        ),
        pki.rsa_key(),
        ehealth,
    )
    pki.write_certificate(files.ca_cert("sts"), sts.certificate)
    pki.write_key(files.ca_key("sts"), sts.key)
    server = pki.issue(
        pki.name((NameOID.COMMON_NAME, "localhost")),
        pki.rsa_key(),
        root,
        server_names=("127.0.0.1", "localhost", "::1"),
    )
    pki.write_certificate(files.ca_cert("server"), server.certificate)
    pki.write_key(files.ca_key("server"), server.key)
    chain = [ehealth.certificate, root.certificate]
    issued: list[tuple[Actor, x509.Certificate]] = []  # for the CertRA's register
    for pharmacy in world.PHARMACIES:
        if not pharmacy.certified:
            continue  # no certificate yet: requested through the sandbox's CertRA
        subject = pki.ehealth_subject("NIHII-PHARMACY", pharmacy.nihii, plain_upper(pharmacy.name))
        made = pki.issue(subject, pki.ehealth_key(pharmacy.key), ehealth, client=True)
        _keystore(files.org_keystore(pharmacy.nihii), made, chain)
        issued.append((Actor(PHARMACY, pharmacy.nihii, pharmacy.name), made.certificate))
    for person in world.PEOPLE:
        subject = personal_subject(person.niss, plain_upper(person.name))
        made = pki.issue(subject, pki.ehealth_key(person.key), ehealth, client=True)
        _keystore(files.personal_keystore(person.niss), made, chain)
        issued.append((Actor(SSIN, person.niss, person.last, (person.first,)), made.certificate))
        if person.eid:
            key = pki.rsa_key() if person.eid == "rsa" else pki.ec_key()
            card = pki.issue(
                pki.eid_subject(person.niss, person.first, person.last), key, citizen, days=10 * 365
            )
            pki.write_certificate(files.root / "eid" / f"{person.niss}.pem", card.certificate)
            pki.write_key(files.root / "eid" / f"{person.niss}.key", card.key)
            signature = eid_signature(person.niss, person.first, person.last, person.eid, citizen)
            pki.write_certificate(files.root / "eid" / f"{person.niss}-signature.pem", signature.certificate)
            pki.write_key(files.root / "eid" / f"{person.niss}-signature.key", signature.key)
    ot = pki.ehealth_subject("NIHII-OTD_PHARMACY", world.OT_NIHII, plain_upper(world.OT_NAME))
    office = pki.issue(ot, pki.rsa_key(), ehealth, client=True)
    _keystore(files.ot_keystore(), office, chain)
    issued.append((Actor(OFFICE, world.OT_NIHII, world.OT_NAME), office.certificate))
    expired = pki.issue(
        personal_subject(world.ANNE.niss, plain_upper(world.ANNE.name)),
        pki.rsa_key(),
        ehealth,
        not_before=datetime.now(UTC) - timedelta(days=800),
        days=730,
    )
    _keystore(files.expired_keystore(world.ANNE.niss), expired, chain)
    anne = Actor(SSIN, world.ANNE.niss, world.ANNE.last, (world.ANNE.first,))
    issued.append((anne, expired.certificate))
    # eHealth knows the certificates it issued: its CertRA refuses a second one for their holders
    from mcn_cli.sandbox.certra import register_issued  # (it imports this module)

    register_issued(files, issued)


def personal_subject(niss: str, holder: str) -> x509.Name:
    return pki.name(
        (NameOID.COUNTRY_NAME, "BE"),
        (NameOID.ORGANIZATION_NAME, "Federal Government"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, f"SSIN={niss}"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, holder),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "eHealth-platform Belgium"),
        (NameOID.COMMON_NAME, f"SSIN={niss}"),
    )


def eid_signature(niss: str, first: str, last: str, kind: str, citizen: Issued) -> Issued:
    """The eID's second key, ``Signature`` (non-repudiation), as a Belgian eID carries it beside
    ``Authentication``: its certificate names the same person and allows nonRepudiation only."""
    key = pki.rsa_key() if kind == "rsa" else pki.ec_key()
    start = datetime.now(UTC) - timedelta(days=1)
    subject = pki.name(
        (NameOID.COUNTRY_NAME, "BE"),
        (NameOID.COMMON_NAME, f"{first} {last} (Signature)"),
        (NameOID.SURNAME, last),
        (NameOID.GIVEN_NAME, first),
        (NameOID.SERIAL_NUMBER, niss),
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(citizen.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=10 * 365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, True, False, False, False, False, False, False, False), critical=True
        )
        .sign(citizen.key, hashes.SHA256())
    )
    return Issued(key, certificate)


def cards(files: Files) -> list[list[tuple[str, object, x509.Certificate]]]:
    """Per card: its keys by PKCS#11 label (Authentication, Signature) with their certificates."""
    folder = files.root / "eid"
    return [
        [
            (EID_KEY, pki.load_key(folder / f"{p.niss}.key"), pki.load_certificate(folder / f"{p.niss}.pem")),
            (
                EID_SIGNATURE_KEY,
                pki.load_key(folder / f"{p.niss}-signature.key"),
                pki.load_certificate(folder / f"{p.niss}-signature.pem"),
            ),
        ]
        for p in world.PEOPLE
        if p.eid
    ]


def initialise(pin: str = world.DEFAULT_PIN, files: Files | None = None) -> SetupReport:
    check_pin(pin, N_("sandbox eID PIN"))  # before anything is written or any token sees it
    files = files or Files()
    created = not files.exists()
    if created:
        _make_pki(files)
        files.save_state({"revoked": []})
        files.layout_file.write_text(world.LAYOUT + "\n")
    if softhsm.module() is None:
        return SetupReport(created, "unavailable", files)
    if not created and softhsm.pin_works(files.softhsm, pin):
        return SetupReport(created, "kept", files)
    softhsm.create_tokens(files.softhsm, pin, cards(files))
    return SetupReport(created, "created", files)
