"""PKCS#12 keystores as eHealth uses them: several keys, each under its alias.

eHealth's keystores hold the authentication key (alias ``authentication``) with its chain and
each encryption key under its certificate's serial number in decimal. Reading accepts what
eHealth's tools write (3DES / RC2 legacy encryption, SHA-1 MAC) and what OpenSSL 3 writes
(PBES2); writing uses PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256 and a SHA-256 MAC, which
OpenSSL 3 opens without ``-legacy``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import algos, cms, core, keys, pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ITERATIONS = 20_000  # PBKDF2 rounds per bag: OpenSSL 3 uses 2048; more slows guessing
MAC_ITERATIONS = 2048


class KeystoreError(Exception):
    """Wrong password, or not a PKCS#12 keystore we can read."""


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


# --- the PKCS#12 key derivation (RFC 7292, appendix B) ------------------------------------------


def _bmp(password: str) -> bytes:
    return password.encode("utf-16-be") + b"\x00\x00" if password else b""


def pkcs12_kdf(
    password: str, salt: bytes, purpose: int, iterations: int, size: int, name: str = "sha1"
) -> bytes:
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
    while len(out) < size:
        a = hashlib.new(name, d + bytes(i)).digest()
        for _ in range(iterations - 1):
            a = hashlib.new(name, a).digest()
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


def _cbc_decrypt(cipher: Any, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(cipher, modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(cipher.block_size).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _decrypt(algorithm: Any, data: bytes, password: str) -> bytes:
    oid = algorithm["algorithm"].dotted
    try:
        if oid in _PKCS12_PBE:
            kind, size = _PKCS12_PBE[oid]
            params = algorithm["parameters"]
            salt, iterations = params["salt"].native, params["iterations"].native
            key = pkcs12_kdf(password, salt, 1, iterations, size)
            iv = pkcs12_kdf(password, salt, 2, iterations, 8)
            if kind == "3des":
                from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

                return _cbc_decrypt(TripleDES(key), iv, data)
            from mcn_cli.ehealth import rc2

            padded = rc2.decrypt_cbc(key, 8 * size, iv, data)
            unpadder = padding.PKCS7(64).unpadder()
            return unpadder.update(padded) + unpadder.finalize()
        if oid == "1.2.840.113549.1.5.13":  # PBES2
            scheme = algorithm
            key = hashlib.pbkdf2_hmac(
                scheme.kdf_hmac, password.encode(), scheme.kdf_salt, scheme.kdf_iterations, scheme.key_length
            )
            cipher_name = scheme.encryption_cipher
            if cipher_name == "aes":
                return _cbc_decrypt(algorithms.AES(key), scheme.encryption_iv, data)
            if cipher_name == "tripledes":
                from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

                return _cbc_decrypt(TripleDES(key), scheme.encryption_iv, data)
    except ValueError:
        raise KeystoreError("wrong password") from None
    raise KeystoreError(f"unsupported PKCS#12 encryption {oid}")


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
    return alias, key_id


def read(data: bytes, password: str) -> Keystore:
    """Every key with its certificate and chain; raises KeystoreError for a wrong password."""
    try:
        pfx = pkcs12.Pfx.load(data)
        content = _octets(pfx["auth_safe"]["content"])
    except (ValueError, TypeError, KeyError) as error:
        raise KeystoreError(f"not a PKCS#12 keystore ({error})") from None
    _check_mac(pfx, content, password)
    safe = pkcs12.AuthenticatedSafe.load(content)
    bags: list[Any] = []
    for info in safe:
        kind = info["content_type"].native
        if kind == "data":
            bags.extend(pkcs12.SafeContents.load(_octets(info["content"])))
        elif kind == "encrypted_data":
            encrypted = info["content"]["encrypted_content_info"]
            plain = _decrypt(
                encrypted["content_encryption_algorithm"], encrypted["encrypted_content"].native, password
            )
            bags.extend(pkcs12.SafeContents.load(plain))
    keys_found: list[tuple[str | None, bytes | None, Any]] = []
    certificates: list[tuple[str | None, bytes | None, x509.Certificate]] = []
    for bag in bags:
        bag_id = bag["bag_id"].native
        alias, key_id = _attributes(bag)
        if bag_id == "pkcs8_shrouded_key_bag":
            info = bag["bag_value"]
            plain = _decrypt(info["encryption_algorithm"], info["encrypted_data"].native, password)
            key = serialization.load_der_private_key(plain, password=None)
            keys_found.append((alias, key_id, key))
        elif bag_id == "key_bag":
            key = serialization.load_der_private_key(bag["bag_value"].dump(), password=None)
            keys_found.append((alias, key_id, key))
        elif bag_id == "cert_bag" and bag["bag_value"]["cert_id"].native == "x509":
            der = bag["bag_value"]["cert_value"].parsed.dump()
            certificates.append((alias, key_id, x509.load_der_x509_certificate(der)))
    entries = []
    for alias, key_id, key in keys_found:
        own = next((c for a, k, c in certificates if key_id is not None and k == key_id), None)
        if own is None:
            public = key.public_key().public_numbers()
            own = next((c for _, _, c in certificates if c.public_key().public_numbers() == public), None)
        chain = _chain(own, [c for _, _, c in certificates if c is not own])
        entries.append(KeyEntry(alias or "", key, own, chain))
    return Keystore(entries)


def _chain(certificate: x509.Certificate | None, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    chain: list[x509.Certificate] = []
    current = certificate
    while current is not None and current.issuer != current.subject:
        issuer = next((c for c in pool if c.subject == current.issuer and c not in chain), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return chain


def _check_mac(pfx: Any, content: bytes, password: str) -> None:
    mac_data = pfx["mac_data"]
    if mac_data.native is None:
        return
    name = mac_data["mac"]["digest_algorithm"]["algorithm"].native
    salt = mac_data["mac_salt"].native
    iterations = mac_data["iterations"].native or 1
    size = hashlib.new(name).digest_size
    key = pkcs12_kdf(password, salt, 3, iterations, size, name)
    expected = mac_data["mac"]["digest"].native
    if not hmac.compare_digest(hmac.new(key, content, name).digest(), expected):
        raise KeystoreError("wrong password (or the keystore was changed)")


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
