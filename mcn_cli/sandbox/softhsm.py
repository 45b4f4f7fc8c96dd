"""The sandbox eID: SoftHSM2 tokens labelled BELPIC, one per test pharmacist with a card,
each holding an ``Authentication`` and a ``Signature`` private key with their certificates, as a
Belgian eID does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_, Message
from mcn_cli.domain.pin import check_pin
from mcn_cli.ehealth.signers import EID_TOKEN, pkcs11_library

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)
INSTALL_HINT = N_("install SoftHSM2 (Debian/Ubuntu: apt-get install softhsm2; macOS: brew install softhsm)")
SO_PIN = "12345678"  # the sandbox tokens' security-officer PIN


def module() -> str | None:
    """SoftHSM2's PKCS#11 module, if installed (its softhsm2-util is not needed)."""
    return next((m for m in MODULE_CANDIDATES if Path(m).exists()), None)


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


def _initialise_free_token(library: Any, path: str, pin: str) -> None:
    """C_InitToken on SoftHSM's free slot (label BELPIC, the SO PIN), then C_InitPIN in a
    security-officer session: the PINs go to the module in memory, never on a command line
    (``softhsm2-util --so-pin X --pin Y`` shows them to ``ps``; it reads no PIN from a pipe)."""
    import ctypes

    from pkcs11 import TokenFlag

    free = [
        slot
        for slot in library.get_slots(token_present=True)
        if not slot.get_token().flags & TokenFlag.TOKEN_INITIALIZED
    ]
    if not free:
        raise InvalidInput("softhsm", "no-free-slot", N_("SoftHSM2 offers no free slot for a new token"))
    slot_id = free[0].slot_id
    # python-pkcs11 does not expose C_InitToken; the module is already loaded and initialised
    # by it, and dlopen of the same file gives the same instance.
    init_token = ctypes.CDLL(path).C_InitToken
    init_token.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    init_token.restype = ctypes.c_ulong
    so_pin = SO_PIN.encode()
    label = EID_TOKEN.encode().ljust(32)  # CK_UTF8CHAR[32], blank-padded
    result = init_token(slot_id, so_pin, len(so_pin), label)
    if result != 0:
        raise InvalidInput(
            "softhsm",
            "init-token",
            N_("SoftHSM2 refused to initialise a token (CKR 0x{code:x})"),
            code=result,
        )
    token = next(s for s in library.get_slots(token_present=True) if s.slot_id == slot_id).get_token()
    with token.open(rw=True, so_pin=SO_PIN) as session:
        session.init_pin(pin)


def pin_works(folder: Path, pin: str) -> bool:
    """Whether tokens exist and every BELPIC token opens with ``pin`` (4 to 12 ASCII digits:
    check it first)."""
    from pkcs11 import exceptions as p11

    check_pin(pin, N_("sandbox eID PIN"))
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


def create_tokens(folder: Path, pin: str, cards: list[list[tuple[str, Any, x509.Certificate]]]) -> None:
    """(Re)create one BELPIC token per card: each (label, key, certificate) of the card as a
    private key and its certificate under that label (Authentication, Signature)."""
    from pkcs11 import Attribute, CertificateType, ObjectClass
    from pkcs11.util.ec import decode_ec_private_key
    from pkcs11.util.rsa import decode_rsa_private_key

    path = module()
    if path is None:
        raise InvalidInput(
            "softhsm", "missing", N_("SoftHSM2 is not installed: {install}"), install=Message(INSTALL_HINT)
        )
    check_pin(pin, N_("sandbox eID PIN"))
    shutil.rmtree(folder / "tokens", ignore_errors=True)
    configure(folder)
    library = pkcs11_library(path)
    library.reinitialize()  # forget the tokens just removed
    for _ in cards:
        _initialise_free_token(library, path, pin)
    tokens = sorted(library.get_tokens(token_label=EID_TOKEN), key=lambda t: t.serial)
    for token, card in zip(tokens, cards, strict=True):
        with token.open(user_pin=pin, rw=True) as session:
            for number, (label, key, certificate) in enumerate(card, start=2):  # BELPIC: 2, 3
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
                    raise InvalidInput("key", "type", N_("RSA or EC only"))
                attributes.update(
                    {
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: True,
                        Attribute.SENSITIVE: True,
                        Attribute.SIGN: True,
                        Attribute.LABEL: label,
                        Attribute.ID: bytes([number]),
                    }
                )
                session.create_object(attributes)
                session.create_object(
                    {
                        Attribute.CLASS: ObjectClass.CERTIFICATE,
                        Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: False,
                        Attribute.LABEL: label,
                        Attribute.ID: bytes([number]),
                        Attribute.VALUE: certificate.public_bytes(serialization.Encoding.DER),
                        Attribute.SUBJECT: certificate.subject.public_bytes(),
                    }
                )
