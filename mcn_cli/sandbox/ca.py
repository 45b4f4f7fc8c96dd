"""The sandbox's eHealth CA at work: it signs certificate requests and revokes certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.ehealth import certificates as certs
from mcn_cli.sandbox import pki
from mcn_cli.sandbox.setup import load_ca
from mcn_cli.sandbox.world import Files

VALIDITY_DAYS = 3 * 365


def issue(files: Files, request: x509.CertificateSigningRequest) -> bytes:
    """The certificate for ``request`` with its chain (PEM), as eHealth's e-mail would bring it."""
    if not request.is_signature_valid:
        raise InvalidInput("csr", "signature", N_("the certificate request's signature does not hold"))
    holder = certs.holder_of(request)
    if holder is None or request.subject != certs.subject(holder):
        raise InvalidInput("csr", "subject", N_("the request does not follow eHealth's subject layout"))
    ehealth = load_ca(files, "ehealth")
    root = load_ca(files, "root")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ehealth.certificate.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(minutes=5))
        .not_valid_after(datetime.now(UTC) + timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, True, False, False, False, False, False, False), critical=True
        )
        .sign(ehealth.key, hashes.SHA256())
    )
    return b"".join(pki.pem(c) for c in (certificate, ehealth.certificate, root.certificate))


def revoke(files: Files, serial: int, issuer: str) -> bool:
    """Revoke at once when the sandbox's eHealth CA issued it; the STS refuses it from then on."""
    if issuer != load_ca(files, "ehealth").certificate.subject.rfc4514_string():
        return False
    state = files.state()
    revoked = set(state.get("revoked", []))  # type: ignore[arg-type]
    revoked.add(str(serial))
    state["revoked"] = sorted(revoked)
    files.save_state(state)
    return True
