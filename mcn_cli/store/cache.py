"""The commitment cache: every consultation answer, encrypted, until billing no longer needs it.

A record moves open → invoiced (it went on the monthly OTFS invoice) → settled (accepted, or
its rejections handled), and settling deletes it at once. ``purge`` (keyless, for cron) also
removes what passed the maximum retention and what was never invoiced after a grace period.

Only dates, the state, the pharmacy NIHII and keyed pseudonyms are stored in clear; they are
bound to the encrypted answer as associated data, so changing any of them is detected.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta

from mcn_cli.domain.consultation import Consultation, PatientId
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.identifiers import Member, Niss
from mcn_cli.store import audit, codec
from mcn_cli.store.audit import Actor, Event
from mcn_cli.store.db import Database
from mcn_cli.store.vault import Vault

OPEN, INVOICED, SETTLED = "open", "invoiced", "settled"


@dataclass(frozen=True)
class Record:
    id: str
    niss_key: str | None
    member_key: str | None
    consulted_at: str
    dispensed: str
    coverage_start: str | None
    coverage_end: str | None
    reusable_until: str | None
    pharmacy: str
    state: str
    invoiced_at: str | None
    payload: bytes

    @property
    def aad(self) -> bytes:
        bound = (
            self.id,
            self.niss_key,
            self.member_key,
            self.consulted_at,
            self.dispensed,
            self.coverage_start,
            self.coverage_end,
            self.reusable_until,
            self.pharmacy,
        )
        return ("mcn-record-v1|" + "|".join("" if v is None else v for v in bound)).encode()


_FIELDS = tuple(f.name for f in fields(Record))
_COLUMNS = ", ".join(_FIELDS)


def _record(row: Sequence[object]) -> Record:
    values = list(row)
    values[-1] = bytes(values[-1])  # type: ignore[arg-type]
    return Record(*values)  # type: ignore[arg-type]


def niss_key(vault: Vault, niss: str) -> str:
    return vault.pseudonym("niss", niss)


def member_key(vault: Vault, mutuality: str, number: str) -> str:
    return vault.pseudonym("member", f"{mutuality}/{number}")


def patient_key(vault: Vault, patient: PatientId) -> tuple[str, str]:
    """The column and pseudonym to look a patient up by."""
    if isinstance(patient, Niss):
        return "niss_key", niss_key(vault, patient.value)
    assert isinstance(patient, Member)
    return "member_key", member_key(vault, patient.mutuality.code, patient.number)


def month_bounds(year: int, month: int) -> tuple[str, str]:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first.isoformat(), following.isoformat()


@dataclass(frozen=True)
class Cached:
    """A record decrypted: its billing state beside the consultation it keeps."""

    id: str
    state: str
    invoiced_at: str | None
    consultation: Consultation


@dataclass(frozen=True)
class PurgeCounts:
    settled: int = 0
    expired: int = 0
    uninvoiced: int = 0

    @property
    def total(self) -> int:
        return self.settled + self.expired + self.uninvoiced


class CommitmentCache:
    """Store, find and bill consultation answers; every change is audited in the same transaction."""

    def __init__(self, db: Database, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    # --- writing -------------------------------------------------------------------------

    def store(self, consultation: Consultation, actor: Actor | None = None, outcome: str = "answered") -> str:
        """Keep a consultation's answer and audit it; returns the record id."""
        receiver = consultation.care_receiver
        commitment = consultation.commitment
        record_id = secrets.token_hex(8)
        by_niss = niss_key(self.vault, receiver.niss) if receiver.niss else None
        by_member = (
            member_key(self.vault, receiver.mutuality, receiver.member_number)
            if receiver.mutuality and receiver.member_number
            else None
        )
        draft = Record(
            id=record_id,
            niss_key=by_niss,
            member_key=by_member,
            consulted_at=consultation.consulted_at.astimezone(UTC).isoformat(timespec="microseconds"),
            dispensed=consultation.dispensed.isoformat(),
            coverage_start=commitment.coverage.start.isoformat() if commitment else None,
            coverage_end=commitment.coverage.end.isoformat() if commitment else None,
            reusable_until=commitment.reusable_until.isoformat()
            if commitment and commitment.reusable_until
            else None,
            pharmacy=consultation.pharmacy_nihii,
            state=OPEN,
            invoiced_at=None,
            payload=b"",
        )
        record = replace(draft, payload=self.vault.seal(codec.to_json(consultation), draft.aad))
        with self.db.write() as c:
            c.execute(
                f"INSERT INTO records ({_COLUMNS}) VALUES ({', '.join('?' * len(_FIELDS))})",
                tuple(getattr(record, name) for name in _FIELDS),
            )
            audit.append(
                self.vault,
                c,
                Event.CONSULTATION,
                outcome,
                actor=actor,
                patient=by_niss or by_member,
                dispensed=consultation.dispensed,
                record=record_id,
                at=consultation.consulted_at,
            )
        return record_id

    def record_event(
        self,
        event: str,
        outcome: str,
        *,
        actor: Actor | None = None,
        patient: PatientId | None = None,
        dispensed: date | None = None,
        rejection: str | None = None,
    ) -> None:
        """Audit something that stores no answer: a refused or failed consultation, a reuse..."""
        pseudonym = patient_key(self.vault, patient)[1] if patient is not None else None
        with self.db.write() as c:
            audit.append(
                self.vault,
                c,
                event,
                outcome,
                actor=actor,
                patient=pseudonym,
                dispensed=dispensed,
                rejection=rejection,
            )

    # --- reading -------------------------------------------------------------------------

    def _open(self, record: Record) -> Cached:
        consultation = codec.from_json(
            self.vault.open(record.payload, record.aad, f"cache record {record.id}")
        )
        return Cached(record.id, record.state, record.invoiced_at, consultation)

    def for_patient(self, patient: PatientId) -> list[Cached]:
        """The patient's records, oldest first; decrypts only this patient's records."""
        column, key = patient_key(self.vault, patient)
        rows = self.db.connection.execute(
            f"SELECT {_COLUMNS} FROM records WHERE {column} = ? ORDER BY consulted_at", (key,)
        ).fetchall()
        return [self._open(_record(row)) for row in rows]

    def get(self, record_id: str) -> Cached | None:
        row = self.db.connection.execute(
            f"SELECT {_COLUMNS} FROM records WHERE id = ?", (record_id,)
        ).fetchone()
        return None if row is None else self._open(_record(row))

    def all(self, state: str | None = None) -> list[Cached]:
        query = f"SELECT {_COLUMNS} FROM records"
        args: tuple[str, ...] = ()
        if state:
            query += " WHERE state = ?"
            args = (state,)
        rows = self.db.connection.execute(query + " ORDER BY consulted_at", args).fetchall()
        return [self._open(_record(row)) for row in rows]

    # --- billing -------------------------------------------------------------------------

    def _select_ids(self, state: str, month: tuple[int, int] | None, ids: Iterable[str]) -> list[str]:
        c = self.db.connection
        if month is not None:
            first, following = month_bounds(*month)
            rows = c.execute(
                "SELECT id FROM records WHERE state = ? AND dispensed >= ? AND dispensed < ?",
                (state, first, following),
            ).fetchall()
            return [r[0] for r in rows]
        chosen = []
        for record_id in ids:
            row = c.execute("SELECT state FROM records WHERE id = ?", (record_id,)).fetchone()
            if row is None:
                raise InvalidInput("record", "unknown", f"no cache record {record_id}")
            if row[0] == state:
                chosen.append(record_id)
        return chosen

    def invoice(
        self, month: tuple[int, int] | None = None, ids: Iterable[str] = (), actor: Actor | None = None
    ) -> int:
        """Mark open records as invoiced (they went on the monthly OTFS invoice)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.db.write() as c:
            chosen = self._select_ids(OPEN, month, ids)
            for record_id in chosen:
                c.execute(
                    "UPDATE records SET state = ?, invoiced_at = ? WHERE id = ?", (INVOICED, now, record_id)
                )
                audit.append(self.vault, c, Event.INVOICED, "invoiced", actor=actor, record=record_id)
        return len(chosen)

    def settle(
        self, month: tuple[int, int] | None = None, ids: Iterable[str] = (), actor: Actor | None = None
    ) -> int:
        """Settle invoiced records (accepted, or rejections handled): they are deleted at once."""
        with self.db.write() as c:
            chosen = self._select_ids(INVOICED, month, ids)
            for record_id in chosen:
                c.execute("DELETE FROM records WHERE id = ?", (record_id,))
                audit.append(
                    self.vault, c, Event.SETTLED, "settled and deleted", actor=actor, record=record_id
                )
        return len(chosen)

    # --- rekey ---------------------------------------------------------------------------

    def reencrypt(self, old: Vault, new: Vault) -> int:
        """Re-encrypt every record and sealed NISS under ``new`` (inside the rekey transaction)."""
        c = self.db.connection
        count = 0
        for row in c.execute(f"SELECT {_COLUMNS} FROM records").fetchall():
            record = _record(row)
            plain = old.open(record.payload, record.aad, f"cache record {record.id}")
            c.execute("UPDATE records SET payload = ? WHERE id = ?", (new.seal(plain, record.aad), record.id))
            count += 1
        for key, sealed in c.execute("SELECT key, sealed FROM actors").fetchall():
            aad = f"actor|{key}".encode()
            c.execute(
                "UPDATE actors SET sealed = ? WHERE key = ?",
                (new.seal(old.open(bytes(sealed), aad), aad), key),
            )
        return count


def purge(db: Database, today: date, retention_months: int, grace_days: int) -> PurgeCounts:
    """Delete what billing no longer needs; needs no key, so cron can run it unattended.

    - settled records (normally already deleted when settled);
    - records whose dispensing month ended more than ``retention_months`` ago;
    - open records never invoiced ``grace_days`` after their coverage (or dispensing date) ended.
    """
    months_back = today.year * 12 + today.month - 1 - retention_months
    oldest_month = date(months_back // 12, months_back % 12 + 1, 1).isoformat()
    stale = (today - timedelta(days=grace_days)).isoformat()
    with db.write() as c:
        settled = c.execute("DELETE FROM records WHERE state = ?", (SETTLED,)).rowcount
        expired = c.execute("DELETE FROM records WHERE dispensed < ?", (oldest_month,)).rowcount
        uninvoiced = c.execute(
            "DELETE FROM records WHERE state = ? AND COALESCE(coverage_end, dispensed) < ?", (OPEN, stale)
        ).rowcount
    return PurgeCounts(settled, expired, uninvoiced)


@dataclass(frozen=True)
class Stats:
    by_state: dict[str, int]
    oldest_dispensed: str | None
    newest_consulted: str | None
    audit_entries: int
    file_bytes: int


def stats(db: Database) -> Stats:
    c = db.connection
    by_state = {OPEN: 0, INVOICED: 0, SETTLED: 0}
    for state, count in c.execute("SELECT state, COUNT(*) FROM records GROUP BY state"):
        by_state[state] = count
    oldest, newest = c.execute("SELECT MIN(dispensed), MAX(consulted_at) FROM records").fetchone()
    entries = c.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    size = sum(p.stat().st_size for p in db.path.parent.glob(db.path.name + "*") if p.is_file())
    return Stats(by_state, oldest, newest, entries, size)
