"""eHealth certificates: request subjects, PKCS#10 requests, chain checks, the encryption key
and its encryption token (ETK), as eHealth's request tool makes them (brochure 10.2.2, 11.3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.domain.text import check_text

ORG = "NIHII-PHARMACY"
OT = "NIHII-OTD_PHARMACY"
PERSONAL = "SSIN"
KINDS = (ORG, OT, PERSONAL)
EHEALTH_OU = "eHealth-platform Belgium"
NAME_MAX = 64  # X.520 ub-organizational-unit-name (the name's OU), as ub-organization-name and ub-common-name


def check_name(name: str, field: str = "name") -> str:
    """A holder's name as it may stand in a certificate subject: at most 64 characters (also once
    upper-cased, as the subject carries it) and no control character."""
    check_text(field, name, max_length=NAME_MAX, why="X.520 upper bound of a name in a certificate")
    check_text(field, name.upper(), max_length=NAME_MAX, why="X.520 upper bound, once upper-cased")
    if not name.strip():
        raise InvalidInput(field, "empty", N_("must not be blank"))
    return name


@dataclass(frozen=True)
class Holder:
    """Whose certificate: the kind (NIHII-PHARMACY, NIHII-OTD_PHARMACY, SSIN) and the number."""

    kind: str
    number: str
    name: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}={self.number}"


def subject(holder: Holder) -> x509.Name:
    """eHealth's layout. Organisation: C=BE, O=Federal Government, OU=<TYPE>=<n>, OU=<NAME>,
    OU=eHealth-platform Belgium, CN=<TYPE>=<n> (no application id for a pharmacy). Personal:
    the same with SSIN=<niss>."""
    parts = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Federal Government"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, holder.label),
    ]
    if holder.name:
        check_name(holder.name)
        parts.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, holder.name.upper()))
    parts += [
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, EHEALTH_OU),
        x509.NameAttribute(NameOID.COMMON_NAME, holder.label),
    ]
    return x509.Name(parts)


def holder_of(certificate: x509.Certificate | x509.CertificateSigningRequest) -> Holder | None:
    """Read the holder back from an eHealth subject (CN=<TYPE>=<n>)."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    kind, _, number = str(names[0].value).partition("=")
    if kind not in KINDS or not number:
        return None
    extra = [
        str(a.value)
        for a in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        if "=" not in str(a.value) and str(a.value) != EHEALTH_OU
    ]
    return Holder(kind, number, extra[0] if extra else None)


KEY_TYPES = ("rsa", "ec")


def new_key(kind: str = "rsa") -> Any:
    """RSA-2048 (what eHealth's registration service asks for), or EC P-384 (what eHealth's
    newer certificates carry, STS.md §6)."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signing_request(key: Any, holder: Holder) -> x509.CertificateSigningRequest:
    digest = hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) else hashes.SHA256()
    return x509.CertificateSigningRequestBuilder().subject_name(subject(holder)).sign(key, digest)


def pem(value: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return value.public_bytes(serialization.Encoding.PEM)


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Certificates from PEM (one or several) or DER."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise InvalidInput("certificate", "format", N_("not an X.509 certificate (PEM or DER)")) from None


def same_key(certificate: x509.Certificate, key: Any) -> bool:
    return certificate.public_key().public_numbers() == key.public_key().public_numbers()


def verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    trusted: list[x509.Certificate],
    now: datetime,
) -> list[x509.Certificate]:
    """The chain from ``leaf`` up to a trusted root (excluded the leaf); every signature and
    validity checked."""
    chain: list[x509.Certificate] = []
    pool = intermediates + trusted
    current = leaf
    for _ in range(8):
        if not current.not_valid_before_utc <= now <= current.not_valid_after_utc:
            raise InvalidInput(
                "certificate",
                "validity",
                N_("{subject} is not valid today"),
                subject=current.subject.rfc4514_string(),
            )
        if current in trusted:
            return chain
        issuer = next((c for c in pool if c.subject == current.issuer and c != current), None)
        if issuer is None:
            raise InvalidInput(
                "certificate",
                "chain",
                N_("no issuer certificate for {issuer}: add the chain to the file"),
                issuer=current.issuer.rfc4514_string(),
            )
        try:
            current.verify_directly_issued_by(issuer)
        except Exception:  # InvalidSignature, ValueError, TypeError
            raise InvalidInput(
                "certificate",
                "chain",
                N_("{subject} has a bad signature"),
                subject=current.subject.rfc4514_string(),
            ) from None
        chain.append(issuer)
        current = issuer
    raise InvalidInput("certificate", "chain", N_("the chain does not end at a trusted root"))


def encryption_certificate(
    authentication_key: Any, authentication: x509.Certificate, encryption_key: Any
) -> x509.Certificate:
    """The encryption certificate, issued by the holder's authentication key with the same
    subject and validity, for encryption only."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(authentication.subject)
        .issuer_name(authentication.subject)
        .public_key(encryption_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - timedelta(minutes=5), authentication.not_valid_before_utc))
        .not_valid_after(authentication.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, True, True, False, False, False, False, False), critical=True
        )
        .sign(authentication_key, hashes.SHA256())
    )


def encryption_token(
    authentication_key: Any, authentication: x509.Certificate, encryption: x509.Certificate
) -> bytes:
    """The ETK: a CMS SignedData of the encryption certificate, signed with the authentication key."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(encryption.public_bytes(serialization.Encoding.DER))
        .add_signer(authentication, authentication_key, hashes.SHA256())
        .add_certificate(encryption)
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
