"""Signers: a software key from a PKCS#12 keystore, or the eID's key through PKCS#11.

Both give XML-signature values over SHA-256: RSA PKCS#1 v1.5, or ECDSA as the raw r||s that
XML signatures use. Newer eID cards hold EC keys; the algorithm follows the key type.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mcn_cli.domain.errors import AuthenticationNeeded, InvalidInput
from mcn_cli.domain.messages import N_, Message
from mcn_cli.ehealth import ns

EID_TOKEN = "BELPIC"
EID_KEY = "Authentication"
EID_SIGNATURE_KEY = "Signature"  # the eID's non-repudiation key (CertRA's GenerateCertificate, Revoke)
KEYSTORE_ALIAS = "authentication"

DEFAULT_MODULES = {
    "linux": "libbeidpkcs11.so.0",
    "darwin": "/Library/Belgium Identity Card/Pkcs11/libbeidpkcs11.dylib",
    "win32": "beidpkcs11.dll",
}


def default_module() -> str:
    return DEFAULT_MODULES.get(sys.platform, DEFAULT_MODULES["linux"])


class Signer(Protocol):
    certificate: x509.Certificate

    @property
    def algorithm(self) -> str:
        """The XML-signature SignatureMethod URI."""
        ...

    def sign(self, data: bytes) -> bytes:
        """The XML-signature value of ``data`` (SHA-256)."""
        ...


def algorithm_for(public_key: Any) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return ns.RSA_SHA256
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ns.ECDSA_SHA256
    raise InvalidInput(
        "key", "type", N_("unsupported key type {kind} (RSA or EC only)"), kind=type(public_key).__name__
    )


def _raw_ecdsa(der: bytes, curve_bits: int) -> bytes:
    r, s = decode_dss_signature(der)
    size = (curve_bits + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@dataclass
class KeystoreSigner:
    """A private key held in memory (from a PKCS#12 keystore, or a sealed session)."""

    private_key: Any
    certificate: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def algorithm(self) -> str:
        return algorithm_for(self.private_key.public_key())

    def sign(self, data: bytes) -> bytes:
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return _raw_ecdsa(key.sign(data, ec.ECDSA(hashes.SHA256())), key.curve.key_size)
        raise InvalidInput("key", "type", N_("unsupported key type (RSA or EC only)"))

    def private_der(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def load_keystore(path: Path, password: str, field_name: str = "keystore") -> KeystoreSigner:
    """The ``authentication`` key and certificate of a PKCS#12 keystore, with its chain.

    A file that is no keystore mcn reads (special, empty, oversize, malformed, or asking an
    unreasonable iteration count) is ``InvalidInput`` (exit 2); a wrong password is
    ``AuthenticationNeeded`` (exit 4): one line each, whatever the file holds."""
    from mcn_cli.ehealth.keystore import KeystoreError, KeystoreUnreadable, printable, read, read_file

    try:
        data = read_file(path)
    except KeystoreUnreadable as error:  # its detail names the path
        raise InvalidInput(field_name, error.rule, error.detail_id, **error.params) from None
    try:
        store = read(data, password)
    except KeystoreUnreadable as error:
        raise InvalidInput(
            field_name,
            error.rule,
            N_("{file}: {problem}"),
            file=printable(path.name),
            problem=Message(error.detail_id, error.params),
        ) from None
    except KeystoreError as error:
        raise AuthenticationNeeded(
            N_("{field} {file}: {reason}"),
            field=field_name,
            file=printable(path.name),
            reason=error.as_message(),
        ) from None
    entry = store.get(KEYSTORE_ALIAS)
    if entry is None and len(store.entries) == 1 and not store.entries[0].alias:
        entry = store.entries[0]
    if entry is None:
        aliases = ", ".join(repr(e.alias) for e in store.entries) or "none"
        raise InvalidInput(
            field_name,
            "alias",
            N_("{file} has no key under alias 'authentication' ({aliases})"),
            file=printable(path.name),
            aliases=printable(aliases),
        )
    if entry.certificate is None:
        raise InvalidInput(
            field_name,
            "no-certificate",
            N_("{file} holds a key but no certificate yet: install the one eHealth sent (mcn cert install)"),
            file=printable(path.name),
        )
    return KeystoreSigner(entry.private_key, entry.certificate, entry.chain)


class Pkcs11Signer:
    """The eID's authentication key, used inside an open PKCS#11 session."""

    def __init__(self, session: Any, key: Any, certificate: x509.Certificate) -> None:
        self._session = session
        self._key = key
        self.certificate = certificate

    @property
    def algorithm(self) -> str:
        return algorithm_for(self.certificate.public_key())

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism

        if self.algorithm == ns.RSA_SHA256:
            return bytes(self._key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
        # CKM_ECDSA signs a digest and returns r||s, as XML signatures want it.
        return bytes(self._key.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA))

    def close(self) -> None:
        self._session.close()


_LOADED_WITH: dict[str, str | None] = {}


def pkcs11_library(module: str) -> Any:
    """The PKCS#11 library, loaded once per process; re-initialised when SOFTHSM2_CONF changed
    (the sandbox points SoftHSM at the token folder of the current MCN_HOME)."""
    import os

    import pkcs11

    library = pkcs11.lib(module)
    current = os.environ.get("SOFTHSM2_CONF")
    if module in _LOADED_WITH and _LOADED_WITH[module] != current:
        library.reinitialize()
    _LOADED_WITH[module] = current
    return library


def _token_certificate(token: Any) -> x509.Certificate | None:
    from pkcs11 import Attribute, ObjectClass

    with token.open() as session:
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: EID_KEY}):
            return x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE]))
    return None


def card_niss(certificate: x509.Certificate) -> str | None:
    values = certificate.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)
    return str(values[0].value) if values else None


# The PIN state a PKCS#11 token reports in its flags (CKF_USER_PIN_*; the eID middleware sets
# them from the card's try counter, SoftHSM2 only COUNT_LOW). The eID allows 3 wrong PINs.
PIN_COUNT_LOW = 0x00010000  # a wrong PIN since the last right one
PIN_FINAL_TRY = 0x00020000  # one try left
PIN_LOCKED = 0x00040000  # no try left: only the PUK unblocks it

LOCKED = N_("the eID card is locked: unblock it with its PUK at the municipality")
FINAL_TRY_WARNING = N_("one try left: a wrong PIN now blocks the card")


def wrong_pin(flags: int) -> AuthenticationNeeded:
    """The refusal of a wrong PIN, saying what the token reports of the tries left (``flags``:
    the token's flags read again after the refusal)."""
    if flags & PIN_LOCKED:
        return AuthenticationNeeded(
            N_("wrong eID PIN: the card is now locked: unblock it with its PUK at the municipality")
        )
    if flags & PIN_FINAL_TRY:
        return AuthenticationNeeded(N_("wrong eID PIN: one try left: a wrong PIN now blocks the card"))
    if flags & PIN_COUNT_LOW:
        return AuthenticationNeeded(
            N_("wrong eID PIN: two tries left at most (the card locks after 3 wrong PINs)")
        )
    return AuthenticationNeeded(N_("wrong eID PIN (the card locks after 3 wrong PINs)"))


def _flags_now(token: Any) -> int:
    """The token's flags as it reports them now (python-pkcs11 keeps those read when listed)."""
    try:
        return int(token.slot.get_token().flags)
    except Exception:  # a card pulled out meanwhile, a module without the slot: nothing known
        return 0


def open_eid(
    module: str,
    pin: Any,
    *,
    user_niss: str | None = None,
    warn: Callable[[Message], None] = lambda message: None,
    key_label: str = EID_KEY,
) -> Pkcs11Signer:
    """Open the eID (token ``BELPIC``) and log in; its key ``key_label`` (``Authentication``, or
    ``Signature``) signs. ``pin`` is called only when the reader has no
    PIN pad (protected authentication path); a PIN that is not 4 to 12 ASCII digits is refused
    (exit 2) before the card sees it. A card already locked is refused before any PIN is asked;
    one with a single try left is announced through ``warn`` (FINAL_TRY_WARNING) before the PIN
    is asked. A wrong PIN says the tries left when the token reports them."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass, TokenFlag
    from pkcs11 import exceptions as p11

    try:
        library = pkcs11_library(module)
    except (RuntimeError, OSError, p11.PKCS11Error) as error:
        raise InvalidInput(
            "pkcs11-module",
            "load",
            N_(
                "cannot load the PKCS#11 module {module} ({reason}); "
                "install the eID middleware or set pkcs11_module"
            ),
            module=module,
            reason=str(error),
        ) from None
    tokens = list(library.get_tokens(token_label=EID_TOKEN))
    if not tokens:
        raise AuthenticationNeeded(
            N_("no eID card found (no token BELPIC): insert the card, or log in with --fallback KEYSTORE")
        )
    chosen = tokens[0]
    if user_niss is not None:
        matching = [
            t for t in tokens if (c := _token_certificate(t)) is not None and card_niss(c) == user_niss
        ]
        if not matching:
            raise AuthenticationNeeded(N_("no eID card of {niss} in the readers"), niss=user_niss)
        chosen = matching[0]
    state = int(chosen.flags)
    if state & PIN_LOCKED:
        raise AuthenticationNeeded(LOCKED)
    if state & PIN_FINAL_TRY:
        warn(Message(FINAL_TRY_WARNING))
    try:
        if chosen.flags & TokenFlag.PROTECTED_AUTHENTICATION_PATH:
            session = chosen.open(user_pin=pkcs11.PROTECTED_AUTH)
        else:
            from mcn_cli.domain.pin import check_pin

            session = chosen.open(user_pin=check_pin(pin()))  # a wrong form costs no try
    except p11.PinIncorrect:
        raise wrong_pin(_flags_now(chosen)) from None
    except p11.PinLocked:
        raise AuthenticationNeeded(LOCKED) from None
    except (p11.PinLenRange, p11.PinInvalid):
        raise AuthenticationNeeded(N_("the eID PIN has the wrong form (4 to 12 digits)")) from None
    try:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_label)
        certificate = next(
            x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE]))
            for obj in session.get_objects(
                {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: key_label}
            )
        )
    except (p11.NoSuchKey, p11.MultipleObjectsReturned, StopIteration):
        session.close()
        raise AuthenticationNeeded(
            N_("the eID card has no {key} key and certificate"), key=key_label
        ) from None
    if key.key_type not in (KeyType.RSA, KeyType.EC):
        session.close()
        raise AuthenticationNeeded(N_("the eID key is neither RSA nor EC"))
    return Pkcs11Signer(session, key, certificate)
