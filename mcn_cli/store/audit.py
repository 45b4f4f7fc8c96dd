"""The audit trail: append-only, tamper-evident, for the insurers' finality checks (brochure 7.3).

Each entry says when, who (the session user's NISS as a keyed pseudonym, the pharmacy NIHII),
which patient (keyed pseudonym only), why (the dispensing date, or an OT rejection reference)
and the outcome. Entries form a chain: each MAC covers the entry and the previous MAC, so an
edited, deleted or reordered entry breaks the chain from that point on.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from mcn_cli.domain.errors import DataIntegrity
from mcn_cli.store.vault import Vault

GENESIS = "0" * 64


class Event:
    """The kinds of audit entries (stable strings)."""

    CONSULTATION = "consultation"
    OT_CONSULTATION = "ot-consultation"
    REUSE = "reuse"
    INVOICED = "invoiced"
    SETTLED = "settled"


@dataclass(frozen=True)
class Actor:
    """Who acts: the session's user and pharmacy (unknown outside a session)."""

    user_niss: str | None = None
    pharmacy: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    event: str
    outcome: str
    pharmacy: str | None = None
    actor: str | None = None
    patient: str | None = None
    dispensed: str | None = None
    rejection: str | None = None
    record: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True, separators=(",", ":"))

    @property
    def month(self) -> str:
        return self.at[:7]


def _chain_mac(vault: Vault, previous: str, entry_json: str) -> str:
    return vault.mac(f"{previous}\n{entry_json}".encode())


def actor_key(vault: Vault, connection: sqlite3.Connection, user_niss: str) -> str:
    """The user's pseudonym; the NISS itself is kept sealed so a report can name the pharmacist."""
    key = vault.pseudonym("user", user_niss)
    connection.execute(
        "INSERT OR IGNORE INTO actors (key, sealed) VALUES (?, ?)",
        (key, vault.seal(user_niss.encode(), f"actor|{key}".encode())),
    )
    return key


def append(
    vault: Vault,
    connection: sqlite3.Connection,
    event: str,
    outcome: str,
    *,
    actor: Actor | None = None,
    patient: str | None = None,
    dispensed: date | None = None,
    rejection: str | None = None,
    record: str | None = None,
    at: datetime | None = None,
    **extra: Any,
) -> AuditEntry:
    """Append one entry; call inside the caller's write transaction."""
    last = connection.execute("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, previous = (1, GENESIS) if last is None else (last[0] + 1, last[1])
    actor = actor or Actor()
    entry = AuditEntry(
        seq=seq,
        at=(at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
        event=event,
        outcome=outcome,
        pharmacy=actor.pharmacy,
        actor=actor_key(vault, connection, actor.user_niss) if actor.user_niss else None,
        patient=patient,
        dispensed=dispensed.isoformat() if dispensed else None,
        rejection=rejection,
        record=record,
        extra=extra,
    )
    text = entry.to_json()
    connection.execute(
        "INSERT INTO audit (seq, entry, mac) VALUES (?, ?, ?)", (seq, text, _chain_mac(vault, previous, text))
    )
    return entry


@dataclass(frozen=True)
class Break:
    seq: int
    problem: str


@dataclass(frozen=True)
class Verification:
    entries: int
    head: str
    breaks: tuple[Break, ...]

    @property
    def intact(self) -> bool:
        return not self.breaks


def verify(vault: Vault, connection: sqlite3.Connection) -> Verification:
    """Walk the chain; report every entry where it breaks (edited, deleted, reordered)."""
    previous, expected, count = GENESIS, 1, 0
    breaks: list[Break] = []
    for seq, text, mac in connection.execute("SELECT seq, entry, mac FROM audit ORDER BY seq"):
        count += 1
        if seq != expected:
            breaks.append(Break(seq, f"entries {expected}..{seq - 1} are missing"))
        try:
            embedded = json.loads(text).get("seq")
        except (ValueError, AttributeError):
            embedded = None
        if embedded != seq:
            breaks.append(Break(seq, "entry was moved or its sequence number changed"))
        elif _chain_mac(vault, previous, text) != mac:
            breaks.append(Break(seq, "entry or its predecessor was changed, removed or reordered"))
        previous, expected = mac, seq + 1
    return Verification(count, previous, tuple(breaks))


def entries(connection: sqlite3.Connection, month: str | None = None) -> Iterator[AuditEntry]:
    for (text,) in connection.execute("SELECT entry FROM audit ORDER BY seq"):
        try:
            entry = AuditEntry(**json.loads(text))
        except (ValueError, TypeError):
            raise DataIntegrity("an audit entry is unreadable: run mcn audit verify") from None
        if month is None or entry.month == month:
            yield entry


def actor_niss(vault: Vault, connection: sqlite3.Connection, key: str) -> str | None:
    row = connection.execute("SELECT sealed FROM actors WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    return vault.open(bytes(row[0]), f"actor|{key}".encode(), "pharmacist record").decode()


def recent(connection: sqlite3.Connection, since: datetime, event: str) -> Iterator[AuditEntry]:
    """Entries of ``event`` at or after ``since``, newest first (reads back only as far as needed)."""
    bound = since.astimezone(UTC).isoformat(timespec="seconds")
    for (text,) in connection.execute("SELECT entry FROM audit ORDER BY seq DESC"):
        entry = AuditEntry(**json.loads(text))
        if entry.at < bound:
            return
        if entry.event == event:
            yield entry
