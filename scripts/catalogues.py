"""The message catalogues (``mcn_cli/locale``), with Babel.

    python3 scripts/catalogues.py            collect, merge into fr/nl, compile
    python3 scripts/catalogues.py compile    compile only (after editing a .po)
    python3 scripts/catalogues.py check      exit 1 when mcn.pot or a .mo is not current

Collects every message of mcn (``_``, ``N_``, ``ngettext``; Click's and Typer's own words are
listed in ``mcn_cli/cli/clickwords.py``) into ``mcn.pot``,
merges it into the French and Dutch ``.po`` sources (what translators edit) and compiles the
``.mo`` files that ship in the package. tests/test_i18n.py fails on a message left untranslated
or fuzzy, or on a catalogue that is not current.
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "mcn_cli" / "locale"
LANGUAGES = ("fr", "nl")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
STAMP = datetime(2026, 11, 28, tzinfo=UTC)
WIDTH = 10_000  # one line per message: diffs stay readable


def collect() -> Catalog:
    # a fixed stamp: the catalogues change only when a message does (their test compares bytes)
    catalog = Catalog(project="mcn", fuzzy=False, creation_date=STAMP, revision_date=STAMP)
    for _filename, _lineno, message, comments, _context in extract_from_dir(
        str(ROOT / "mcn_cli"), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        catalog.add(message, auto_comments=comments)
    return catalog


def po_text(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(
        out, catalog, width=WIDTH, no_location=True, sort_output=True, omit_header=False, ignore_obsolete=True
    )
    return out.getvalue()


def mo_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "mcn.po"


def read(lang: str) -> Catalog:
    with po_path(lang).open("rb") as source:
        return read_po(source, locale=lang, domain="mcn")


def update() -> None:
    template = collect()
    (LOCALE / "mcn.pot").write_bytes(po_text(template))
    for lang in LANGUAGES:
        path = po_path(lang)
        if path.exists():
            catalog = read(lang)
            catalog.update(template, no_fuzzy_matching=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=lang, domain="mcn", project="mcn", fuzzy=False)
            catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path.write_bytes(po_text(catalog))


def compile_all() -> None:
    for lang in LANGUAGES:
        (po_path(lang).with_suffix(".mo")).write_bytes(mo_bytes(read(lang)))


def stale() -> list[str]:
    found = []
    if (LOCALE / "mcn.pot").read_bytes() != po_text(collect()):
        found.append("mcn_cli/locale/mcn.pot")
    for lang in LANGUAGES:
        if po_path(lang).with_suffix(".mo").read_bytes() != mo_bytes(read(lang)):
            found.append(f"mcn_cli/locale/{lang}/LC_MESSAGES/mcn.mo")
    return found


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "all"
    if action == "check":
        names = stale()
        for name in names:
            print(f"not current: {name} (run python3 scripts/catalogues.py)")
        return 1 if names else 0
    if action != "compile":
        update()
    compile_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
