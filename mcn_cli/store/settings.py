"""Settings from ``config.toml`` (see README "Settings"), with defaults that follow the rules."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from mcn_cli.domain.commitment import DEFAULT_COMMITMENT_DAYS
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.store import paths


@dataclass(frozen=True)
class Settings:
    # Maximum length of a payment commitment's coverage after its start (pharmacists' convention).
    commitment_days: int = DEFAULT_COMMITMENT_DAYS
    # The longest any cache record is kept, counted from the end of its dispensing month: a
    # claim for payment lapses two years after the end of the month of the dispensing (law
    # on compulsory health insurance coordinated 14 July 1994, art. 174), so after that no
    # invoice or rejection can need the commitment.
    cache_retention_months: int = 24
    # An open record (never invoiced) is removed this many days after its coverage ended: the
    # OTFS file of a month leaves early the next month, so it missed two monthly runs.
    uninvoiced_grace_days: int = 60
    # Which eHealth environment: sandbox (built in, the default), acc or prod. MCN_ENV or --env
    # override it.
    env: str = "sandbox"
    # The eID middleware's PKCS#11 module (default: libbeidpkcs11 for this OS; SoftHSM in the sandbox).
    pkcs11_module: str = ""
    # The pharmacy's organisation keystore (NIHII-PHARMACY=....p12), used as holder-of-key.
    org_keystore: str = ""
    # NISS of the pharmacy's titular pharmacist (the holder), claimed at login and certified by
    # eHealth; --holder overrides it. Needed in acc/prod (the sandbox knows its pharmacies).
    pharmacy_holder: str = ""
    # Which STS protocol: "wstrust" (WS-Trust 1.3, what eHealth's clients use today; needed for
    # an EC holder-of-key key) or "saml" (the SAML 1.1 samlp:Request service).
    sts_protocol: str = "wstrust"
    # Service addresses; empty means eHealth's own for acc/prod (a test rig may point elsewhere).
    sts_url: str = ""
    insurability_url: str = ""
    # Extra CA certificates (PEM) trusted for HTTPS, added to the system's.
    tls_ca_bundle: str = ""
    # Tokens are believed when their signer chains to these CA certificates (PEM; default: the
    # eHealth CAs shipped with mcn) and is named CN=<sts_signer> (default: eHealth's STS name for
    # the environment). No single certificate is pinned: eHealth rotates its STS signer.
    sts_trust_anchors: str = ""
    sts_signer: str = ""
    # Sent as the From header to eHealth (a contact address for the software vendor's support).
    contact_email: str = ""
    # Seconds to wait for eHealth or MyCareNet before falling back.
    timeout_seconds: int = 20
    # Largest answer accepted from eHealth or MyCareNet, in bytes, both as sent and once
    # decompressed (default 4 MiB; real answers are a few KiB): a larger one is a service failure.
    max_answer_bytes: int = 4 * 1024 * 1024
    # The software package's name and the licence MyCareNet issued to it (the password may come
    # from MCN_LICENSE_PASSWORD instead). The sandbox has its own.
    package_name: str = "mcn"
    license_username: str = ""
    license_password: str = ""
    # Write every request (exactly as sent, plus a copy with the licence redacted) and answer
    # envelope to this folder (support traces; off when empty).
    trace_dir: str = ""
    # Legitimate use: refuse a consultation past this many different patients within this many
    # minutes for one pharmacy (systematic consultation is forbidden, brochure 7.2).
    burst_patients: int = 40
    burst_minutes: int = 10
    # Where mcn cert keeps keystores and requests (default: keystores/ in the data folder).
    keystore_dir: str = ""
    # Extra trusted root certificates (PEM) for mcn cert install: eHealth's roots for acc/prod.
    ca_certificates: str = ""


RETIRED = {
    "sts_certificate": "tokens are now trusted by chain and name: remove it (see sts_trust_anchors)",
}


def load(path: Path | None = None) -> Settings:
    path = path or paths.config_file()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput("config", "toml", f"{path} is not valid TOML: {error}") from None
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, object] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name in RETIRED:
            raise InvalidInput("config", "retired-setting", f"{path}: {key}: {RETIRED[name]}")
        if name not in known:
            raise InvalidInput("config", "unknown-setting", f"{path}: unknown setting {key!r}")
        expected = type(getattr(Settings(), name))
        if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            raise InvalidInput("config", "type", f"{path}: {key} must be a {expected.__name__}")
        values[name] = value
    return Settings(**values)  # type: ignore[arg-type]
