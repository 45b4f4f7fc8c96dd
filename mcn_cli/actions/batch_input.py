"""Reading a tarification office's file of rejections as offices have it (an Excel export).

- Encoding: UTF-8 (with or without BOM), else Windows-1252; neither is an error naming both.
- Separator: sniffed from the header line among ``,`` ``;`` and tab (outside quotes).
- Header names: case-, accent- and punctuation-insensitive, with the French and Dutch names
  offices use (:data:`ALIASES`); columns mcn does not know are kept as they are (``extra``) and
  carried to the output unchanged.
- Blank rows (``;;;;;;`` at the bottom of an Excel sheet) are skipped.

Rows are read one at a time: memory stays flat whatever the file's size. A file is read twice
(a first pass checks the encoding and counts the rows); standard input is spooled to a private
temporary file first.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_

COLUMNS = ("rejection", "pharmacy", "niss", "mutuality", "member_number", "date", "rejection_code")
ENCODINGS = ("utf-8", "windows-1252")
SEPARATORS = (",", ";", "\t")
_CHUNK = 1 << 16

# Accepted header names (compared once normalised: lower case, no accent, punctuation as spaces).
ALIASES: dict[str, tuple[str, ...]] = {
    "rejection": (
        "rejection",
        "rejection reference",
        "reference",
        "référence",
        "référence du rejet",
        "référence rejet",
        "rejet",
        "referentie",
        "verwerping",
        "referentie verwerping",
        "afwijzing",
    ),
    "pharmacy": (
        "pharmacy",
        "pharmacie",
        "apotheek",
        "inami pharmacie",
        "numéro inami",
        "riziv apotheek",
        "riziv nummer",
        "riziv",
        "inami",
        "nihii",
    ),
    "niss": (
        "niss",
        "inss",
        "insz",
        "ssin",
        "numéro national",
        "numéro de registre national",
        "registre national",
        "rijksregisternummer",
        "rijksregister",
    ),
    "mutuality": (
        "mutuality",
        "mutualité",
        "mutuelle",
        "organisme assureur",
        "ziekenfonds",
        "mutualiteit",
        "verzekeringsinstelling",
    ),
    "member_number": (
        "member_number",
        "member number",
        "numéro d'inscription",
        "numéro inscription",
        "numéro d'affiliation",
        "numéro de membre",
        "inschrijvingsnummer",
        "aansluitingsnummer",
        "lidnummer",
    ),
    "date": (
        "date",
        "datum",
        "dispensing date",
        "date de délivrance",
        "date délivrance",
        "date de prestation",
        "afleveringsdatum",
        "datum aflevering",
        "datum van aflevering",
        "prestatiedatum",
    ),
    "rejection_code": (
        "rejection_code",
        "rejection code",
        "code de rejet",
        "code rejet",
        "code",
        "weigeringscode",
        "verwerpingscode",
        "afwijzingscode",
    ),
}


def normalise(name: str) -> str:
    """``"Numéro d'Inscription "`` -> ``"numero d inscription"``."""
    text = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff"))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


_BY_NAME = {normalise(alias): column for column, names in ALIASES.items() for alias in names}


@dataclass(frozen=True)
class Row:
    line: int  # the file's line number (the header is line 1)
    values: dict[str, str]  # mcn's columns, by their canonical names
    extra: dict[str, str]  # the other columns, by their names in the file
    error: InvalidInput | None = None  # a line the CSV reader could not read


@dataclass
class Source:
    """An opened file of rejections: its header, dialect and rows."""

    path: Path
    encoding: str
    separator: str
    columns: dict[int, str]  # position -> canonical name
    extra: list[tuple[int, str]]  # position, name as in the file
    total: int  # data rows (blank rows not counted)
    _spool: IO[bytes] | None = None

    def rows(self) -> Iterator[Row]:
        with self.path.open(encoding=self.encoding, newline="") as text:
            reader = csv.reader(_skip_bom(text), delimiter=self.separator)
            next(reader, None)  # the header
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    yield Row(
                        reader.line_num,
                        {},
                        {},
                        InvalidInput("file", "csv", N_("unreadable line: {problem}"), problem=str(error)),
                    )
                    continue
                if not any(cell.strip() for cell in cells):
                    continue
                values = {name: _cell(cells, i) for i, name in self.columns.items()}
                extra = {name: _cell(cells, i) for i, name in self.extra}
                yield Row(reader.line_num, values, extra)

    @property
    def extra_names(self) -> list[str]:
        return [name for _, name in self.extra]

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


def _cell(cells: list[str], index: int) -> str:
    return cells[index] if index < len(cells) else ""


def _skip_bom(text: IO[str]) -> Iterator[str]:
    first = True
    for line in text:
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        yield line


def _encoding(path: Path) -> str:
    """The first of :data:`ENCODINGS` that decodes the whole file (read in chunks)."""
    for encoding in ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as raw:
                while chunk := raw.read(_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return "utf-8-sig" if encoding == "utf-8" else encoding
    raise InvalidInput(
        "file",
        "encoding",
        N_("{path} is neither UTF-8 nor Windows-1252 text: save it as CSV UTF-8 (or CSV from Excel)"),
        path=str(path),
    )


def sniff_separator(header: str) -> str:
    """The separator of ``header`` among ``,`` ``;`` and tab: the most frequent outside quotes."""
    outside = re.sub(r'"[^"]*"', "", header)
    counts = {sep: outside.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def open_source(file: str) -> Source:
    """The file (or standard input for ``-``), checked: encoding, separator, header."""
    spool: IO[bytes] | None = None
    if file == "-":
        spool = tempfile.NamedTemporaryFile(prefix="mcn-ot-", suffix=".csv")
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        path = Path(spool.name)
    else:
        path = Path(file)
    try:
        try:
            encoding = _encoding(path)
            with path.open(encoding=encoding, newline="") as text:
                header_line = text.readline().removeprefix("\ufeff")
                separator = sniff_separator(header_line)
                header = next(csv.reader(io.StringIO(header_line), delimiter=separator), [])
                total = _count(csv.reader(text, delimiter=separator))
        except OSError as error:
            raise InvalidInput(
                "file", "unreadable", N_("cannot read {path}: {reason}"), path=file, reason=error.strerror
            ) from None
        columns, extra = _header(header)
        return Source(path, encoding, separator, columns, extra, total, spool)
    except BaseException:
        if spool is not None:
            spool.close()
        raise


def _count(reader: Iterator[list[str]]) -> int:
    """The data rows (not blank; a line the reader cannot read counts: it fails alone later)."""
    total = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return total
        except csv.Error:
            total += 1
            continue
        if any(cell.strip() for cell in cells):
            total += 1


def _header(header: list[str]) -> tuple[dict[int, str], list[tuple[int, str]]]:
    columns: dict[int, str] = {}
    extra: list[tuple[int, str]] = []
    for position, name in enumerate(header):
        column = _BY_NAME.get(normalise(name))
        if column is None:
            if name.strip():
                extra.append((position, name.strip()))
            continue
        if column in columns.values():
            raise InvalidInput(
                "file",
                "header",
                N_("two columns name {column}: {name!r} repeats it"),
                column=column,
                name=name.strip(),
            )
        columns[position] = column
    found = set(columns.values())
    missing = [c for c in ("rejection", "date") if c not in found]
    if not ({"niss"} <= found or {"mutuality", "member_number"} <= found):
        missing.append("niss")
    if missing:
        raise InvalidInput(
            "file",
            "header",
            N_(
                "the first line must name the columns: {columns} (missing {missing}; "
                "French and Dutch names are accepted, see mcn ot batch --help)"
            ),
            columns=",".join(COLUMNS),
            missing=", ".join(missing),
        )
    return columns, extra
