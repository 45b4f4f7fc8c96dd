"""Settings from ``config.toml`` (see README "Settings"), with defaults that follow the rules."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from mcn_cli.domain.commitment import DEFAULT_COMMITMENT_DAYS
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_, Message
from mcn_cli.domain.text import first_control
from mcn_cli.store import paths


@dataclass(frozen=True)
class Settings:
    # Every setting's allowed values ("Range:") are checked by load() when the config is read;
    # outside them mcn stops with exit 2 naming the setting. The ranges are in RANGES below.
    #
    # Maximum length of a payment commitment's coverage after its start (pharmacists' convention).
    # Range: 0..90 days.
    commitment_days: int = DEFAULT_COMMITMENT_DAYS
    # The longest any cache record is kept, counted from the end of its dispensing month: a
    # claim for payment lapses two years after the end of the month of the dispensing (law
    # on compulsory health insurance coordinated 14 July 1994, art. 174), so after that no
    # invoice or rejection can need the commitment. Range: 24..60 months (never less than the
    # two years a claim may still come; never more than billing could need).
    cache_retention_months: int = 24
    # An open record (never invoiced) is removed this many days after its coverage ended: the
    # OTFS file of a month leaves early the next month, so it missed two monthly runs.
    # Range: 31..365 days (at least one monthly run after the coverage ended).
    uninvoiced_grace_days: int = 60
    # The language of mcn's messages: fr, nl or en (empty: the locale decides, English last).
    # --lang and MCN_LANG override it. Range: empty, fr, nl or en.
    lang: str = ""
    # Which eHealth environment: sandbox (built in, the default), acc or prod. MCN_ENV or --env
    # override it. Range: sandbox, acc or prod.
    env: str = "sandbox"
    # The eID middleware's PKCS#11 module (default: libbeidpkcs11 for this OS; SoftHSM in the sandbox).
    # Range: empty or a path (for every path below: at most 4096 characters, no control character).
    pkcs11_module: str = ""
    # The pharmacy's organisation keystore (NIHII-PHARMACY=....p12), used as holder-of-key.
    # Range: empty or a path.
    org_keystore: str = ""
    # NISS of the pharmacy's titular pharmacist (the holder), claimed at login and certified by
    # eHealth; --holder overrides it. Needed in acc/prod (the sandbox knows its pharmacies).
    # Range: empty or a NISS (11 digits, right check digits).
    pharmacy_holder: str = ""
    # Which STS protocol: "wstrust" (WS-Trust 1.3, what eHealth's clients use today; needed for
    # an EC holder-of-key key) or "saml" (the SAML 1.1 samlp:Request service).
    # Range: wstrust or saml.
    sts_protocol: str = "wstrust"
    # Service addresses; empty means eHealth's own for acc/prod (a test rig may point elsewhere).
    # Range: empty or an https:// address (at most 2048 characters).
    sts_url: str = ""
    insurability_url: str = ""
    # Extra CA certificates (PEM) trusted for HTTPS, added to the system's. Range: empty or a path.
    tls_ca_bundle: str = ""
    # Tokens are believed when their signer chains to these CA certificates (PEM; default: the
    # eHealth CAs shipped with mcn) and is named CN=<sts_signer> (default: eHealth's STS name for
    # the environment). No single certificate is pinned: eHealth rotates its STS signer.
    # Range: sts_trust_anchors empty or a path; sts_signer at most 256 characters, no control
    # character.
    sts_trust_anchors: str = ""
    sts_signer: str = ""
    # Sent as the From header to eHealth (a contact address for the software vendor's support).
    # Range: empty or an e-mail address (at most 254 characters).
    contact_email: str = ""
    # Seconds to wait for eHealth or MyCareNet before falling back. Range: 1..300 seconds.
    timeout_seconds: int = 20
    # Largest answer accepted from eHealth or MyCareNet, in bytes, both as sent and once
    # decompressed (default 4 MiB; real answers are a few KiB): a larger one is a service failure.
    # Range: 512..67108864 bytes (64 MiB).
    max_answer_bytes: int = 4 * 1024 * 1024
    # The software package's name and the licence MyCareNet issued to it (the password may come
    # from MCN_LICENSE_PASSWORD instead). The sandbox has its own.
    # Range: package_name 1..100 characters; the licence's at most 256; no control character.
    package_name: str = "mcn"
    license_username: str = ""
    license_password: str = ""
    # Write every request (exactly as sent, plus a copy with the licence redacted) and answer
    # envelope to this folder (support traces; off when empty). Range: empty or a path.
    trace_dir: str = ""
    # Legitimate use: refuse a consultation past this many different patients within this many
    # minutes for one pharmacy (systematic consultation is forbidden, brochure 7.2).
    # Range: burst_patients 1..200, burst_minutes 1..1440 (a day), and at most 10 patients a
    # minute (burst_patients <= 10 x burst_minutes): the guard cannot be switched off.
    burst_patients: int = 40
    burst_minutes: int = 10
    # A tarification office's batch stops after this many service failures in a row (exit 5)
    # instead of sending the rest; --max-failures overrides it. Range: 1..10000.
    ot_max_failures: int = 5
    # Where mcn cert keeps keystores and requests (default: keystores/ in the data folder).
    # Range: empty or a path.
    keystore_dir: str = ""
    # Extra trusted root certificates (PEM) for mcn cert install: eHealth's roots for acc/prod.
    # Range: empty or a path.
    ca_certificates: str = ""
    # The shared store: a PostgreSQL (14+) address every counter of the pharmacy uses
    # (postgresql://USER@HOST:PORT/DB?sslmode=verify-full; the password from PGPASSWORD or
    # ~/.pgpass rather than here). Empty: this workstation's SQLite file, the default.
    # MCN_STORE_URL overrides it. Range: empty or a postgresql:// address (at most 2048 characters).
    store_url: str = ""
    # This workstation's name in the shared store (sessions, spool). Default: the host name.
    # MCN_WORKSTATION overrides it. Range: empty or 1..64 letters, digits, '.', '_' or '-'.
    workstation: str = ""


@dataclass(frozen=True)
class Between:
    """A whole number from ``low`` to ``high``, both included."""

    low: int
    high: int
    unit: str

    def describe(self) -> Message:
        return Message(_UNITS[self.unit], {"low": self.low, "high": self.high})

    def allows(self, value: object) -> bool:
        return isinstance(value, int) and self.low <= value <= self.high


@dataclass(frozen=True)
class OneOf:
    choices: tuple[str, ...]

    def describe(self) -> Message:
        return Message(N_("one of {choices}"), {"choices": ", ".join(self.choices)})

    def allows(self, value: object) -> bool:
        return value in self.choices


@dataclass(frozen=True)
class Form:
    """Text of at most ``longest`` characters without control characters, matching ``pattern``
    (``empty`` allows ""); ``secret`` values are never repeated in a message."""

    what: str
    longest: int
    pattern: str = r".*"
    empty: bool = True
    secret: bool = False

    def describe(self) -> Message:
        text = N_("empty or {what} (at most {longest} characters)") if self.empty else N_(
            "{what} (at most {longest} characters)"
        )
        return Message(text, {"what": Message(self.what), "longest": self.longest})

    def allows(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if value == "":
            return self.empty
        return (
            len(value) <= self.longest
            and first_control(value) is None
            and re.fullmatch(self.pattern, value, re.DOTALL) is not None
        )


_UNITS = {
    "days": N_("{low}..{high} days"),
    "months": N_("{low}..{high} months"),
    "seconds": N_("{low}..{high} seconds"),
    "bytes": N_("{low}..{high} bytes"),
    "patients": N_("{low}..{high} patients"),
    "minutes": N_("{low}..{high} minutes"),
    "failures": N_("{low}..{high} failures"),
}

PATH = Form(N_("a path"), 4096)
URL = Form(N_("an https:// address"), 2048, r"https://[^\s/?#]+[^\s]*")
LICENCE = Form(N_("text"), 256, secret=True)

RANGES: dict[str, Between | OneOf | Form] = {
    "commitment_days": Between(0, 90, "days"),
    "cache_retention_months": Between(24, 60, "months"),
    "uninvoiced_grace_days": Between(31, 365, "days"),
    "lang": OneOf(("", "fr", "nl", "en")),
    "env": OneOf(("sandbox", "acc", "prod")),
    "pkcs11_module": PATH,
    "org_keystore": PATH,
    "pharmacy_holder": Form(N_("a NISS (11 digits)"), 20),
    "sts_protocol": OneOf(("wstrust", "saml")),
    "sts_url": URL,
    "insurability_url": URL,
    "tls_ca_bundle": PATH,
    "sts_trust_anchors": PATH,
    "sts_signer": Form(N_("a name"), 256),
    "contact_email": Form(N_("an e-mail address"), 254, r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"),
    "timeout_seconds": Between(1, 300, "seconds"),
    "max_answer_bytes": Between(512, 64 * 1024 * 1024, "bytes"),
    "package_name": Form(N_("a name"), 100, empty=False),
    "license_username": LICENCE,
    "license_password": LICENCE,
    "trace_dir": PATH,
    "burst_patients": Between(1, 200, "patients"),
    "burst_minutes": Between(1, 1440, "minutes"),
    "ot_max_failures": Between(1, 10000, "failures"),
    "keystore_dir": PATH,
    "ca_certificates": PATH,
    "store_url": Form(N_("a postgresql:// address"), 2048, r"postgres(?:ql)?://\S*", secret=True),
    "workstation": Form(N_("a name (letters, digits, '.', '_', '-')"), 64, r"[A-Za-z0-9._-]+"),
}
BURST_RATE = 10  # at most this many different patients a minute, on average over the window


RETIRED = {
    "sts_certificate": N_("tokens are now trusted by chain and name: remove it (see sts_trust_anchors)"),
}


def configured_language() -> str:
    """The ``lang`` setting, read alone and quickly (every start asks for it); empty when the
    config says nothing usable of it (a broken config is reported by :func:`load`)."""
    path = paths.config_file()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return ""
    value = raw.get("lang", "")
    return value if isinstance(value, str) and value in ("fr", "nl", "en") else ""


def load(path: Path | None = None) -> Settings:
    path = path or paths.config_file()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput(
            "config", "toml", N_("{path} is not valid TOML: {error}"), path=path, error=str(error)
        ) from None
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, object] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name in RETIRED:
            why = Message(RETIRED[name])
            raise InvalidInput(
                "config", "retired-setting", N_("{path}: {key}: {why}"), path=path, key=key, why=why
            )
        if name not in known:
            raise InvalidInput(
                "config", "unknown-setting", N_("{path}: unknown setting {key!r}"), path=path, key=key
            )
        expected = type(getattr(Settings(), name))
        if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            kind = expected.__name__
            raise InvalidInput(
                "config", "type", N_("{path}: {key} must be a {kind}"), path=path, key=key, kind=kind
            )
        values[name] = value
    settings = Settings(**values)  # type: ignore[arg-type]
    check_ranges(settings, path)
    return settings


def _out_of_range(path: Path | None, name: str, rule: Between | OneOf | Form, value: object) -> InvalidInput:
    secret = isinstance(rule, Form) and rule.secret  # a secret value is never repeated
    if path is not None:
        text = (
            N_("{path}: {name} must be {allowed}")
            if secret
            else N_("{path}: {name} must be {allowed}, got {value!r}")
        )
    else:
        text = N_("{name} must be {allowed}") if secret else N_("{name} must be {allowed}, got {value!r}")
    params: dict[str, object] = {"path": path, "name": name, "allowed": rule.describe()}
    if not secret:
        params["value"] = value
    return InvalidInput(name, "range", text, **params)


def check_store_url(url: str) -> None:
    """MCN_STORE_URL obeys the setting's range (exit 2 otherwise; the value is never repeated)."""
    rule = RANGES["store_url"]
    if not rule.allows(url):
        raise _out_of_range(None, "store_url", rule, url)


def check_ranges(settings: Settings, path: Path | None = None) -> None:
    """InvalidInput (exit 2) naming the first setting outside its range (see RANGES)."""
    for name, rule in RANGES.items():
        value = getattr(settings, name)
        if not rule.allows(value):
            raise _out_of_range(path, name, rule, value)
    if settings.pharmacy_holder:
        from mcn_cli.domain.identifiers import parse_niss

        try:
            parse_niss(settings.pharmacy_holder, "pharmacy_holder")
        except InvalidInput as error:
            text = (
                N_("{path}: pharmacy_holder must be empty or a NISS: {problem}")
                if path is not None
                else N_("pharmacy_holder must be empty or a NISS: {problem}")
            )
            raise InvalidInput(
                "pharmacy_holder", "range", text, path=path, problem=Message(error.detail_id, error.params)
            ) from None
    if settings.burst_patients > BURST_RATE * settings.burst_minutes:
        text = (
            N_("{path}: burst_patients must be at most {rate} x burst_minutes ({most}), got {value}: "
               "a wider limit would switch the legitimate-use guard off")
            if path is not None
            else N_("burst_patients must be at most {rate} x burst_minutes ({most}), got {value}: "
                    "a wider limit would switch the legitimate-use guard off")
        )
        raise InvalidInput(
            "burst_patients",
            "range",
            text,
            path=path,
            rate=BURST_RATE,
            most=BURST_RATE * settings.burst_minutes,
            value=settings.burst_patients,
        )
