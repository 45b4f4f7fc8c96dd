"""Which STS tokens to believe: a signer certificate that chains to trusted CA certificates and
carries the STS's name, never one pinned certificate (eHealth rotates its STS signer).

eHealth signs tokens with a certificate issued by "ZetesConfidens Private Trust PKI - eHealth
issuing CA 001" under "... root CA 001", named CN="CBE=0809394427, IAM" in production and
"CBE=0809394427, IAMACC" in acceptance, OU=eHealth-platform Belgium (STS.md §4). Both CA
certificates ship with mcn (``anchors/``); the sandbox uses its own CA the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from mcn_cli.domain.messages import N_
from mcn_cli.ehealth.xmldsig import SignatureInvalid

ANCHORS = Path(__file__).with_name("anchors")
EHEALTH_OU = "eHealth-platform Belgium"
STS_ISSUER = "urn:be:fgov:ehealth:sts:1_0"
SIGNERS = {"acc": "CBE=0809394427, IAMACC", "prod": "CBE=0809394427, IAM"}
MAX_CHAIN = 4


def load_pem_certificates(data: bytes) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(data))


def ehealth_anchors() -> tuple[x509.Certificate, ...]:
    """eHealth's public token CAs, shipped with mcn."""
    return tuple(
        c for path in sorted(ANCHORS.glob("*.pem")) for c in load_pem_certificates(path.read_bytes())
    )


def _name(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in certificate.subject.get_attributes_for_oid(oid)]


@dataclass(frozen=True)
class StsTrust:
    """The CA certificates a token signer must chain to, and the name it must carry."""

    anchors: tuple[x509.Certificate, ...]
    signer_name: str
    issuer: str = STS_ISSUER

    def check_signer(self, certificate: x509.Certificate, now: datetime) -> None:
        """Raise SignatureInvalid unless ``certificate`` is a valid STS signer at ``now``."""
        if _name(certificate, NameOID.COMMON_NAME) != [self.signer_name] or EHEALTH_OU not in _name(
            certificate, NameOID.ORGANIZATIONAL_UNIT_NAME
        ):
            raise SignatureInvalid(
                N_("the token is signed by {subject}, not by the STS (CN={signer}, OU={unit})"),
                subject=certificate.subject.rfc4514_string(),
                signer=self.signer_name,
                unit=EHEALTH_OU,
            )
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
            if constraints.ca:
                raise SignatureInvalid(N_("the token signer is a CA certificate"))
        except x509.ExtensionNotFound:
            pass
        try:
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.digital_signature or usage.key_cert_sign:
                raise SignatureInvalid(N_("the token signer's certificate is not for signing documents"))
        except x509.ExtensionNotFound:
            pass
        current = certificate
        for _ in range(MAX_CHAIN):
            if not current.not_valid_before_utc <= now <= current.not_valid_after_utc:
                raise SignatureInvalid(
                    N_("certificate {subject} is not valid now ({start} to {end})"),
                    subject=current.subject.rfc4514_string(),
                    start=current.not_valid_before_utc.date(),
                    end=current.not_valid_after_utc.date(),
                )
            if current is not certificate and current in self.anchors:
                return
            issuer = self._issuer_of(current)
            if issuer is None:
                raise SignatureInvalid(
                    N_(
                        "the token signer does not chain to a trusted CA "
                        "({issuer} is not among the STS trust anchors)"
                    ),
                    issuer=current.issuer.rfc4514_string(),
                )
            current = issuer
        raise SignatureInvalid(N_("the token signer's chain is too long"))

    def _issuer_of(self, certificate: x509.Certificate) -> x509.Certificate | None:
        for anchor in self.anchors:
            if anchor.subject != certificate.issuer:
                continue
            try:
                certificate.verify_directly_issued_by(anchor)
            except (InvalidSignature, ValueError, TypeError):
                continue
            return anchor
        return None
