"""The sandbox's test PKI: a root CA, a Citizen CA for eID certificates, an eHealth CA for
organisation, personal and tarification-office certificates, the STS key and the HTTPS key."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mcn_cli.store.secure_files import write_private

SANDBOX_PASSWORD = "mcn-sandbox"  # every sandbox keystore's password (documented in README)


@dataclass(frozen=True)
class Issued:
    key: Any
    certificate: x509.Certificate


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def ehealth_key(kind: str) -> Any:
    """An eHealth certificate's key: RSA-2048, or EC P-384 as eHealth issues them now (STS.md §6)."""
    return ec_key(ec.SECP384R1()) if kind == "ec" else rsa_key()


def name(*parts: tuple[Any, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def issue(
    subject: x509.Name,
    key: Any,
    issuer: Issued | None,
    *,
    ca: bool = False,
    days: int = 3 * 365,
    not_before: datetime | None = None,
    server_names: tuple[str, ...] = (),
    client: bool = False,
) -> Issued:
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, True, True, False, False, False, False, False, False), critical=True
        )
    if server_names:
        alt: list[x509.GeneralName] = []
        for value in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(value)))
            except ValueError:
                alt.append(x509.DNSName(value))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if client:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return Issued(key, builder.sign(signer_key, hashes.SHA256()))


def eid_subject(niss: str, first: str, last: str) -> x509.Name:
    return name(
        (NameOID.COUNTRY_NAME, "BE"),
        (NameOID.COMMON_NAME, f"{first} {last} (Authentication)"),
        (NameOID.SURNAME, last),
        (NameOID.GIVEN_NAME, first),
        (NameOID.SERIAL_NUMBER, niss),
    )


def ehealth_subject(kind: str, number: str, holder: str) -> x509.Name:
    """eHealth's layout: C=BE, O=Federal Government, OU=<TYPE>=<n>, OU=<holder>, OU=eHealth-platform
    Belgium, CN=<TYPE>=<n>."""
    label = f"{kind}={number}"
    return name(
        (NameOID.COUNTRY_NAME, "BE"),
        (NameOID.ORGANIZATION_NAME, "Federal Government"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, label),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, holder),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "eHealth-platform Belgium"),
        (NameOID.COMMON_NAME, label),
    )


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_certificate(path: Path, certificate: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem(certificate))


def write_key(path: Path, key: Any) -> None:
    write_private(path, key_pem(key))


def keystore_bytes(issued: Issued, chain: list[x509.Certificate], password: str) -> bytes:
    """A PKCS#12 keystore as mcn writes them: alias ``authentication``, AES-256 + PBKDF2."""
    from mcn_cli.ehealth.keystore import KeyEntry, Keystore, write

    return write(Keystore([KeyEntry("authentication", issued.key, issued.certificate, chain)]), password)


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path) -> Any:
    return serialization.load_pem_private_key(path.read_bytes(), password=None)
