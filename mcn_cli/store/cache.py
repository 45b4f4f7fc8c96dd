"""The commitment cache: every consultation answer, encrypted, until billing no longer needs it.

A record moves open → invoiced (it went on the monthly OTFS invoice) → settled (accepted, or
its rejections handled), and settling deletes it at once. ``purge`` (keyless, for cron) also
removes what passed the maximum retention and what was never invoiced after a grace period.

Only dates, the state, the pharmacy NIHII and keyed pseudonyms are stored in clear; they are
bound to the encrypted answer as associated data, so changing any of them is detected. The
billing state and invoicing date are bound since schema 3 (``binding`` 2): a record sealed
before (``binding`` 1) is accepted as it is once and re-sealed with its state by the first write
of an unlocked cache (a consultation, a reuse, invoicing...), or by a rekey.

Every write takes the database's write lock first and then checks that the vault's key is still
the one in the database (``vault.current``): a rekey that committed meanwhile is never
overwritten by a record sealed under the key it discarded.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta

from mcn_cli.domain.consultation import Consultation, PatientId
from mcn_cli.domain.errors import DataIntegrity, InvalidInput, PolicyRefused
from mcn_cli.domain.identifiers import Member, Niss
from mcn_cli.domain.messages import N_
from mcn_cli.domain.policy import check_burst
from mcn_cli.store import audit, codec
from mcn_cli.store import vault as vault_module
from mcn_cli.store.audit import Actor, Event
from mcn_cli.store.db import Connection, Store
from mcn_cli.store.vault import KeyChanged, Vault, record_name

OPEN, INVOICED, SETTLED = "open", "invoiced", "settled"
BINDING = 2  # what a record sealed now binds: see the module's docstring
_MIGRATED = "record_binding"  # meta: every record was re-sealed with BINDING


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
    binding: int
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
        if self.binding >= 2:
            bound += (self.state, self.invoiced_at)
        prefix = "mcn-record-v1|" if self.binding < 2 else "mcn-record-v2|"
        return (prefix + "|".join("" if v is None else v for v in bound)).encode()


_FIELDS = tuple(f.name for f in fields(Record))
_COLUMNS = ", ".join(_FIELDS)


def _record(row: Sequence[object]) -> Record:
    values = list(row)
    values[-1] = bytes(values[-1])  # type: ignore[arg-type]
    return Record(*values)  # type: ignore[arg-type]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


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


def _mark_migrated(c: Connection) -> None:
    c.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (_MIGRATED, b"2"),
    )


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

    def __init__(self, db: Store, vault: Vault) -> None:
        self.db = db
        self.vault = vault

    # --- writing -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction with the vault's key checked against the database's (a rekey may
        have committed since it was unlocked: ``KeyChanged`` if the new key cannot be opened),
        and records sealed before schema 3 re-sealed with their billing state."""
        with self.db.write() as c:
            self.vault = vault_module.current(self.db, self.vault)
            self._migrate(c)
            yield c

    def _migrate(self, c: Connection) -> None:
        if c.execute("SELECT 1 FROM meta WHERE name = ?", (_MIGRATED,)).fetchone() is not None:
            return
        for row in c.execute(f"SELECT {_COLUMNS} FROM records WHERE binding < ?", (BINDING,)).fetchall():
            record = _record(row)
            try:
                self._reseal(c, record, self.vault, self.vault, record.state, record.invoiced_at)
            except DataIntegrity:
                pass  # left as it is: reading it stops with exit 7, as before
        _mark_migrated(c)

    @staticmethod
    def _reseal(
        c: Connection, record: Record, old: Vault, new: Vault, state: str, invoiced_at: str | None
    ) -> None:
        """Open ``record`` (checking it) and seal it anew, bound to the given billing state."""
        plain = old.open(record.payload, record.aad, record_name(record.id))
        fresh = replace(record, state=state, invoiced_at=invoiced_at, binding=BINDING)
        c.execute(
            "UPDATE records SET state = ?, invoiced_at = ?, binding = ?, payload = ? WHERE id = ?",
            (state, invoiced_at, BINDING, new.seal(plain, fresh.aad), record.id),
        )

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
            binding=BINDING,
            payload=b"",
        )
        try:
            with self._write() as c:
                # sealed under the write lock, with the key the database holds now
                record = replace(draft, payload=self.vault.seal(codec.to_json(consultation), draft.aad))
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
                    coverage_end=draft.coverage_end,
                )
        except KeyChanged:
            # the answer came, but cannot be kept under the discarded key: audit it all the same
            with self.db.write() as c:
                audit.append(
                    self.vault,
                    c,
                    Event.CONSULTATION,
                    f"{outcome}, not kept: the cache was rekeyed meanwhile",
                    actor=actor,
                    patient=by_niss or by_member,
                    dispensed=consultation.dispensed,
                    at=consultation.consulted_at,
                    seal_actor=False,
                )
            raise
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
        where = {"actor": actor, "patient": pseudonym, "dispensed": dispensed, "rejection": rejection}
        try:
            with self._write() as c:
                audit.append(self.vault, c, event, outcome, **where)
        except KeyChanged:  # the chain needs only the pseudonym key, which a rekey keeps
            with self.db.write() as c:
                audit.append(self.vault, c, event, outcome, seal_actor=False, **where)

    def claim_burst(
        self,
        pharmacy: str,
        patient: PatientId,
        now: datetime,
        *,
        limit: int,
        minutes: int,
        actor: Actor | None = None,
        dispensed: date | None = None,
    ) -> None:
        """The legitimate-use guard, atomic across processes: in one write transaction, count the
        different patients this pharmacy consulted in the last ``minutes`` and either record this
        consultation (so that concurrent ones count it) or audit a refusal and raise
        ``PolicyRefused``. Recent consultation entries of the audit trail count too (those made
        before this table existed, and any made without claiming)."""
        key = patient_key(self.vault, patient)[1]
        since = now - timedelta(minutes=minutes)
        refusal: PolicyRefused | None = None
        with self._write() as c:
            c.execute("DELETE FROM burst WHERE at < ?", (_stamp(now - timedelta(days=1, minutes=minutes)),))
            recent = [
                (datetime.fromisoformat(at), who)
                for at, who in c.execute(
                    "SELECT at, patient FROM burst WHERE pharmacy = ? AND at >= ?", (pharmacy, _stamp(since))
                )
            ]
            recent += [
                (datetime.fromisoformat(e.at), e.patient or "")
                for e in audit.recent(c, since, Event.CONSULTATION)
                if e.pharmacy == pharmacy and not e.outcome.startswith("refused")
            ]
            try:
                check_burst(recent, key, now, limit=limit, minutes=minutes)
            except PolicyRefused as error:
                refusal = error
                audit.append(
                    self.vault,
                    c,
                    Event.CONSULTATION,
                    "refused: burst of patients",
                    actor=actor,
                    patient=key,
                    dispensed=dispensed,
                )
            else:
                c.execute(
                    "INSERT INTO burst (pharmacy, patient, at) VALUES (?, ?, ?)", (pharmacy, key, _stamp(now))
                )
        if refusal is not None:
            raise refusal

    # --- reading -------------------------------------------------------------------------

    def _open(self, record: Record) -> Cached:
        consultation = codec.from_json(
            self.vault.open(record.payload, record.aad, record_name(record.id))
        )
        return Cached(record.id, record.state, record.invoiced_at, consultation)

    def for_patient(self, patient: PatientId) -> list[Cached]:
        """The patient's records, oldest first; decrypts only this patient's records."""
        column, key = patient_key(self.vault, patient)
        rows = self.db.connection.execute(
            f"SELECT {_COLUMNS} FROM records WHERE {column} = ? ORDER BY consulted_at", (key,)
        ).fetchall()
        return [self._open(_record(row)) for row in rows]

    def _row(self, record_id: str) -> Record:
        row = self.db.connection.execute(
            f"SELECT {_COLUMNS} FROM records WHERE id = ?", (record_id,)
        ).fetchone()
        return _record(row)

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
                raise InvalidInput("record", "unknown", N_("no cache record {id}"), id=record_id)
            if row[0] == state:
                chosen.append(record_id)
        return chosen

    def invoice(
        self, month: tuple[int, int] | None = None, ids: Iterable[str] = (), actor: Actor | None = None
    ) -> int:
        """Mark open records as invoiced (they went on the monthly OTFS invoice)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._write() as c:
            chosen = self._select_ids(OPEN, month, ids)
            for record_id in chosen:
                # re-sealed with its new state (which checks the record first)
                self._reseal(c, self._row(record_id), self.vault, self.vault, INVOICED, now)
                audit.append(self.vault, c, Event.INVOICED, "invoiced", actor=actor, record=record_id)
        return len(chosen)

    def settle(
        self, month: tuple[int, int] | None = None, ids: Iterable[str] = (), actor: Actor | None = None
    ) -> int:
        """Settle invoiced records (accepted, or rejections handled): they are deleted at once."""
        with self._write() as c:
            chosen = self._select_ids(INVOICED, month, ids)
            for record_id in chosen:
                self._open(self._row(record_id))  # its state must be the one sealed: invoiced
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
            self._reseal(c, record, old, new, record.state, record.invoiced_at)  # bound to its state
            count += 1
        _mark_migrated(c)
        for key, sealed in c.execute("SELECT key, sealed FROM actors").fetchall():
            aad = f"actor|{key}".encode()
            c.execute(
                "UPDATE actors SET sealed = ? WHERE key = ?",
                (new.seal(old.open(bytes(sealed), aad), aad), key),
            )
        return count


def purge(db: Store, today: date, retention_months: int, grace_days: int) -> PurgeCounts:
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


def stats(db: Store) -> Stats:
    c = db.connection
    by_state = {OPEN: 0, INVOICED: 0, SETTLED: 0}
    for state, count in c.execute("SELECT state, COUNT(*) FROM records GROUP BY state"):
        by_state[state] = count
    oldest, newest = c.execute("SELECT MIN(dispensed), MAX(consulted_at) FROM records").fetchone()
    entries = c.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    return Stats(by_state, oldest, newest, entries, db.size_bytes())
