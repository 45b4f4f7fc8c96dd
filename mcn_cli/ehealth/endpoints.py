"""The eHealth environments: the built-in sandbox, acceptance and production."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.store.settings import Settings

ENVIRONMENTS = ("sandbox", "acc", "prod")
HOSTS = {"acc": "https://services-acpt.ehealth.fgov.be", "prod": "https://services.ehealth.fgov.be"}
STS_PATH = "/IAM/Saml11TokenService/Legacy/v1"
INSURABILITY_PATH = "/Insurability/v2"


@dataclass(frozen=True)
class Environment:
    name: str
    base_url: str
    verify: str | bool  # a CA file for the sandbox; the system's CAs elsewhere (always verified)
    sts_certificate: x509.Certificate
    timeout: float

    @property
    def sts_url(self) -> str:
        return self.base_url + STS_PATH

    @property
    def insurability_url(self) -> str:
        return self.base_url + INSURABILITY_PATH


def environment_name(settings: Settings) -> str:
    name = os.environ.get("MCN_ENV") or settings.env
    if name not in ENVIRONMENTS:
        raise InvalidInput("env", "choice", f"must be one of {', '.join(ENVIRONMENTS)}, got {name!r}")
    return name


def _certificate(path: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).expanduser().read_bytes())
    except (OSError, ValueError) as error:
        raise InvalidInput(
            "sts_certificate", "unreadable", f"cannot read the STS certificate {path}: {error}"
        ) from None


def resolve(settings: Settings) -> Environment:
    name = environment_name(settings)
    if name == "sandbox":
        from mcn_cli.sandbox import runtime
        from mcn_cli.sandbox.world import Files

        files = Files()
        url = runtime.base_url(files)
        sts = x509.load_pem_x509_certificate(files.ca_cert("sts").read_bytes())
        return Environment(name, url, str(files.ca_cert("root")), sts, settings.timeout_seconds)
    if not settings.sts_certificate:
        raise InvalidInput(
            "sts_certificate",
            "missing",
            f"set sts_certificate in config.toml to eHealth's STS certificate for {name}",
        )
    return Environment(
        name, HOSTS[name], True, _certificate(settings.sts_certificate), settings.timeout_seconds
    )
