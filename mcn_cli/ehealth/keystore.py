"""PKCS#12 keystores as eHealth uses them: several keys, each under its alias.

eHealth's keystores hold the authentication key (alias ``authentication``) with its chain and
each encryption key under its certificate's serial number in decimal. Reading accepts what
eHealth's tools write (3DES / RC2 legacy encryption, SHA-1 MAC) and what OpenSSL 3 writes
(PBES2); writing uses PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256 and a SHA-256 MAC, which
OpenSSL 3 opens without ``-legacy``.

A keystore is read as hostile input: every size and count the file states is checked against
the bounds below before any work it would cost, and whatever does not parse ends as one
``KeystoreUnreadable`` (an ``InvalidInput``: exit 2) or, for a wrong password, ``KeystoreError``
(the callers make it ``AuthenticationNeeded``: exit 4), never as another exception.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

from asn1crypto import algos, cms, core, keys, pkcs12
from cryptography import x509
from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_, Message
from mcn_cli.ehealth.xmldsig import Refusal

ITERATIONS = 20_000  # PBKDF2 rounds per bag: OpenSSL 3 uses 2048; more slows guessing
MAC_ITERATIONS = 2048

# The bounds of what a keystore may ask, all checked before the work they would cost.
#
# An iteration count is how many times a key derivation hashes: the file chooses it, and 2**31-1
# would keep mcn busy for hours before the password is even checked. Real keystores ask 2048
# (OpenSSL), 10 000 to 100 000 (Java's keytool, eHealth's tools); OWASP advises 600 000 for
# PBKDF2-HMAC-SHA256. One million per count leaves room above all of them, and a crafted file is
# refused within about a second: 0.6 s per 20 bytes derived for the PKCS#12 derivation (pure
# Python), 0.25 s for PBKDF2-HMAC-SHA256, measured on this project's 2-core machine. Each count
# (the MAC's, each encrypted bag's) must be at most MAX_ITERATIONS; and the hashing they cost
# together (count times the digest blocks each derives) at most MAX_TOTAL_ITERATIONS: many bags
# at the bound cannot add up to a hang either.
MAX_ITERATIONS = 1_000_000
MAX_TOTAL_ITERATIONS = 2 * MAX_ITERATIONS
# A keystore is a few kilobytes (a key or two and their chains): a file over 1 MiB is not one,
# and reading /dev/zero whole would take all the memory.
MAX_KEYSTORE_BYTES = 1 << 20
# RC2 is decrypted in pure Python (about 400 KB/s): legacy keystores put only their
# certificates under it, a few kilobytes; 128 KiB keeps a hostile bag under half a second.
MAX_RC2_BYTES = 128 << 10
# OpenSSL checks an RSA private key's primes on loading, a cost growing with the cube of the
# size: 0.26 s at 4096 bits, 3.8 s at 8192. eHealth issues 2048-bit RSA (and EC P-384) keys.
MAX_RSA_BITS = 4096
# eHealth's keystores hold the authentication key and one encryption key per renewal, with
# their chains: a few dozen bags. More keys than this would only cost loading time.
MAX_BAGS = 256
MAX_KEYS = 8  # eHealth's keystores hold an authentication key and a few encryption keys

# The digests a MAC or PBKDF2 may use (SHA-1 for legacy keystores, SHA-2 for the others).
_HASHES = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512", "sha512_224", "sha512_256"})


class KeystoreError(Refusal):
    """Wrong password (the MAC does not verify, or the contents do not decrypt); English source
    text with parameters (``as_message()``), which the callers quote."""


class KeystoreUnreadable(InvalidInput):
    """Not a PKCS#12 keystore mcn can read: a special, empty, oversize or malformed file, an
    unsupported algorithm, or a size or count beyond the bounds above. ``rule`` says which:
    missing, unreadable, not-a-file, empty, size, malformed, unsupported, iterations, key-size."""

    def __init__(self, rule: str, detail: str, **params: object) -> None:
        super().__init__("keystore", rule, detail, **params)


@dataclass
class KeyEntry:
    alias: str
    private_key: Any
    certificate: x509.Certificate | None
    chain: list[x509.Certificate] = field(default_factory=list)


@dataclass
class Keystore:
    entries: list[KeyEntry]

    def get(self, alias: str) -> KeyEntry | None:
        return next((e for e in self.entries if e.alias.lower() == alias.lower()), None)


def printable(text: str, limit: int = 120) -> str:
    """``text`` fit for a one-line message: control characters escaped, a long text cut."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# --- the file ------------------------------------------------------------------------------------

_KINDS = (
    (stat.S_ISDIR, N_("{path} is a directory, not a keystore file")),
    (stat.S_ISFIFO, N_("{path} is a named pipe, not a keystore file")),
    (stat.S_ISCHR, N_("{path} is a character device, not a keystore file")),
    (stat.S_ISBLK, N_("{path} is a block device, not a keystore file")),
    (stat.S_ISSOCK, N_("{path} is a socket, not a keystore file")),
)


def _not_a_file(path: Path, mode: int) -> KeystoreUnreadable:
    detail = next((message for test, message in _KINDS if test(mode)), N_("{path} is not a regular file"))
    return KeystoreUnreadable("not-a-file", detail, path=printable(str(path)))


def _too_big() -> KeystoreUnreadable:
    return KeystoreUnreadable(
        "size", N_("the file is larger than {size} KiB: not a keystore"), size=MAX_KEYSTORE_BYTES // 1024
    )


def read_file(path: Path) -> bytes:
    """The bytes of the keystore file at ``path``, refusing anything that is not a regular file
    (checked before opening, and again on what was opened: a FIFO swapped in meanwhile cannot
    block, the file is opened non-blocking) and reading at most MAX_KEYSTORE_BYTES + 1 bytes."""
    shown = printable(str(path))
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise KeystoreUnreadable("missing", N_("no keystore at {path}"), path=shown) from None
    except ValueError:
        raise KeystoreUnreadable(
            "unreadable", N_("cannot read {path}: the path holds a NUL"), path=shown
        ) from None
    except OSError as error:
        raise KeystoreUnreadable(
            "unreadable", N_("cannot read {path}: {reason}"), path=shown, reason=_reason(error)
        ) from None
    if not stat.S_ISREG(status.st_mode):
        raise _not_a_file(path, status.st_mode)
    if status.st_size > MAX_KEYSTORE_BYTES:
        raise _too_big()
    flags = os.O_RDONLY
    for name in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_BINARY"):
        flags |= getattr(os, name, 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise KeystoreUnreadable("missing", N_("no keystore at {path}"), path=shown) from None
    except OSError as error:
        raise KeystoreUnreadable(
            "unreadable", N_("cannot read {path}: {reason}"), path=shown, reason=_reason(error)
        ) from None
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):
            raise _not_a_file(path, opened.st_mode)
        chunks, left = [], MAX_KEYSTORE_BYTES + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as error:
        raise KeystoreUnreadable(
            "unreadable", N_("cannot read {path}: {reason}"), path=shown, reason=_reason(error)
        ) from None
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    if len(data) > MAX_KEYSTORE_BYTES:
        raise _too_big()
    if not data:
        raise KeystoreUnreadable("empty", N_("{path} is empty: not a keystore"), path=shown)
    return data


def _reason(error: OSError) -> str:
    return printable(error.strerror or f"system error {error.errno}")


# --- the PKCS#12 key derivation (RFC 7292, appendix B) ------------------------------------------


def _bmp(password: str) -> bytes:
    return password.encode("utf-16-be") + b"\x00\x00" if password else b""


def pkcs12_kdf(
    password: str, salt: bytes, purpose: int, iterations: int, size: int, name: str = "sha1"
) -> bytes:
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iteration count out of bounds (1 to {MAX_ITERATIONS})")
    digest = hashlib.new(name)
    u, v = digest.digest_size, digest.block_size

    def stretch(data: bytes) -> bytes:
        if not data:
            return b""
        length = v * ((len(data) + v - 1) // v)
        return (data * (length // len(data) + 1))[:length]

    d = bytes([purpose]) * v
    i = bytearray(stretch(salt) + stretch(_bmp(password)))
    out = b""
    # the named constructor (sha1, sha256...) is twice as fast as hashlib.new in this loop
    hash_function = getattr(hashlib, name, None) or (lambda data: hashlib.new(name, data))
    while len(out) < size:
        a = hash_function(d + bytes(i)).digest()
        for _ in repeat(None, iterations - 1):
            a = hash_function(a).digest()
        out += a
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        for start in range(0, len(i), v):
            block = (int.from_bytes(i[start : start + v], "big") + b + 1) % (1 << (8 * v))
            i[start : start + v] = block.to_bytes(v, "big")
    return out[:size]


# --- decryption of what eHealth's and OpenSSL's tools write ----------------------------------------

_PKCS12_PBE = {
    "1.2.840.113549.1.12.1.3": ("3des", 24),  # pbeWithSHAAnd3-KeyTripleDES-CBC
    "1.2.840.113549.1.12.1.4": ("3des", 16),  # pbeWithSHAAnd2-KeyTripleDES-CBC
    "1.2.840.113549.1.12.1.5": ("rc2", 16),  # pbeWithSHAAnd128BitRC2-CBC
    "1.2.840.113549.1.12.1.6": ("rc2", 5),  # pbeWithSHAAnd40BitRC2-CBC
}
_PBES2_CIPHERS = {
    "aes128_cbc": ("aes", 16),
    "aes192_cbc": ("aes", 24),
    "aes256_cbc": ("aes", 32),
    "tripledes_3key": ("3des", 24),
}
_BLOCK_BYTES = {"aes": 16, "3des": 8, "rc2": 8}

# What asn1crypto and cryptography raise on bytes that are not what they should be.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    UnsupportedAlgorithm,
    InternalError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


@contextmanager
def _parsing(detail: str, *, wrong_password: bool = False) -> Iterator[None]:  # detail: an N_ message
    """Whatever the parsers raise inside becomes one refusal: ``KeystoreUnreadable(detail)``, or
    ``KeystoreError`` when the bytes came from a decryption whose password nothing confirmed."""
    try:
        yield
    except _PARSE_ERRORS:
        if wrong_password:
            raise KeystoreError(N_("wrong password")) from None
        raise KeystoreUnreadable("malformed", detail) from None


def _count(value: int) -> str:
    return f"{value:,}" if value.bit_length() <= 64 else "more than 2^64"


def _iterations(value: Any, what: str) -> int:
    """An iteration count from the file, refused above MAX_ITERATIONS before any derivation."""
    if not isinstance(value, int) or value < 1:
        raise KeystoreUnreadable("malformed", N_("the {part} has no valid iteration count"), part=_part(what))
    if value > MAX_ITERATIONS:
        raise KeystoreUnreadable(
            "iterations",
            N_(
                "the keystore asks an unreasonable iteration count for its {part} "
                "({count}; mcn allows at most {limit})"
            ),
            part=_part(what),
            count=_count(value),
            limit=f"{MAX_ITERATIONS:,}",
        )
    return value


_PARTS = {
    "integrity check (MAC)": N_("integrity check (MAC)"),
    "encrypted part": N_("encrypted part"),
    "key": N_("key"),
}


def _part(what: str) -> Message:
    """The part of the keystore a message is about, as a message (its name, translated)."""
    return Message(_PARTS.get(what, what))


class _Budget:
    """The hashing one file asks (its counts times the blocks derived), refused above
    MAX_TOTAL_ITERATIONS before the derivation that would exceed it."""

    def __init__(self) -> None:
        self.left = MAX_TOTAL_ITERATIONS

    def take(self, work: int) -> None:
        if work > self.left:
            raise KeystoreUnreadable(
                "iterations",
                N_(
                    "the keystore asks an unreasonable iteration count in total "
                    "(mcn allows at most {limit} over a file)"
                ),
                limit=f"{MAX_TOTAL_ITERATIONS:,}",
            )
        self.left -= work


@dataclass(frozen=True)
class _Encryption:
    """A checked password-based encryption: every size known sane before any derivation."""

    scheme: str  # "pkcs12" (RFC 7292 appendix B) or "pbes2" (PBKDF2)
    cipher: str  # "3des", "rc2" or "aes"
    key_size: int
    iterations: int
    salt: bytes
    prf: str = "sha1"
    iv: bytes = b""

    @property
    def work(self) -> int:
        """The hashing its derivations cost: the count times the digest blocks derived."""
        if self.scheme == "pkcs12":  # SHA-1: the key, then the 8-byte IV
            return self.iterations * (-(-self.key_size // 20) + 1)
        return self.iterations * -(-self.key_size // hashlib.new(self.prf).digest_size)

    def decrypt(self, password: str, data: bytes) -> bytes:
        """The plain bytes; ValueError when the padding is wrong (a wrong password, mostly)."""
        if self.scheme == "pkcs12":
            key = pkcs12_kdf(password, self.salt, 1, self.iterations, self.key_size)
            iv = pkcs12_kdf(password, self.salt, 2, self.iterations, 8)
        else:
            key = hashlib.pbkdf2_hmac(self.prf, password.encode(), self.salt, self.iterations, self.key_size)
            iv = self.iv
        if self.cipher == "rc2":
            from mcn_cli.ehealth import rc2

            padded = rc2.decrypt_cbc(key, 8 * self.key_size, iv, data)
            unpadder = padding.PKCS7(64).unpadder()
            return unpadder.update(padded) + unpadder.finalize()
        if self.cipher == "3des":
            from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

            return _cbc_decrypt(TripleDES(key), iv, data)
        return _cbc_decrypt(algorithms.AES(key), iv, data)


def _cbc_decrypt(cipher: Any, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(cipher, modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(cipher.block_size).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _encryption(algorithm: Any, data: Any, what: str) -> _Encryption:
    """The encryption of ``data`` described by ``algorithm``, checked: a supported algorithm,
    an iteration count within bounds, whole cipher blocks, an IV and key of the cipher's sizes."""
    oid = algorithm["algorithm"].dotted
    if oid in _PKCS12_PBE:
        cipher, key_size = _PKCS12_PBE[oid]
        params = algorithm["parameters"]
        salt, iterations = params["salt"].native, params["iterations"].native
        encryption = _Encryption("pkcs12", cipher, key_size, _iterations(iterations, what), salt)
    elif oid == "1.2.840.113549.1.5.13":  # PBES2
        params = algorithm["parameters"]
        kdf = params["key_derivation_func"]
        if kdf["algorithm"].native != "pbkdf2":
            raise KeystoreUnreadable(
                "unsupported", N_("the {part} uses a key derivation other than PBKDF2"), part=_part(what)
            )
        kdf_params = kdf["parameters"]
        if kdf_params["salt"].name != "specified":
            raise KeystoreUnreadable("unsupported", N_("the {part} has no PBKDF2 salt"), part=_part(what))
        prf = kdf_params["prf"]["algorithm"].native
        scheme = params["encryption_scheme"]
        name = scheme["algorithm"].native
        if prf not in _HASHES or name not in _PBES2_CIPHERS:
            raise KeystoreUnreadable(
                "unsupported",
                N_("the {part} is encrypted with {cipher} and HMAC-{digest}, which mcn does not read"),
                part=_part(what),
                cipher=printable(str(name), 40),
                digest=printable(str(prf), 40),
            )
        cipher, key_size = _PBES2_CIPHERS[name]
        stated = kdf_params["key_length"].native
        if stated is not None and stated != key_size:
            raise KeystoreUnreadable(
                "malformed", N_("the {part} states a key length its cipher does not have"), part=_part(what)
            )
        iv = scheme["parameters"].native
        if not isinstance(iv, bytes) or len(iv) != _BLOCK_BYTES[cipher]:
            raise KeystoreUnreadable("malformed", N_("the {part} has no valid IV"), part=_part(what))
        iterations = _iterations(kdf_params["iteration_count"].native, what)
        salt = kdf_params["salt"].chosen.native
        encryption = _Encryption("pbes2", cipher, key_size, iterations, salt, prf, iv)
    else:
        raise KeystoreUnreadable(
            "unsupported",
            N_("the {part} is encrypted with an algorithm mcn does not read ({oid})"),
            part=_part(what),
            oid=printable(oid, 60),
        )
    if not isinstance(encryption.salt, bytes):
        raise KeystoreUnreadable("malformed", N_("the {part} has no valid salt"), part=_part(what))
    block = _BLOCK_BYTES[encryption.cipher]
    if not isinstance(data, bytes) or not data or len(data) % block:
        size = len(data) if isinstance(data, bytes) else 0
        raise KeystoreUnreadable(
            "malformed",
            N_("the {part} is not whole {block}-byte cipher blocks ({size} bytes)"),
            part=_part(what),
            block=block,
            size=f"{size:,}",
        )
    if encryption.cipher == "rc2" and len(data) > MAX_RC2_BYTES:
        raise KeystoreUnreadable(
            "size",
            N_("the {part} has over {size} KiB of RC2: not a keystore mcn reads"),
            part=_part(what),
            size=MAX_RC2_BYTES // 1024,
        )
    return encryption


def _octets(value: Any) -> bytes:
    """The bytes of a ContentInfo's data, however asn1crypto parsed it."""
    native = value.native
    return native if isinstance(native, bytes) else value.contents


def _attributes(bag: Any) -> tuple[str | None, bytes | None]:
    alias = key_id = None
    for attribute in bag["bag_attributes"]:
        kind = attribute["type"].native
        values = attribute["values"]
        if kind == "friendly_name" and len(values):
            alias = values[0].native
        elif kind == "local_key_id" and len(values):
            key_id = values[0].native
    if alias is not None and not isinstance(alias, str):
        raise ValueError("friendly name")
    if key_id is not None and not isinstance(key_id, bytes):
        raise ValueError("local key id")
    return alias, key_id


_NO_CERTIFICATE = N_("a certificate bag does not hold a readable X.509 certificate")


@dataclass
class _Bag:
    kind: str  # "key" (plain PKCS#8), "shrouded" (encrypted PKCS#8) or "certificate"
    alias: str | None
    key_id: bytes | None
    value: Any  # a key bag's PKCS#8 DER, a shrouded bag's ciphertext, a certificate bag's value
    encryption: _Encryption | None = None
    unconfirmed: bool = False  # from contents decrypted with a password no MAC confirmed


class _Reader:
    """One reading of one file: its password, its iteration budget, what it has seen."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.budget = _Budget()
        self.verified = False  # the MAC proved the password right
        self.bags: list[_Bag] = []
        self.keys = 0

    def add_bags(self, contents: bytes, *, unconfirmed: bool = False) -> None:
        """The bags of a SafeContents, each checked (its encryption too) but none decrypted;
        ``unconfirmed``: decrypted with a password no MAC confirmed (garbage means it is wrong)."""
        for bag in pkcs12.SafeContents.load(contents):
            if len(self.bags) >= MAX_BAGS:
                raise KeystoreUnreadable(
                    "size", N_("the keystore holds over {count} bags: not one mcn reads"), count=MAX_BAGS
                )
            bag_id = bag["bag_id"].native
            if bag_id not in ("key_bag", "pkcs8_shrouded_key_bag", "cert_bag"):
                continue
            alias, key_id = _attributes(bag)
            value = bag["bag_value"]
            if bag_id == "cert_bag":
                with _parsing(_NO_CERTIFICATE, wrong_password=unconfirmed):
                    if value["cert_id"].native == "x509":
                        self.bags.append(
                            _Bag("certificate", alias, key_id, value["cert_value"], unconfirmed=unconfirmed)
                        )
                continue
            self.keys += 1
            if self.keys > MAX_KEYS:
                raise KeystoreUnreadable(
                    "size", N_("the keystore holds over {count} keys: not one mcn reads"), count=MAX_KEYS
                )
            if bag_id == "key_bag":
                der = value.untag().dump()  # without the bag's [0] tag
                self.bags.append(_Bag("key", alias, key_id, der, unconfirmed=unconfirmed))
                continue
            encryption = _encryption(value["encryption_algorithm"], value["encrypted_data"].native, "key")
            self.budget.take(encryption.work)
            self.bags.append(_Bag("shrouded", alias, key_id, value["encrypted_data"].native, encryption))

    def decrypt(self, encryption: _Encryption, data: bytes, what: str) -> bytes:
        try:
            return encryption.decrypt(self.password, data)
        except ValueError:  # the padding: a wrong password, unless the MAC proved it right
            if self.verified:
                raise KeystoreUnreadable(
                    "malformed", N_("the {part} does not decrypt: the keystore is damaged"), part=_part(what)
                ) from None
            raise KeystoreError(N_("wrong password")) from None


def read(data: bytes, password: str) -> Keystore:
    """Every key with its certificate and chain; raises KeystoreError for a wrong password and
    KeystoreUnreadable for anything that is not a keystore mcn reads."""
    if len(data) > MAX_KEYSTORE_BYTES:
        raise _too_big()
    if not data:
        raise KeystoreUnreadable("empty", N_("the file is empty: not a keystore"))
    try:
        _bmp(password)
    except UnicodeError:
        raise KeystoreError(N_("wrong password (it is not valid text)")) from None
    reader = _Reader(password)
    with _parsing(N_("not a PKCS#12 keystore (the file does not parse as one)")):
        pfx = pkcs12.Pfx.load(data)
        auth_safe = pfx["auth_safe"]
        if auth_safe["content_type"].native != "data":
            raise KeystoreUnreadable(
                "unsupported", N_("the keystore is signed, not password-protected: not read")
            )
        content = _octets(auth_safe["content"])
        mac = _mac(pfx)
        if mac is not None:
            reader.budget.take(mac.iterations)  # one digest block
        encrypted: list[tuple[_Encryption, bytes]] = []
        for info in pkcs12.AuthenticatedSafe.load(content):
            kind = info["content_type"].native
            if kind == "data":
                reader.add_bags(_octets(info["content"]))
            elif kind == "encrypted_data":
                inner = info["content"]["encrypted_content_info"]
                blob = inner["encrypted_content"].native
                encryption = _encryption(inner["content_encryption_algorithm"], blob, "encrypted part")
                reader.budget.take(encryption.work)
                encrypted.append((encryption, blob))
    # Every count in sight is within bounds: only now the first derivation.
    if mac is not None:
        _check_mac(mac, content, password)
        reader.verified = True
    for encryption, blob in encrypted:
        plain = reader.decrypt(encryption, blob, "encrypted part")
        with _parsing(N_("the encrypted part does not parse"), wrong_password=not reader.verified):
            reader.add_bags(plain, unconfirmed=not reader.verified)
    return _entries(reader)


def _entries(reader: _Reader) -> Keystore:
    keys_found: list[tuple[str | None, bytes | None, Any]] = []
    certificates: list[tuple[str | None, bytes | None, x509.Certificate]] = []
    for bag in reader.bags:
        if bag.kind == "certificate":
            with _parsing(_NO_CERTIFICATE, wrong_password=bag.unconfirmed):
                certificates.append((bag.alias, bag.key_id, _certificate(bag.value)))
            continue
        der = bag.value
        if bag.encryption is not None:
            der = reader.decrypt(bag.encryption, der, "key")
        unconfirmed = bag.unconfirmed or (bag.encryption is not None and not reader.verified)
        with _parsing(N_("a key bag does not hold a readable private key"), wrong_password=unconfirmed):
            keys_found.append((bag.alias, bag.key_id, _private_key(der)))
    by_id: dict[bytes, x509.Certificate] = {}
    for _, key_id, certificate in certificates:
        if key_id is not None:
            by_id.setdefault(key_id, certificate)
    by_public_key: dict[bytes, x509.Certificate] | None = None
    entries = []
    for alias, key_id, key in keys_found:
        own = by_id.get(key_id) if key_id is not None else None
        if own is not None and _spki(own) != _spki_of_key(key):
            own = None  # a localKeyId is only a hint: the certificate must certify this very key
        if own is None:
            if by_public_key is None:
                by_public_key = {}
                for _, _, certificate in certificates:
                    spki = _spki(certificate)
                    if spki is not None:
                        by_public_key.setdefault(spki, certificate)
            own = by_public_key.get(_spki_of_key(key))
        chain = _chain(own, [c for _, _, c in certificates])
        entries.append(KeyEntry(alias or "", key, own, chain))
    return Keystore(entries)


def _certificate(value: Any) -> x509.Certificate:
    certificate = x509.load_der_x509_certificate(value.parsed.dump())
    # parsed now, while a failure still says which bag: the callers read them all
    _ = certificate.subject, certificate.issuer, certificate.extensions, certificate.public_key()
    return certificate


def _private_key(der: bytes) -> Any:
    """The PKCS#8 key, its type and size checked before OpenSSL checks (and pays for) the rest."""
    info = keys.PrivateKeyInfo.load(der)
    algorithm = info["private_key_algorithm"]["algorithm"].native
    if algorithm in ("rsa", "rsassa_pss"):
        numbers = info["private_key"].parsed
        if numbers["other_prime_infos"].native:
            raise KeystoreUnreadable("unsupported", N_("a key is a multi-prime RSA key: not read"))
        for name in ("modulus", "public_exponent", "private_exponent", "prime1", "prime2",
                     "exponent1", "exponent2", "coefficient"):  # fmt: skip
            if numbers[name].native.bit_length() > MAX_RSA_BITS:
                raise KeystoreUnreadable(
                    "key-size", N_("a key is RSA over {bits} bits: not one mcn reads"), bits=MAX_RSA_BITS
                )
        # OpenSSL tests both primes when it loads the key: a lopsided pair (a 4094-bit prime and
        # q=3) costs seconds a key. A real key's primes are each about half the modulus.
        half = (numbers["modulus"].native.bit_length() + 1) // 2
        for name in ("prime1", "prime2"):
            if abs(numbers[name].native.bit_length() - half) > 8:
                raise KeystoreUnreadable(
                    "malformed", N_("a key is RSA with unbalanced primes: not a real key")
                )
    elif algorithm == "ec":
        if info["private_key_algorithm"]["parameters"].name != "named":
            raise KeystoreUnreadable("unsupported", N_("a key is EC on explicit curve parameters: not read"))
    else:
        raise KeystoreUnreadable(
            "unsupported",
            N_("a key is of type {kind}: mcn reads RSA and EC keys"),
            kind=printable(str(algorithm), 40),
        )
    return serialization.load_der_private_key(der, password=None)


def _spki(certificate: x509.Certificate) -> bytes | None:
    try:
        return _spki_of_key(certificate)
    except _PARSE_ERRORS:
        return None


def _spki_of_key(holder: Any) -> bytes:
    return holder.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _chain(certificate: x509.Certificate | None, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    """Issuer after issuer from ``pool`` (the first of each subject, in the file's order)."""
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for candidate in pool:
        if candidate is not certificate:
            by_subject.setdefault(candidate.subject, []).append(candidate)
    chain: list[x509.Certificate] = []
    seen: set[x509.Certificate] = set()
    current = certificate
    while current is not None and current.issuer != current.subject:
        issuer = next((c for c in by_subject.get(current.issuer, ()) if c not in seen), None)
        if issuer is None:
            break
        chain.append(issuer)
        seen.add(issuer)
        current = issuer
    return chain


@dataclass(frozen=True)
class _Mac:
    digest: str
    salt: bytes
    iterations: int
    expected: bytes


def _mac(pfx: Any) -> _Mac | None:
    """The MAC the file states, checked (digest, sizes, iteration count) but not computed."""
    mac_data = pfx["mac_data"]
    if mac_data.native is None:
        return None
    name = mac_data["mac"]["digest_algorithm"]["algorithm"].native
    if name not in _HASHES:
        raise KeystoreUnreadable(
            "unsupported",
            N_("the keystore's MAC uses {digest}, which mcn does not read"),
            digest=printable(str(name), 40),
        )
    salt = mac_data["mac_salt"].native
    expected = mac_data["mac"]["digest"].native
    if not isinstance(salt, bytes) or not isinstance(expected, bytes):
        raise KeystoreUnreadable("malformed", N_("the keystore's MAC has no salt or no value"))
    if len(expected) != hashlib.new(name).digest_size:
        raise KeystoreUnreadable("malformed", N_("the keystore's MAC value has the wrong size"))
    return _Mac(name, salt, _iterations(mac_data["iterations"].native, "integrity check (MAC)"), expected)


def _check_mac(mac: _Mac, content: bytes, password: str) -> None:
    size = hashlib.new(mac.digest).digest_size
    key = pkcs12_kdf(password, mac.salt, 3, mac.iterations, size, mac.digest)
    if not hmac.compare_digest(hmac.new(key, content, mac.digest).digest(), mac.expected):
        raise KeystoreError(N_("wrong password (or the keystore was changed)"))


# --- writing -----------------------------------------------------------------------------------


def _pbes2(password: str) -> tuple[Any, bytes, bytes]:
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS, 32)
    algorithm = algos.EncryptionAlgorithm(
        {
            "algorithm": "pbes2",
            "parameters": {
                "key_derivation_func": {
                    "algorithm": "pbkdf2",
                    "parameters": {
                        "salt": algos.Pbkdf2Salt(name="specified", value=core.OctetString(salt)),
                        "iteration_count": ITERATIONS,
                        "prf": {"algorithm": "sha256"},
                    },
                },
                "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
            },
        }
    )
    return algorithm, key, iv


def _encrypt(plain: bytes, password: str) -> tuple[Any, bytes]:
    algorithm, key, iv = _pbes2(password)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return algorithm, encryptor.update(padded) + encryptor.finalize()


def _bag_attributes(alias: str | None, key_id: bytes | None) -> Any:
    attributes = []
    if alias:
        attributes.append({"type": "friendly_name", "values": [alias]})
    if key_id:
        attributes.append({"type": "local_key_id", "values": [key_id]})
    return attributes


def write(keystore: Keystore, password: str) -> bytes:
    """A PKCS#12 keystore of every entry (each key with its certificate and chain)."""
    key_bags, cert_bags = [], []
    seen: set[bytes] = set()
    for entry in keystore.entries:
        key_id = hashlib.sha1(
            entry.private_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).digest()
        plain = entry.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        algorithm, encrypted = _encrypt(plain, password)
        key_bags.append(
            {
                "bag_id": "pkcs8_shrouded_key_bag",
                "bag_value": keys.EncryptedPrivateKeyInfo(
                    {"encryption_algorithm": algorithm, "encrypted_data": encrypted}
                ),
                "bag_attributes": _bag_attributes(entry.alias, key_id),
            }
        )
        owned = [(entry.certificate, entry.alias, key_id)] if entry.certificate is not None else []
        for certificate, alias, own_id in owned + [(c, None, None) for c in entry.chain]:
            der = certificate.public_bytes(serialization.Encoding.DER)
            if own_id is None and der in seen:
                continue
            seen.add(der)
            cert_bags.append(
                {
                    "bag_id": "cert_bag",
                    "bag_value": {"cert_id": "x509", "cert_value": core.ParsableOctetString(der)},
                    "bag_attributes": _bag_attributes(alias, own_id),
                }
            )
    certificates_plain = pkcs12.SafeContents(cert_bags).dump()
    algorithm, encrypted = _encrypt(certificates_plain, password)
    encrypted_data = cms.EncryptedData(
        {
            "version": "v0",
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": algorithm,
                "encrypted_content": encrypted,
            },
        }
    )
    safe = pkcs12.AuthenticatedSafe(
        [
            {"content_type": "encrypted_data", "content": encrypted_data},
            {"content_type": "data", "content": core.OctetString(pkcs12.SafeContents(key_bags).dump())},
        ]
    ).dump()
    salt = secrets.token_bytes(16)
    mac_key = pkcs12_kdf(password, salt, 3, MAC_ITERATIONS, 32, "sha256")
    digest = hmac.new(mac_key, safe, "sha256").digest()
    pfx = pkcs12.Pfx(
        {
            "version": "v3",
            "auth_safe": {"content_type": "data", "content": core.OctetString(safe)},
            "mac_data": {
                "mac": {"digest_algorithm": {"algorithm": "sha256"}, "digest": digest},
                "mac_salt": salt,
                "iterations": MAC_ITERATIONS,
            },
        }
    )
    return pfx.dump()
