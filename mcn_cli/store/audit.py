"""The audit trail: append-only, tamper-evident, for the insurers' finality checks (brochure 7.3).

Each entry says when, who (the session user's NISS as a keyed pseudonym, the pharmacy NIHII),
which patient (keyed pseudonym only), why (the dispensing date, or an OT rejection reference)
and the outcome. Entries form a chain: each MAC covers the entry and the previous MAC, so an
edited, deleted or reordered entry breaks the chain from that point on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mcn_cli.domain.errors import DataIntegrity
from mcn_cli.domain.messages import N_, Message, english
from mcn_cli.store.db import Connection
from mcn_cli.store.vault import PHARMACIST_RECORD, Vault

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


def actor_key(vault: Vault, connection: Connection, user_niss: str, *, seal: bool = True) -> str:
    """The user's pseudonym; the NISS itself is kept sealed so a report can name the pharmacist
    (not when ``seal`` is false: the vault's data key was discarded by a rekey meanwhile)."""
    key = vault.pseudonym("user", user_niss)
    if not seal:
        return key
    connection.execute(
        "INSERT INTO actors (key, sealed) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        (key, vault.seal(user_niss.encode(), f"actor|{key}".encode())),
    )
    return key


def append(
    vault: Vault,
    connection: Connection,
    event: str,
    outcome: str,
    *,
    actor: Actor | None = None,
    patient: str | None = None,
    dispensed: date | None = None,
    rejection: str | None = None,
    record: str | None = None,
    at: datetime | None = None,
    seal_actor: bool = True,
    **extra: Any,
) -> AuditEntry:
    """Append one entry; call inside the caller's write transaction. The chain's MAC uses the
    pseudonym key only, which a rekey keeps; ``seal_actor`` false keeps the data key unused."""
    seq, previous = _last(connection)
    seq += 1
    actor = actor or Actor()
    entry = AuditEntry(
        seq=seq,
        at=(at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
        event=event,
        outcome=outcome,
        pharmacy=actor.pharmacy,
        actor=actor_key(vault, connection, actor.user_niss, seal=seal_actor) if actor.user_niss else None,
        patient=patient,
        dispensed=dispensed.isoformat() if dispensed else None,
        rejection=rejection,
        record=record,
        extra=extra,
    )
    _insert(vault, connection, entry, previous)
    return entry


def _insert(vault: Vault, connection: Connection, entry: AuditEntry, previous: str) -> None:
    text = entry.to_json()
    connection.execute(
        "INSERT INTO audit (seq, entry, mac) VALUES (?, ?, ?)",
        (entry.seq, text, _chain_mac(vault, previous, text)),
    )


def _last(connection: Connection) -> tuple[int, str]:
    last = connection.execute("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, GENESIS) if last is None else (int(last[0]), last[1])


def reappend(vault: Vault, connection: Connection, entry: AuditEntry) -> AuditEntry:
    """Append an entry made elsewhere (the spool, another store) at the end of this chain, under
    a new number; call inside the caller's write transaction."""
    seq, previous = _last(connection)
    moved = replace(entry, seq=seq + 1)
    _insert(vault, connection, moved, previous)
    return moved


@dataclass(frozen=True)
class Break:
    """Where the chain breaks (0: outside it) and what is wrong, as a message."""

    seq: int
    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)

    @property
    def problem(self) -> str:
        """In English, as --json carries it."""
        return english(self.msgid, self.params)

    def as_message(self) -> Message:
        return Message(self.msgid, self.params)


@dataclass(frozen=True)
class Verification:
    entries: int
    head: str
    breaks: tuple[Break, ...]

    @property
    def intact(self) -> bool:
        return not self.breaks


def _parse(text: object) -> AuditEntry | None:
    try:
        entry = AuditEntry(**json.loads(text))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    return entry


# The shortest retention and grace the settings allow (store/settings.py): a record missing
# from the cache is explained by ``purge`` only if even these would have deleted it.
MIN_RETENTION_MONTHS = 24
MIN_GRACE_DAYS = 31


def verify(vault: Vault, connection: Connection, today: date | None = None) -> Verification:
    """Walk the chain; report every entry where it breaks (edited, deleted, reordered, unreadable),
    then set the cache's records against it: a record row deleted outside billing and purge, or
    one that no consultation entry accounts for, is reported too."""
    previous, expected, count = GENESIS, 1, 0
    breaks: list[Break] = []
    consulted: dict[str, AuditEntry] = {}
    invoiced: set[str] = set()
    settled: set[str] = set()
    for seq, text, mac in connection.execute("SELECT seq, entry, mac FROM audit ORDER BY seq"):
        count += 1
        if seq != expected:
            breaks.append(Break(
                seq, N_("entries {first}..{last} are missing"), {"first": expected, "last": seq - 1}
            ))
        try:
            embedded = json.loads(text).get("seq")
        except (ValueError, AttributeError, TypeError):
            embedded = None
            breaks.append(Break(seq, N_("entry is unreadable")))
        else:
            if embedded != seq:
                breaks.append(Break(seq, N_("entry was moved or its sequence number changed")))
            elif _chain_mac(vault, previous, text) != mac:
                breaks.append(Break(seq, N_("entry or its predecessor was changed, removed or reordered")))
        entry = _parse(text)
        if entry is not None and entry.record:
            if entry.event == Event.CONSULTATION:
                consulted[entry.record] = entry
            elif entry.event == Event.INVOICED:
                invoiced.add(entry.record)
            elif entry.event == Event.SETTLED:
                settled.add(entry.record)
        previous, expected = mac, seq + 1
    breaks.extend(_record_breaks(connection, consulted, invoiced, settled, today or date.today()))
    return Verification(count, previous, tuple(breaks))


def _record_breaks(
    connection: Connection,
    consulted: dict[str, AuditEntry],
    invoiced: set[str],
    settled: set[str],
    today: date,
) -> list[Break]:
    present = {row[0] for row in connection.execute("SELECT id FROM records")}
    months_back = today.year * 12 + today.month - 1 - MIN_RETENTION_MONTHS
    oldest_month = date(months_back // 12, months_back % 12 + 1, 1).isoformat()
    stale = (today - timedelta(days=MIN_GRACE_DAYS)).isoformat()
    breaks = []
    for record, entry in consulted.items():
        if record in present or record in settled:
            continue
        dispensed = entry.dispensed or ""
        if dispensed < oldest_month:
            continue  # past the longest retention: purge deleted it
        ended = entry.extra.get("coverage_end") or dispensed
        if record not in invoiced and ended < stale:
            continue  # never invoiced after its coverage ended plus the grace: purge deleted it
        deleted = N_("cache record {id} was deleted outside billing and purge")
        breaks.append(Break(entry.seq, deleted, {"id": record}))
    for record in sorted(present - consulted.keys()):
        breaks.append(Break(0, N_("cache record {id} is not in the audit trail"), {"id": record}))
    return breaks


def entries(connection: Connection, month: str | None = None) -> Iterator[AuditEntry]:
    for seq, text in connection.execute("SELECT seq, entry FROM audit ORDER BY seq"):
        entry = _parse(text)
        if entry is None:
            raise DataIntegrity(N_("audit entry {seq} is unreadable: run mcn audit verify"), seq=seq)
        if month is None or entry.month == month:
            yield entry


def actor_niss(vault: Vault, connection: Connection, key: str) -> str | None:
    row = connection.execute("SELECT sealed FROM actors WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    return vault.open(bytes(row[0]), f"actor|{key}".encode(), PHARMACIST_RECORD).decode()


def recent(connection: Connection, since: datetime, event: str) -> Iterator[AuditEntry]:
    """Entries of ``event`` at or after ``since``, newest first (reads back only as far as needed).

    An unreadable entry is skipped here (``mcn audit verify`` names it): it must not stop every
    consultation."""
    bound = since.astimezone(UTC).isoformat(timespec="seconds")
    below = None  # read in pages: a server's cursor would otherwise send the whole trail
    while True:
        page = connection.execute(
            "SELECT seq, entry FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (below if below is not None else 2**62, _PAGE),
        ).fetchall()
        for seq, text in page:
            below = seq
            entry = _parse(text)
            if entry is None or not isinstance(entry.at, str):
                continue
            if entry.at < bound:
                if "spooled" in entry.extra or "copied_seq" in entry.extra:
                    continue  # appended late (a spool delivered, a trail copied): older ones follow
                return
            if entry.event == event:
                yield entry
        if len(page) < _PAGE:
            return


_PAGE = 256
