"""eHealth sessions, sealed in the local database: the STS token and the holder-of-key key.

A session lasts until the token's NotOnOrAfter and never more than 12 hours; several named
sessions may live side by side, each for one user. Sessions belong to the workstation: with the
shared PostgreSQL store they stay in its SQLite file (``db.local``), so that a consultation can
still be signed while the server is down.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mcn_cli.domain.errors import AuthenticationNeeded
from mcn_cli.domain.messages import N_, Message
from mcn_cli.store.db import Store
from mcn_cli.store.vault import Vault

DEFAULT = "default"


@dataclass(frozen=True)
class Session:
    name: str
    kind: str  # "pharmacy" or "ot" (tarification office)
    env: str
    user_niss: str
    user_name: str
    organisation: str  # the pharmacy's (or the office's) NIHII
    holder_nihii11: str | None
    issued: str  # ISO 8601, UTC
    expires: str
    token: str  # the SAML assertion, base64
    hok_key: str  # the holder-of-key private key, PKCS#8 DER, base64
    hok_certificate: str  # DER, base64
    holder_niss: str | None = None  # the pharmacy holder's NISS, as eHealth certified it

    @property
    def expires_at(self) -> datetime:
        return datetime.fromisoformat(self.expires)

    def time_left(self, now: datetime | None = None) -> float:
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()

    def token_xml(self) -> bytes:
        return base64.b64decode(self.token)


def _what(name: str) -> Message:
    return Message(N_("session {name}"), {"name": name})


def _aad(name: str, expires: str) -> bytes:
    return f"session|{name}|{expires}".encode()


def save(db: Store, vault: Vault, session: Session) -> None:
    """Sealed under the write lock with the current key: a rekey meanwhile cannot strand it."""
    from mcn_cli.store.vault import current

    db = db.local
    with db.write() as c:
        vault = current(db, vault)
        sealed = vault.seal(json.dumps(asdict(session)).encode(), _aad(session.name, session.expires))
        c.execute(
            "INSERT OR REPLACE INTO sessions (name, expires_at, sealed) VALUES (?, ?, ?)",
            (session.name, session.expires, sealed),
        )


def _open(vault: Vault, name: str, expires: str, sealed: bytes) -> Session:
    data = json.loads(vault.open(bytes(sealed), _aad(name, expires), _what(name)))
    return Session(**data)


def drop_expired(db: Store, now: datetime | None = None) -> int:
    """Delete expired sessions (their token and key); writes only when there is one."""
    db = db.local
    now_text = (now or datetime.now(UTC)).isoformat()
    if (
        db.connection.execute("SELECT 1 FROM sessions WHERE expires_at <= ? LIMIT 1", (now_text,)).fetchone()
        is None
    ):
        return 0
    with db.write() as c:
        return c.execute("DELETE FROM sessions WHERE expires_at <= ?", (now_text,)).rowcount


def find(db: Store, vault: Vault, name: str) -> Session | None:
    """The session ``name`` while it is valid; an expired one is deleted and None returned."""
    db = db.local
    drop_expired(db)
    row = db.connection.execute("SELECT expires_at, sealed FROM sessions WHERE name = ?", (name,)).fetchone()
    return None if row is None else _open(vault, name, row[0], row[1])


def require(db: Store, vault: Vault, name: str) -> Session:
    session = find(db, vault, name)
    if session is None:
        if name == DEFAULT:
            raise AuthenticationNeeded(N_("no valid eHealth session: log in first"), hint=N_("mcn login"))
        raise AuthenticationNeeded(
            N_("no valid eHealth session {name!r}: log in first"),
            hint=N_("mcn login --session {name}"),
            name=name,
        )
    return session


def all_sessions(db: Store, vault: Vault) -> list[Session]:
    db = db.local
    drop_expired(db)
    rows = db.connection.execute("SELECT name, expires_at, sealed FROM sessions ORDER BY name").fetchall()
    return [_open(vault, *row) for row in rows]


def delete(db: Store, name: str | None = None) -> int:
    with db.local.write() as c:
        if name is None:
            return c.execute("DELETE FROM sessions").rowcount
        return c.execute("DELETE FROM sessions WHERE name = ?", (name,)).rowcount


def reencrypt(db: Store, old: Vault, new: Vault) -> int:
    """Re-seal every session under ``new`` (inside the rekey transaction)."""
    c = db.local.connection
    rows = c.execute("SELECT name, expires_at, sealed FROM sessions").fetchall()
    for name, expires, sealed in rows:
        plain = old.open(bytes(sealed), _aad(name, expires), _what(name))
        c.execute(
            "UPDATE sessions SET sealed = ? WHERE name = ?", (new.seal(plain, _aad(name, expires)), name)
        )
    return len(rows)


def resync(db: Store, old: Vault | None, new: Vault) -> int:
    """After a rekey made elsewhere: re-seal under ``new`` the sessions still sealed under
    ``old``; those neither key opens are deleted (log in again). Returns how many were deleted."""
    from mcn_cli.domain.errors import DataIntegrity

    local = db.local
    dropped = 0
    with local.write() as c:
        for name, expires, sealed in c.execute("SELECT name, expires_at, sealed FROM sessions").fetchall():
            try:
                new.open(bytes(sealed), _aad(name, expires))
                continue
            except DataIntegrity:
                pass
            try:
                if old is None:
                    raise DataIntegrity(N_("no key from before the rekey"))
                plain = old.open(bytes(sealed), _aad(name, expires))
            except DataIntegrity:
                c.execute("DELETE FROM sessions WHERE name = ?", (name,))
                dropped += 1
                continue
            c.execute(
                "UPDATE sessions SET sealed = ? WHERE name = ?", (new.seal(plain, _aad(name, expires)), name)
            )
    return dropped
