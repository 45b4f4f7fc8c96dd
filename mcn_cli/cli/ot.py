"""`mcn ot`: a tarification office's consultations, only for rejected invoices, never stored."""

from __future__ import annotations

import csv
import json as json_module
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from mcn_cli.cli.output import emit_fields, emit_json
from mcn_cli.cli.patient import MemberOption, MutualityOption, NissOption, patient_from
from mcn_cli.cli.records import consultation_json
from mcn_cli.domain.dates import parse_date
from mcn_cli.domain.errors import InvalidInput, NoCommitment


class Text:
    """Human text of `mcn ot` (translate here)."""

    help = (
        "Tarification offices: consult only for an invoice rejected because the insurability data were wrong "
        "(brochure 8.2.2.7); answers are shown, never stored. Needs a session opened with the office's "
        "certificate (mcn login --org NIHII-OTD_PHARMACY=....p12)."
    )
    consult_help = "Consult one patient for one rejected invoice line; the rejection reference is required."
    batch_help = (
        "Consult every line of a CSV of rejections (header: rejection,pharmacy,niss,mutuality,"
        "member_number,date,rejection_code), a few at a time; a failing line is reported with its line "
        "number and the others go on. The exit status is that of the first failing line (0 when every "
        "line succeeded)."
    )
    rejection_help = "The rejection reference of the invoice line (required; at most 25 characters)."
    date_help = "The dispensing date of the rejected line: YYYY-MM-DD or DD/MM/YYYY."
    pharmacy_help = "The NIHII of the pharmacy whose invoice was rejected."
    session_help = "The eHealth session to use."
    file_help = "The CSV file of rejections ('-' for standard input)."
    output_help = "Write the results to this file (.csv for CSV, else JSON lines); default: standard output."
    format_help = "csv or jsonl (default: from --output's extension, else jsonl)."
    workers_help = "How many consultations at once."
    json_help = "Print JSON (JSON lines for a batch)."
    stored = "cache"
    not_stored = "not stored (tarification office)"
    rejection = "rejection"
    outcome = "outcome"
    summary = "{ok} of {total} lines answered, {failed} failed"
    failed_row = "line {row}: {message}"
    outcomes: ClassVar[dict[str, str]] = {
        "no-right": "no right at {date}",
        "unknown": "the insurers do not know this patient",
        "multiple-insurers": "known at several insurers ({insurers})",
    }


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False)
Session = Annotated[str, typer.Option("--session", "-s", help=Text.session_help)]
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
    from mcn_cli.cli.consult import answer_rows
    from mcn_cli.domain.identifiers import parse_pharmacy_nihii

    reference = ot.check_rejection(rejection)
    item = ot.Rejection(
        reference=reference,
        patient=patient_from(niss, mutuality, member_number),
        dispensed=parse_date(dispensed, "date"),
        pharmacy=parse_pharmacy_nihii(pharmacy, "pharmacy").value if pharmacy else None,
    )
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
        emit_fields([(Text.rejection, reference), *answer_rows(consultation), (Text.stored, Text.not_stored)])
    if result.outcome != "commitment":
        message = Text.outcomes[result.outcome].format(
            date=item.dispensed, insurers=", ".join(result.answer.multiple_io)
        )
        raise NoCommitment(message, reason=result.outcome)


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


def _write(lines: list[dict[str, Any]], output: Path | None, form: str) -> None:
    from mcn_cli.domain.text import json_visible, spreadsheet_cell
    from mcn_cli.store.secure_files import write_private

    if form == "csv":
        import io

        text = io.StringIO()
        fields = list(dict.fromkeys(k for line in lines for k in line))
        writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        # no cell a spreadsheet runs as a formula (= + - @, OWASP): text cells get a leading quote;
        # the numbers (row, exit_status) are ints and stay as they are
        writer.writerows({k: spreadsheet_cell(v) for k, v in line.items()} for line in lines)
        data = text.getvalue()
    else:
        data = "".join(json_visible(json_module.dumps(line, ensure_ascii=False)) + "\n" for line in lines)
    if output is None:
        sys.stdout.write(data)
    else:
        try:
            write_private(output, data.encode())  # it holds patient data: owner-only
        except OSError as error:
            raise InvalidInput("output", "write", f"cannot write {output}: {error.strerror}") from None


@app.command("batch", help=Text.batch_help)
def batch(
    file: Annotated[str, typer.Argument(help=Text.file_help, show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=Text.output_help, show_default=False)
    ] = None,
    form: Annotated[str | None, typer.Option("--format", help=Text.format_help, show_default=False)] = None,
    workers: Annotated[int, typer.Option("--workers", help=Text.workers_help)] = 4,
    session: Session = "default",
    json: Json = False,
) -> None:
    from mcn_cli.actions import ot
    from mcn_cli.cli.errors import status_for

    chosen = form or (
        "jsonl" if json else "csv" if output is not None and output.suffix == ".csv" else "jsonl"
    )
    if chosen not in ("csv", "jsonl"):
        raise InvalidInput("format", "choice", f"must be csv or jsonl, got {form!r}")
    if not 1 <= workers <= 16:
        raise InvalidInput("workers", "range", "must be between 1 and 16")
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise InvalidInput("file", "unreadable", f"cannot read {file}: {error.strerror}") from None
    rows = list(ot.read_rows(text))
    with _progress(len(rows)) as advance:
        report = ot.batch(rows, session_name=session, workers=workers, progress=advance)
    _write([_line(r) for r in report.results], output, chosen)
    for failed in report.failed:
        sys.stderr.write("mcn: " + Text.failed_row.format(row=failed.row, message=failed.error) + "\n")
    if sys.stderr.isatty():
        ok = len(report.results) - len(report.failed)
        sys.stderr.write(
            Text.summary.format(ok=ok, total=len(report.results), failed=len(report.failed)) + "\n"
        )
    if report.failed:
        raise typer.Exit(int(status_for(report.failed[0].error)))


class _progress:
    """A progress bar on a terminal (stderr), nothing in scripts."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> Any:
        if sys.stderr.isatty() and self.total:
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.bar.start()
            task = self.bar.add_task("rejections", total=self.total)
            return lambda done: self.bar.update(task, completed=done)
        return lambda done: None

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
