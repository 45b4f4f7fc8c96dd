"""`mcn ot`: a tarification office's consultations, only for rejected invoices, never stored."""

from __future__ import annotations

import csv
import json as json_module
import sys
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from mcn_cli.cli.i18n import _, day
from mcn_cli.cli.output import emit_fields, emit_json
from mcn_cli.cli.patient import MemberOption, MutualityOption, NissOption, patient_from
from mcn_cli.cli.records import consultation_json
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import InvalidInput, McnError, NoCommitment
from mcn_cli.domain.messages import N_
from mcn_cli.status import ExitStatus


class Text:
    """Human text of `mcn ot` (translate here)."""

    help = _(
        "Tarification offices: consult only for an invoice rejected because the insurability data were wrong "
        "(brochure 8.2.2.7); answers are shown, never stored. Needs a session opened with the office's "
        "certificate (mcn login --org NIHII-OTD_PHARMACY=....p12)."
    )
    consult_help = _(
        "Consult one patient for one rejected invoice line; the rejection reference is required."
    )
    batch_help = _(
        "Consult every line of a CSV of rejections, streamed: each result line is written as soon as it is "
        "known, in the file's order. Columns (header line; case, accents and French/Dutch names accepted): "
        "rejection (reference, référence, referentie), pharmacy (pharmacie, apotheek, inami, riziv), niss "
        "(inss, insz, numéro national, rijksregisternummer), mutuality (mutualité, mutuelle, ziekenfonds), "
        "member_number (numéro d'inscription, inschrijvingsnummer), date (datum, date de délivrance, "
        "afleveringsdatum), rejection_code (code de rejet, weigeringscode); other columns are copied to the "
        "results. Separator , ; or tab; UTF-8 (with or without BOM) or Windows-1252; blank rows skipped. "
        "A failing line is reported with its line number and the others go on. Ctrl-C stops sending, waits "
        "for the requests in flight and exits 130; rerun with the same --output (or --resume) to go on. "
        "Exit status: the worst of the lines (1, 7, 4, 5, 6, 2, then 3 for no right, unknown or several "
        "insurers, as mcn ot consult), 5 after --max-failures service failures in a row, 130 when "
        "interrupted, 0 when every line has a commitment."
    )
    rejection_help = _("The rejection reference of the invoice line (required; at most 25 characters).")
    date_help = _("The dispensing date of the rejected line: YYYY-MM-DD or DD/MM/YYYY.")
    pharmacy_help = _("The NIHII of the pharmacy whose invoice was rejected.")
    session_help = _("The eHealth session to use (default: MCN_SESSION when set, else default).")
    file_help = _("The CSV file of rejections ('-' for standard input).")
    output_help = _(
        "Write the results to this file (owner-only); default: standard output. If it already holds "
        "results, the lines answered there are skipped and the others appended (resume)."
    )
    format_help = _("csv or jsonl (default: csv when --output ends in .csv, any case; else jsonl).")
    excel_help = _("Write CSV as Excel reads it in Belgium: ';'-separated, UTF-8 with BOM.")
    resume_help = _("Go on with an interrupted batch: skip the lines --output already answered.")
    max_failures_help = _("Stop after this many service failures in a row (exit 5; default 5).")
    workers_help = _("How many consultations at once.")
    json_help = _("Print JSON (JSON lines for a batch).")
    still_waiting = _("mcn: stopping: waiting for the requests in flight (they are audited and written)")
    resume_with = _("resume with: {command}")
    no_resume = _("the results went to standard output: run with --output FILE to be able to resume")
    interrupted = _("interrupted")
    too_many = _("stopped after {limit} service failures in a row")
    stopped = _("mcn: {reason}: {summary}; {how}")
    finished = _("mcn: {summary}")
    consulting = _("Consulting MyCareNet…")
    progress = _("Consulting MyCareNet: {done} of {total} lines done…")
    stored = _("stored")
    not_stored = _("no (tarification office: answers are never stored)")
    rejection = _("rejection")
    coverage = _("{start} → {end}")
    summary = _("{done} of {total} lines done: {counts}")
    failed_row = _("mcn: line {row}: {message}")
    counted: ClassVar[dict[str, str]] = {
        "commitment": _("{count} with a payment commitment"),
        "no-right": _("{count} no right"),
        "unknown": _("{count} unknown to the insurers"),
        "multiple-insurers": _("{count} known at several insurers"),
        "error": _("{count} failed"),
    }
    # errors: English source text (N_), shown translated, English in --json
    outcomes: ClassVar[dict[str, str]] = {
        "no-right": N_("no right at {date}"),
        "unknown": N_("the insurers do not know this patient"),
        "multiple-insurers": N_("known at several insurers ({insurers})"),
    }
    cannot_write = N_("cannot write {path}: {reason}")
    other_rejection = N_(
        "{path} holds line {row} for another rejection: it was written for another file "
        "(choose another --output, or remove it to start over)"
    )
    other_columns = N_(
        "{path} has other columns than this file's results: it was written for another file "
        "(choose another --output, or remove it to start over)"
    )
    not_results = N_("cannot resume from {path}: not a result file of mcn ot batch ({problem})")
    format_choice = N_("must be csv or jsonl, got {value!r}")
    excel_csv = N_("--excel writes CSV: leave out --format jsonl")
    workers_range = N_("must be between 1 and 16")
    failures_range = N_("must be between 1 and 10000")
    resume_output = N_("--resume continues an --output file: name it")


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
Session = Annotated[
    str,
    typer.Option(
        "--session", "-s", envvar="MCN_SESSION", show_envvar=False, show_default=False, help=Text.session_help
    ),
]
Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]


@app.command("consult", help=Text.consult_help)
def consult(
    dispensed: Annotated[str, typer.Option("--date", "-d", help=Text.date_help, show_default=False)],
    rejection: Annotated[
        str | None, typer.Option("--rejection", help=Text.rejection_help, show_default=False)
    ] = None,
    niss: NissOption = None,
    mutuality: MutualityOption = None,
    member_number: MemberOption = None,
    pharmacy: Annotated[
        str | None, typer.Option("--pharmacy", help=Text.pharmacy_help, show_default=False)
    ] = None,
    session: Session = "default",
    json: Json = False,
) -> None:
    from mcn_cli.actions import ot
    from mcn_cli.cli.spinner import waiting
    from mcn_cli.domain.identifiers import parse_pharmacy_nihii

    reference = ot.check_rejection(rejection)
    item = ot.Rejection(
        reference=reference,
        patient=patient_from(niss, mutuality, member_number),
        dispensed=parse_date(dispensed, "date"),
        pharmacy=parse_pharmacy_nihii(pharmacy, "pharmacy").value if pharmacy else None,
    )
    with waiting(Text.consulting, enabled=not json):
        result = ot.consult(item, session_name=session)
    consultation = result.answer.consultation(datetime.now(UTC), item.dispensed, pharmacy or "", reference)
    if json:
        emit_json(
            {
                "rejection": reference,
                "outcome": result.outcome,
                "stored": False,
                **consultation_json(consultation, reveal=True),
                "multiple_io": list(result.answer.multiple_io),
            }
        )
    else:
        rows = [(Text.rejection, reference), *_office_rows(consultation), (Text.stored, Text.not_stored)]
        emit_fields(rows)
    if result.outcome != "commitment":
        raise NoCommitment(
            Text.outcomes[result.outcome],
            reason=result.outcome,
            date=item.dispensed,
            insurers=", ".join(result.answer.multiple_io),
        )


def _office_rows(consultation: Any) -> list[tuple[str, object]]:
    """The answer as a pharmacy reads it, without a word of reuse: an office's answers are never
    stored, so never reused (the coverage is only its dates)."""
    from mcn_cli.cli.consult import Text as ConsultText
    from mcn_cli.cli.consult import answer_rows

    commitment = consultation.commitment
    rows = answer_rows(consultation)
    if commitment is None:
        return rows
    cover = commitment.coverage
    span = Text.coverage.format(start=day(cover.start), end=day(cover.end))
    return [(label, span if label == ConsultText.coverage else value) for label, value in rows]


def _line(result: Any) -> dict[str, Any]:
    from mcn_cli.cli.errors import status_for

    values = result.values
    line: dict[str, Any] = {
        "row": result.row,
        "rejection": values.get("rejection", ""),
        "pharmacy": values.get("pharmacy", ""),
        "niss": values.get("niss", ""),
        "mutuality": values.get("mutuality", ""),
        "member_number": values.get("member_number", ""),
        "date": values.get("date", ""),
        "rejection_code": values.get("rejection_code", ""),
    }
    if result.error is not None:
        return {
            **line,
            "status": "error",
            "exit_status": int(status_for(result.error)),
            "error": result.error.message,
        }
    answer = result.result.answer
    coverage, entitlement, verification = answer.coverage, answer.entitlement, answer.verification
    receiver = answer.care_receiver
    return {
        **line,
        "status": result.result.outcome,
        "exit_status": 0 if result.result.outcome == "commitment" else 3,
        "error": None,
        "first_name": receiver.first_name,
        "last_name": receiver.last_name,
        "ct1": entitlement.ct1 if entitlement else None,
        "ct2": entitlement.ct2 if entitlement else None,
        "third_party": answer.third_party.value if answer.third_party else None,
        "coverage_start": coverage.start.isoformat() if coverage else None,
        "coverage_end": coverage.end.isoformat() if coverage else None,
        "payment_approval": verification.payment_approval if verification else None,
        "seed": verification.seed if verification else None,
        "ot_check": verification.ot_check if verification else None,
        "multiple_io": " ".join(answer.multiple_io) or None,
    }


RESULT_FIELDS = (
    "status",
    "exit_status",
    "error",
    "first_name",
    "last_name",
    "ct1",
    "ct2",
    "third_party",
    "coverage_start",
    "coverage_end",
    "payment_approval",
    "seed",
    "ot_check",
    "multiple_io",
)
# The batch's exit status: the worst among its lines (first in this list), 130 when interrupted.
SEVERITY = (
    ExitStatus.ERROR,
    ExitStatus.DATA_INTEGRITY,
    ExitStatus.AUTH_NEEDED,
    ExitStatus.SERVICE_UNAVAILABLE,
    ExitStatus.POLICY_REFUSED,
    ExitStatus.BAD_INPUT,
    ExitStatus.NO_COMMITMENT,
    ExitStatus.OK,
)
STATUSES = ("commitment", "no-right", "unknown", "multiple-insurers", "error")
# Lines a resumed batch does not send again: answered, or refused before sending (the same
# line would be refused again). Lines that failed on the way (exit 1, 4, 5) are retried.
FINAL_ERRORS = (int(ExitStatus.BAD_INPUT), int(ExitStatus.POLICY_REFUSED))


def _output_names(extra: list[str]) -> dict[str, str]:
    """The name of each extra input column in the output (renamed only if it clashes)."""
    taken = {"row", *ot_columns(), *RESULT_FIELDS}
    names = {}
    for name in extra:
        out = name
        while out in taken:
            out = f"{out} (input)"
        taken.add(out)
        names[name] = out
    return names


def ot_columns() -> tuple[str, ...]:
    from mcn_cli.actions.batch_input import COLUMNS

    return COLUMNS


def _stream_line(result: Any, names: dict[str, str]) -> dict[str, Any]:
    line = _line(result)
    values = {k: line.pop(k) for k in ("row", *ot_columns())}
    extra = {names[k]: v for k, v in result.extra.items()}
    return {**values, **extra, **line}


class _Writer:
    """Result lines as they come, flushed one by one (owner-only when written to a file)."""

    def __init__(self, output: Path | None, form: str, excel: bool, fields: list[str], append: bool) -> None:
        import io
        import os

        self.form = form
        self.fields = fields
        if output is None:
            self.file: Any = sys.stdout
            self.close_it = False
        else:
            try:
                if output.parent and not output.parent.exists():
                    raise FileNotFoundError(2, "No such file or directory")
                fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.fchmod(fd, 0o600)  # it holds patient data: owner-only
            except OSError as error:
                raise InvalidInput(
                    "output", "write", Text.cannot_write, path=output, reason=error.strerror
                ) from None
            self.file = io.open(fd, "w", encoding="utf-8", newline="")  # noqa: UP020
            self.close_it = True
        self.writer = None
        if form == "csv":
            self.writer = csv.DictWriter(
                self.file,
                fieldnames=fields,
                extrasaction="ignore",
                delimiter=";" if excel else ",",
                lineterminator="\r\n" if excel else "\n",
            )
            if not append:
                if excel:
                    self.file.write("\ufeff")  # Excel reads UTF-8 only with its BOM
                self.writer.writeheader()
                self.file.flush()

    def write(self, line: dict[str, Any]) -> None:
        from mcn_cli.domain.text import json_visible, spreadsheet_cell

        if self.writer is not None:
            # no cell a spreadsheet runs as a formula (= + - @, OWASP): text cells get a leading quote
            self.writer.writerow({k: spreadsheet_cell(v) for k, v in line.items()})
        else:
            self.file.write(json_visible(json_module.dumps(line, ensure_ascii=False)) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.close_it:
            self.file.close()


@dataclass
class _Previous:
    """The lines an earlier run already wrote to the output file."""

    lines: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    worst: set[int] = field(default_factory=set)
    done: array[int] = field(default_factory=lambda: array("I"))
    header: list[str] | None = None
    separator: str = ","

    def mark(self, row: int, rejection: str) -> None:
        if row >= len(self.done):
            self.done.extend([0] * (row + 1 - len(self.done)))
        self.done[row] = _fingerprint(rejection)

    def has(self, row: int, rejection: str, output: Path) -> bool:
        if row >= len(self.done) or not self.done[row]:
            return False
        if self.done[row] != _fingerprint(rejection):
            raise InvalidInput("output", "resume", Text.other_rejection, path=output, row=row)
        return True


def _fingerprint(rejection: str) -> int:
    import zlib

    text = rejection.strip().removeprefix("'")
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) | 1


def _previous(output: Path, form: str) -> _Previous:
    """Read what an earlier run wrote (a cut last line is removed: it is written again)."""
    import os

    found = _Previous()
    try:
        size = output.stat().st_size
    except FileNotFoundError:
        return found
    if size == 0:
        return found
    with output.open("rb+") as raw:  # a line cut by a kill: drop it (it was not complete)
        raw.seek(max(0, size - 1))
        if raw.read(1) != b"\n":
            raw.seek(0)
            end = 0
            position = 0
            for chunk in iter(lambda: raw.read(1 << 16), b""):
                index = chunk.rfind(b"\n")
                if index >= 0:
                    end = position + index + 1
                position += len(chunk)
            raw.truncate(end)
            os.fsync(raw.fileno())
    try:
        with output.open(encoding="utf-8-sig", newline="") as text:
            if form == "csv":
                first = text.readline()
                from mcn_cli.actions.batch_input import sniff_separator

                separator = found.separator = sniff_separator(first)
                found.header = next(csv.reader([first], delimiter=separator), [])
                records: Any = csv.DictReader(text, fieldnames=found.header, delimiter=separator)
            else:
                records = (json_module.loads(line) for line in text if line.strip())
            for record in records:
                status = str(record.get("status") or "")
                code = int(record.get("exit_status") or 0)
                if status == "error" and code not in FINAL_ERRORS:
                    continue  # sent again
                found.mark(int(record["row"]), str(record.get("rejection") or ""))
                found.lines += 1
                found.counts[status] += 1
                found.worst.add(code)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, csv.Error) as error:
        raise InvalidInput("output", "resume", Text.not_results, path=output, problem=str(error)) from None
    return found


def _worst(codes: Any) -> int:
    present = set(codes)
    for status in SEVERITY:
        if int(status) in present:
            return int(status)
    return 0


def _form(form: str | None, json: bool, output: Path | None) -> str:
    if form is not None:
        chosen = form.lower()
        if chosen not in ("csv", "jsonl"):
            raise InvalidInput("format", "choice", Text.format_choice, value=form)
        return chosen
    if output is not None and output.suffix.lower() == ".csv":
        return "csv"
    return "jsonl"


@app.command("batch", help=Text.batch_help)
def batch(
    file: Annotated[str, typer.Argument(help=Text.file_help, show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=Text.output_help, show_default=False)
    ] = None,
    form: Annotated[str | None, typer.Option("--format", help=Text.format_help, show_default=False)] = None,
    excel: Annotated[bool, typer.Option("--excel", help=Text.excel_help)] = False,
    resume: Annotated[bool, typer.Option("--resume", help=Text.resume_help)] = False,
    workers: Annotated[int, typer.Option("--workers", help=Text.workers_help)] = 4,
    max_failures: Annotated[
        int | None, typer.Option("--max-failures", help=Text.max_failures_help, show_default=False)
    ] = None,
    session: Session = "default",
    json: Json = False,
) -> None:
    import shlex
    import signal
    import threading

    from mcn_cli.actions import ot
    from mcn_cli.actions.batch_input import open_source
    from mcn_cli.cli.spinner import waiting
    from mcn_cli.domain.text import visible
    from mcn_cli.store.settings import load

    chosen = _form(form, json, output)
    settings = load()
    if excel and chosen != "csv":
        if form is not None:
            raise InvalidInput("excel", "format", Text.excel_csv)
        chosen = "csv"
    if not 1 <= workers <= 16:
        raise InvalidInput("workers", "range", Text.workers_range)
    limit = max_failures if max_failures is not None else settings.ot_max_failures
    if not 1 <= limit <= 10000:
        raise InvalidInput("max_failures", "range", Text.failures_range)
    if resume and output is None:
        raise InvalidInput("resume", "output", Text.resume_output)
    source = open_source(file)
    try:
        previous = _previous(output, chosen) if output is not None else _Previous()
        names = _output_names(source.extra_names)
        fields = ["row", *ot_columns(), *names.values(), *RESULT_FIELDS]
        if previous.header is not None and previous.header != fields:
            raise InvalidInput("output", "resume", Text.other_columns, path=output)
        append = previous.header is not None if chosen == "csv" else previous.lines > 0
        if previous.header is not None:
            excel = previous.separator == ";"  # a resumed file keeps its own separator
        counts: Counter[str] = Counter(previous.counts)
        codes: set[int] = set(previous.worst)
        done = previous.lines
        stop = threading.Event()

        def rows() -> Any:
            for row in source.rows():
                if output is not None and previous.has(row.line, row.values.get("rejection", ""), output):
                    continue
                yield row

        writer = _Writer(output, chosen, excel, fields, append)
        handlers: dict[int, Any] = {}
        spinners: list[Any] = []

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()  # nothing more is sent; the batch ends once the requests in flight are back
            # written as is (the signal may come while the spinner's lock is held), on its own line
            below = any(s.shown for s in spinners)
            sys.stderr.write(("\n" if below else "") + Text.still_waiting + "\n")

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handlers[signum] = signal.signal(signum, on_signal)
        try:
            with waiting(_progress(done, source.total)) as spinner:
                spinners.append(spinner)

                def emit(result: Any) -> None:
                    nonlocal done
                    line = _stream_line(result, names)
                    writer.write(line)
                    counts[line["status"]] += 1
                    codes.add(int(line["exit_status"]))
                    done += 1
                    spinner.text = _progress(done, source.total)
                    if result.error is not None:
                        message = _error(result.error)
                        spinner.say(visible(Text.failed_row.format(row=result.row, message=message)))

                run = ot.batch(
                    rows(),
                    emit,
                    session_name=session,
                    settings=settings,
                    workers=workers,
                    max_failures=limit,
                    stop=stop,
                )
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            writer.close()
    finally:
        source.close()
    status = _worst(codes)
    summary = Text.summary.format(
        done=done,
        total=source.total,
        counts=", ".join(Text.counted[s].format(count=counts[s]) for s in STATUSES if counts[s]) or "-",
    )
    if run.stopped is not None:
        again = shlex.join(["mcn", "ot", "batch", file, "--output", str(output), "--resume"])
        how = Text.resume_with.format(command=again) if output is not None else Text.no_resume
        reason = Text.interrupted if run.stopped == "interrupted" else Text.too_many.format(limit=limit)
        sys.stderr.write(visible(Text.stopped.format(reason=reason, summary=summary, how=how)) + "\n")
        if run.stopped == "interrupted":
            raise typer.Exit(int(ExitStatus.INTERRUPTED))
        raise typer.Exit(status if status else int(ExitStatus.SERVICE_UNAVAILABLE))
    if sys.stderr.isatty() or status != 0:
        sys.stderr.write(visible(Text.finished.format(summary=summary)) + "\n")
    if status:
        raise typer.Exit(status)


def _progress(done: int, total: int) -> str:
    """The waiting line of a batch (on a terminal only)."""
    return Text.progress.format(done=done, total=total) if total else Text.consulting


def _error(error: object) -> str:
    """A line's failure in the user's language (the result file keeps the English message)."""
    from mcn_cli.cli.errors import human

    return human(error) if isinstance(error, McnError) else str(error)
