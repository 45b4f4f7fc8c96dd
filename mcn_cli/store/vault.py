"""The vault: the keys that keep personal data unreadable on disk.

Two keys live wrapped (AES-256-GCM) in the database's ``meta`` table:

- the data key encrypts every record and every pharmacist's NISS (AES-256-GCM, a fresh nonce
  per record, associated data binding each record to its row);
- the pseudonym key makes keyed hashes (HMAC-SHA256) of patient identifiers, so that finding a
  patient's commitments decrypts nothing else, and MACs the audit chain.

They are wrapped by a key-encryption key that is either a random key in a key file (owner-only,
mode 0600) or derived with scrypt from a passphrase. ``rekey`` draws a new data key and
re-encrypts everything under it; the pseudonym key stays, so the audit trail's pseudonyms and
chain remain comparable across rekeys. A vault remembers the wrapped keys it was unlocked from:
``current``, called under the database's write lock before sealing, notices a rekey that
committed since and unlocks the new keys (or refuses), so nothing is sealed under a discarded key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mcn_cli.domain.errors import AuthenticationNeeded, DataIntegrity, InvalidInput, KeyLost
from mcn_cli.domain.messages import N_, Message
from mcn_cli.store import paths
from mcn_cli.store.db import Store
from mcn_cli.store.secure_files import write_private

KEY_BYTES = 32
NONCE_BYTES = 12
_WRAP_AAD = b"mcn-vault-keys-v1"
_KEY_FILE_PREFIX = "mcn-vault-key-v1:"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
PASSPHRASE_ENV = "MCN_CACHE_PASSPHRASE"
NEW_PASSPHRASE_ENV = "MCN_CACHE_NEW_PASSPHRASE"
KEY_FILE_ENV = "MCN_CACHE_KEY_FILE"
MIN_PASSPHRASE = 12

Passphrase = Callable[[bool], str]  # confirm? -> passphrase

# What a sealed blob is, for the message when it fails its check.
RECORD = Message(N_("record"))
PHARMACIST_RECORD = Message(N_("pharmacist record"))


def record_name(record_id: str) -> Message:
    return Message(N_("cache record {id}"), {"id": record_id})


def key_file() -> Path:
    override = os.environ.get(KEY_FILE_ENV)
    return Path(override).expanduser() if override else paths.data_dir() / "vault.key"


def _aesgcm(key: bytes):  # noqa: ANN202 - the cryptography class, imported lazily
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


@dataclass(frozen=True)
class Vault:
    """Unlocked keys."""

    data_key: bytes
    pseudonym_key: bytes
    # the wrapped-keys blob this vault was unlocked from: its generation (see ``current``)
    wrapped: bytes = field(default=b"", compare=False, repr=False)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + _aesgcm(self.data_key).encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes, what: Message = RECORD) -> bytes:
        try:
            return _aesgcm(self.data_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except (_invalid_tag(), ValueError):
            raise DataIntegrity(
                N_("{what} fails its integrity check: tampered with, or not ours"), what=what
            ) from None

    def pseudonym(self, kind: str, value: str) -> str:
        return hmac.new(self.pseudonym_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def mac(self, message: bytes) -> str:
        return hmac.new(self.pseudonym_key, b"audit:" + message, hashlib.sha256).hexdigest()


# --- key-encryption keys -------------------------------------------------------------------


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        passphrase.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * 1024 * 1024, dklen=KEY_BYTES
    )


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DataIntegrity(
            N_("key file {path} is readable by others (mode {mode}): run chmod 600 {path}"),
            path=path,
            mode=f"{stat.S_IMODE(mode):04o}",
        )


def read_key_file(path: Path) -> bytes:
    try:
        _check_private(path)
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyLost(N_("key file {path} is missing: restore it from your backup"), path=path) from None
    except (UnicodeDecodeError, OSError) as error:
        raise KeyLost(N_("key file {path} is unreadable: {error}"), path=path, error=str(error)) from None
    try:
        key = base64.b64decode(text.removeprefix(_KEY_FILE_PREFIX), validate=True)
    except ValueError:
        key = b""
    if not text.startswith(_KEY_FILE_PREFIX) or len(key) != KEY_BYTES:
        raise KeyLost(N_("key file {path} is not an mcn vault key"), path=path)
    return key


def write_key_file(path: Path, key: bytes, *, replace: bool = False) -> None:
    """Write the key file atomically, owner-only; without ``replace`` never overwrite one."""
    text = _KEY_FILE_PREFIX + base64.b64encode(key).decode() + "\n"
    write_private(path, text.encode("ascii"), replace=replace)


@dataclass(frozen=True)
class Protection:
    """How the key-encryption key is obtained, as recorded in the database."""

    kind: str  # "file" or "passphrase"
    salt: bytes = b""
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "salt": self.salt.hex(), "n": self.n, "r": self.r, "p": self.p})

    @classmethod
    def from_json(cls, text: str) -> Protection:
        data = json.loads(text)
        return cls(data["kind"], bytes.fromhex(data["salt"]), data["n"], data["r"], data["p"])


def passphrase_from(env: str, prompt: str) -> Passphrase:
    """A passphrase from the environment variable ``env``, else a hidden prompt on a terminal."""

    def get(confirm: bool) -> str:
        value = os.environ.get(env)
        if value:
            return value
        import sys

        if not sys.stdin.isatty():
            raise AuthenticationNeeded(
                N_("the cache passphrase is needed: set {env} or run in a terminal"), env=env
            )
        import getpass

        first = getpass.getpass(prompt)
        if confirm and getpass.getpass("Again: ") != first:
            raise InvalidInput("passphrase", "mismatch", N_("the two passphrases differ"))
        return first

    return get


env_passphrase = passphrase_from(PASSPHRASE_ENV, "Cache passphrase: ")
new_env_passphrase = passphrase_from(NEW_PASSPHRASE_ENV, "New cache passphrase: ")


def _kek(protection: Protection, passphrase: Passphrase, *, creating: bool) -> bytes:
    if protection.kind == "file":
        return read_key_file(key_file())
    phrase = passphrase(creating)
    if creating and len(phrase) < MIN_PASSPHRASE:
        raise InvalidInput(
            "passphrase", "length", N_("must have at least {count} characters"), count=MIN_PASSPHRASE
        )
    return _scrypt(phrase, protection.salt, protection.n, protection.r, protection.p)


def _wrap(kek: bytes, vault: Vault) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + _aesgcm(kek).encrypt(nonce, vault.data_key + vault.pseudonym_key, _WRAP_AAD)


def _unwrap(kek: bytes, blob: bytes) -> Vault:
    try:
        keys = _aesgcm(kek).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _WRAP_AAD)
    except (_invalid_tag(), ValueError):
        raise KeyLost(N_("wrong cache key or passphrase: the vault cannot be opened"), wrong=True) from None
    return Vault(keys[:KEY_BYTES], keys[KEY_BYTES:], blob)


def _meta(db: Store, name: str) -> bytes | None:
    row = db.connection.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else bytes(row[0])


def _new_protection(use_passphrase: bool) -> Protection:
    return Protection("passphrase", secrets.token_bytes(16)) if use_passphrase else Protection("file")


def _store_wrapped(db: Store, protection: Protection, kek: bytes, vault: Vault) -> bytes:
    blob = _wrap(kek, vault)
    put_keys(db, protection.to_json().encode(), blob)
    return blob


def put_keys(db: Store, protection: bytes, blob: bytes) -> None:
    """Record the protection and the wrapped keys (inside the caller's write transaction)."""
    db.connection.execute(
        "INSERT INTO meta (name, value) VALUES ('protection', ?), ('wrapped_keys', ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (protection, blob),
    )


def stored_keys(db: Store) -> tuple[bytes, bytes] | None:
    """The protection and the wrapped keys as the database holds them (None: no vault yet)."""
    protection, blob = _meta(db, "protection"), _meta(db, "wrapped_keys")
    return None if protection is None or blob is None else (protection, blob)


def is_initialised(db: Store) -> bool:
    return _meta(db, "wrapped_keys") is not None


def protection_of(db: Store) -> Protection | None:
    raw = _meta(db, "protection")
    return None if raw is None else Protection.from_json(raw.decode())


def initialise(db: Store, *, use_passphrase: bool, passphrase: Passphrase = env_passphrase) -> Vault:
    """Create the vault: a new data key and pseudonym key, protected as asked."""
    if db.kind == "postgresql":  # new shared keys would strand this workstation's own data
        from mcn_cli.store import spool

        spool.guard(db)
    protection = _new_protection(use_passphrase)
    if protection.kind == "file":
        path = key_file()
        if path.exists():
            kek = read_key_file(path)
        else:
            kek = secrets.token_bytes(KEY_BYTES)
            try:
                write_key_file(path, kek)
            except FileExistsError:  # another process made it meanwhile
                kek = read_key_file(path)
    else:
        kek = _kek(protection, passphrase, creating=True)
    vault = Vault(secrets.token_bytes(KEY_BYTES), secrets.token_bytes(KEY_BYTES))
    with db.write():
        if is_initialised(db):
            raise InvalidInput(
                "cache", "initialised", N_("the cache is already initialised (use mcn cache rekey)")
            )
        blob = _store_wrapped(db, protection, kek, vault)
    return Vault(vault.data_key, vault.pseudonym_key, blob)


def unlock(db: Store, *, passphrase: Passphrase = env_passphrase, create: bool = True) -> Vault:
    """Open the vault; on first use (nothing stored yet) create one with a key file."""
    blob = _meta(db, "wrapped_keys")
    if blob is None:
        if not create:
            raise InvalidInput(
                "cache", "not-initialised", N_("the cache is not initialised: run mcn cache init")
            )
        try:
            return _kept(db, initialise(db, use_passphrase=False))
        except InvalidInput:  # initialised by another process meanwhile (else: refused)
            blob = _meta(db, "wrapped_keys")
            if blob is None:
                raise
    protection = protection_of(db)
    assert protection is not None
    pending = key_file().with_name(key_file().name + ".new")
    try:
        vault = _unwrap(_kek(protection, passphrase, creating=False), blob)
    except DataIntegrity:
        if protection.kind == "file" and pending.exists():  # a rekey stopped before its last step
            vault = _unwrap(read_key_file(pending), blob)
            try:
                os.replace(pending, key_file())
            except FileNotFoundError:  # the rekeying process moved it meanwhile
                pass
        else:
            raise
    return _kept(db, vault)


def _kept(db: Store, vault: Vault) -> Vault:
    """On the shared store, this workstation keeps a copy of the wrapped keys (to work while the
    server is down)."""
    if db.kind == "postgresql":
        from mcn_cli.store import spool

        spool.mirror(db, vault)
    return vault


class KeyChanged(DataIntegrity):
    """The cache was rekeyed since this vault was unlocked, and the new key cannot be opened here."""


def current(db: Store, vault: Vault, *, passphrase: Passphrase = env_passphrase) -> Vault:
    """The vault to seal with now; call inside a write transaction (which excludes a rekey).

    A rekey that committed since ``vault`` was unlocked discarded its data key: whatever this
    process would seal with it could never be read again. The keys are then unlocked anew
    (a key file, or the passphrase from the environment); when that is impossible ``KeyChanged``
    is raised, so nothing is sealed under a discarded key.
    """
    if not vault.wrapped:
        return vault
    blob = _meta(db, "wrapped_keys")
    if blob == vault.wrapped:
        return vault
    try:
        fresh = unlock(db, passphrase=passphrase, create=False)
    except (DataIntegrity, AuthenticationNeeded, InvalidInput):
        fresh = None
    if fresh is None or fresh.pseudonym_key != vault.pseudonym_key:
        raise KeyChanged(
            N_("the cache was rekeyed while this command ran and its new key cannot be opened here: "
               "nothing was sealed under the discarded key; run the command again")
        )
    return fresh


def rekey(
    db: Store,
    reencrypt: Callable[[Vault, Vault], None],
    *,
    use_passphrase: bool,
    passphrase: Passphrase = env_passphrase,
    new_passphrase: Passphrase = new_env_passphrase,
) -> None:
    """Draw a new data key and key-encryption key; ``reencrypt(old, new)`` runs in the same
    transaction. A new key file is written beside the old one and takes its place after commit."""
    old = unlock(db, passphrase=passphrase, create=False)
    protection = _new_protection(use_passphrase)
    pending: Path | None = None
    if protection.kind == "file":
        kek = secrets.token_bytes(KEY_BYTES)
        pending = key_file().with_name(key_file().name + ".new")
        write_key_file(pending, kek, replace=True)
    else:
        kek = _kek(protection, new_passphrase, creating=True)
    new = Vault(secrets.token_bytes(KEY_BYTES), old.pseudonym_key)
    try:
        with db.write():
            reencrypt(old, new)
            _store_wrapped(db, protection, kek, new)
    except BaseException:
        if pending is not None:
            pending.unlink(missing_ok=True)
        raise
    if pending is not None:
        try:
            os.replace(pending, key_file())
        except FileNotFoundError:  # a process that unlocked meanwhile already moved it in place
            pass
    elif key_file().exists():
        key_file().unlink()  # the passphrase replaces the key file: do not leave a useless secret
