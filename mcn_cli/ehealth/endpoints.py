"""The eHealth environments (the built-in sandbox, acceptance, production) and what mcn needs to
talk to each: service addresses, HTTPS trust, which STS tokens to believe.

Addresses default to eHealth's own (STS.md §1); every one is a setting, so that a vendor's test
rig can point mcn at its own stand-in without patching code.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.ehealth.trust import SIGNERS, StsTrust, ehealth_anchors, load_pem_certificates
from mcn_cli.store.settings import Settings

ENVIRONMENTS = ("sandbox", "acc", "prod")
STS_PROTOCOLS = ("wstrust", "saml")
HOSTS = {"acc": "https://services-acpt.ehealth.fgov.be", "prod": "https://services.ehealth.fgov.be"}
STS_PATHS = {"wstrust": "/IAM/SecurityTokenService/v1", "saml": "/IAM/Saml11TokenService/v1"}
INSURABILITY_PATH = "/Insurability/v2"


@dataclass(frozen=True)
class Environment:
    name: str
    sts_protocol: str
    sts_url: str
    insurability_url: str
    verify: str | bool  # a CA file, or True for the system's CAs (always verified)
    trust: StsTrust
    timeout: float
    contact: str = ""  # the From header
    max_answer_bytes: int = 4 * 1024 * 1024


def environment_name(settings: Settings) -> str:
    name = os.environ.get("MCN_ENV") or settings.env
    if name not in ENVIRONMENTS:
        raise InvalidInput(
            "env",
            "choice",
            N_("must be one of {choices}, got {value!r}"),
            choices=", ".join(ENVIRONMENTS),
            value=name,
        )
    return name


def sts_protocol(settings: Settings) -> str:
    if settings.sts_protocol not in STS_PROTOCOLS:
        raise InvalidInput(
            "sts_protocol",
            "choice",
            N_("must be one of {choices}, got {value!r}"),
            choices=", ".join(STS_PROTOCOLS),
            value=settings.sts_protocol,
        )
    return settings.sts_protocol


def _read(path: str, field: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as error:
        raise InvalidInput(
            field, "unreadable", N_("cannot read {path}: {reason}"), path=path, reason=error.strerror
        ) from None


def _anchors(settings: Settings) -> tuple:
    if not settings.sts_trust_anchors:
        return ehealth_anchors()
    try:
        anchors = load_pem_certificates(_read(settings.sts_trust_anchors, "sts_trust_anchors"))
    except ValueError:
        anchors = ()
    if not anchors:
        raise InvalidInput(
            "sts_trust_anchors",
            "format",
            N_("{path} holds no PEM certificate"),
            path=settings.sts_trust_anchors,
        )
    return anchors


def _url(value: str, field: str) -> str:
    if not value.startswith("https://"):
        raise InvalidInput(field, "https", N_("must be an https:// address, got {value!r}"), value=value)
    return value.rstrip("/")


def _verify(settings: Settings, base: str | bool) -> str | bool:
    """The system's CAs (or ``base``), plus those of tls_ca_bundle when set."""
    if not settings.tls_ca_bundle:
        return base
    extra = _read(settings.tls_ca_bundle, "tls_ca_bundle")
    try:
        load_pem_certificates(extra)
    except ValueError:
        raise InvalidInput(
            "tls_ca_bundle", "format", N_("{path} holds no PEM certificate"), path=settings.tls_ca_bundle
        ) from None
    if isinstance(base, str):
        system = Path(base).read_bytes()
    else:  # the same store the transport trusts: the system's, else certifi's
        import ssl

        cafile = ssl.get_default_verify_paths().cafile
        if cafile is None:
            import certifi

            cafile = certifi.where()
        system = Path(cafile).read_bytes()
    bundle = system + b"\n" + extra
    from mcn_cli.store import paths
    from mcn_cli.store.secure_files import write_private

    target = paths.data_dir() / "tls" / f"ca-{hashlib.sha256(bundle).hexdigest()[:16]}.pem"
    if not target.exists():
        paths.private_dir(target.parent)
        write_private(target, bundle)
    return str(target)


def resolve(settings: Settings) -> Environment:
    name = environment_name(settings)
    protocol = sts_protocol(settings)
    if name == "sandbox":
        from mcn_cli.sandbox import runtime
        from mcn_cli.sandbox.world import Files, sts_trust

        files = Files()
        host = runtime.base_url(files)
        base_verify: str | bool = str(files.ca_cert("root"))
        trust = sts_trust(files)
    else:
        host = HOSTS[name]
        base_verify = True
        trust = StsTrust(_anchors(settings), settings.sts_signer or SIGNERS[name])
    sts_url = _url(settings.sts_url, "sts_url") if settings.sts_url else host + STS_PATHS[protocol]
    insurability_url = (
        _url(settings.insurability_url, "insurability_url")
        if settings.insurability_url
        else host + INSURABILITY_PATH
    )
    if settings.sts_trust_anchors or settings.sts_signer:
        trust = StsTrust(_anchors(settings), settings.sts_signer or trust.signer_name)
    return Environment(
        name,
        protocol,
        sts_url,
        insurability_url,
        _verify(settings, base_verify),
        trust,
        settings.timeout_seconds,
        settings.contact_email,
        settings.max_answer_bytes,
    )
