"""The sandbox eID: SoftHSM2 tokens labelled BELPIC, one per test pharmacist with a card,
each holding an ``Authentication`` private key and certificate, as a Belgian eID does."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.ehealth.signers import EID_KEY, EID_TOKEN, pkcs11_library

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)
INSTALL_HINT = "install SoftHSM2 (Debian/Ubuntu: apt-get install softhsm2; macOS: brew install softhsm)"
SO_PIN = "12345678"  # the sandbox tokens' security-officer PIN


def module() -> str | None:
    found = next((m for m in MODULE_CANDIDATES if Path(m).exists()), None)
    return found if found and shutil.which("softhsm2-util") else None


def configure(folder: Path) -> Path:
    """Write the SoftHSM configuration for ``folder`` and point this process at it."""
    tokens = folder / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = folder / "softhsm2.conf"
    text = (
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
    )
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


def pin_works(folder: Path, pin: str) -> bool:
    """Whether tokens exist and every BELPIC token opens with ``pin``."""
    from pkcs11 import exceptions as p11

    path = module()
    if path is None or not (folder / "tokens").exists():
        return False
    configure(folder)
    library = pkcs11_library(path)
    tokens = list(library.get_tokens(token_label=EID_TOKEN))
    if not tokens:
        return False
    try:
        for token in tokens:
            with token.open(user_pin=pin):
                pass
    except p11.PKCS11Error:
        return False
    return True


def create_tokens(folder: Path, pin: str, cards: list[tuple[Any, x509.Certificate]]) -> None:
    """(Re)create one BELPIC token per (key, certificate)."""
    from pkcs11 import Attribute, CertificateType, ObjectClass
    from pkcs11.util.ec import decode_ec_private_key
    from pkcs11.util.rsa import decode_rsa_private_key

    path = module()
    if path is None:
        raise InvalidInput("softhsm", "missing", f"SoftHSM2 is not installed: {INSTALL_HINT}")
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise InvalidInput("pin", "form", "the sandbox eID PIN must have 4 to 12 digits")
    shutil.rmtree(folder / "tokens", ignore_errors=True)
    configure(folder)
    for _ in cards:
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                EID_TOKEN,
                "--so-pin",
                SO_PIN,
                "--pin",
                pin,
            ],
            check=True,
            capture_output=True,
            env=os.environ.copy(),
        )
    library = pkcs11_library(path)
    library.reinitialize()
    tokens = sorted(library.get_tokens(token_label=EID_TOKEN), key=lambda t: t.serial)
    for token, (key, certificate) in zip(tokens, cards, strict=True):
        with token.open(user_pin=pin, rw=True) as session:
            der = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            if isinstance(key, rsa.RSAPrivateKey):
                attributes = decode_rsa_private_key(der)
            elif isinstance(key, ec.EllipticCurvePrivateKey):
                attributes = decode_ec_private_key(der)
            else:
                raise InvalidInput("key", "type", "RSA or EC only")
            attributes.update(
                {
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.SIGN: True,
                    Attribute.LABEL: EID_KEY,
                    Attribute.ID: b"\x02",
                }
            )
            session.create_object(attributes)
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.CERTIFICATE,
                    Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                    Attribute.LABEL: EID_KEY,
                    Attribute.ID: b"\x02",
                    Attribute.VALUE: certificate.public_bytes(serialization.Encoding.DER),
                    Attribute.SUBJECT: certificate.subject.public_bytes(),
                }
            )
