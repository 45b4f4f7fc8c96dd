"""`mcn check`: validate and normalise identifiers, for people and shell scripts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import typer

from mcn_cli.cli.errors import human_hint
from mcn_cli.cli.i18n import _, day, render
from mcn_cli.cli.output import emit_json, emit_line
from mcn_cli.cli.records import sex_word
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.identifiers import (
    Kbo,
    Member,
    Mutuality,
    Nihii,
    Niss,
    parse_kbo,
    parse_member,
    parse_mutuality,
    parse_nihii,
    parse_niss,
)
from mcn_cli.status import ExitStatus


class Text:
    """Human text of `mcn check` (translate here)."""

    help = _("Validate and normalise identifiers (exit 0 when all are valid, 2 otherwise).")
    niss_help = _("Check NISS/INSZ or BIS numbers: check digits, birth date, sex.")
    nihii_help = _("Check NIHII/INAMI numbers: 8 digits for a pharmacy, 11 for a person.")
    kbo_help = _("Check company numbers (KBO/BCE).")
    mutuality_help = _("Check mutuality codes (306) or mutuality + membership number (306/1234567).")
    values_help = _("Values to check, in any usual written form.")
    json_help = _("Print JSON (a list, one object per value).")
    born = _("born {date}")
    born_unknown = _("birth date unknown")
    bis = _("BIS number")
    pharmacy = _("pharmacy")
    person = _("person, qualification {qualification}")
    titular = _("{kind} (titular pharmacist)")
    member = _("member {number}")
    invalid = _("mcn: {field} {value}: {detail}")
    invalid_hint = _("mcn: {field} {value}: {detail} ({hint})")
    # what each checked value is, for the error line (the field codes stay in JSON)
    fields: ClassVar[dict[str, str]] = {
        "niss": _("NISS"),
        "nihii": _("NIHII number"),
        "kbo": _("company number"),
        "mutuality": _("mutuality"),
        "member-number": _("membership number"),
    }


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)

Values = Annotated[list[str], typer.Argument(help=Text.values_help, show_default=False)]
Json = Annotated[bool, typer.Option("--json", help=Text.json_help)]


def _niss(niss: Niss) -> tuple[str, dict[str, Any]]:
    born = Text.born.format(date=day(niss.birth_date)) if niss.birth_date else Text.born_unknown
    details = [born, sex_word(niss.sex)] + ([Text.bis] if niss.bis else [])
    data = {
        "niss": niss.value,
        "formatted": niss.formatted,
        "birth_date": niss.birth_date,
        "sex": niss.sex,
        "bis": niss.bis,
    }
    return f"{niss.formatted}  {', '.join(details)}", data


def _nihii(nihii: Nihii) -> tuple[str, dict[str, Any]]:
    if nihii.is_pharmacy:
        kind = Text.pharmacy
    else:
        kind = Text.person.format(qualification=nihii.qualification)
        if nihii.is_titular:
            kind = Text.titular.format(kind=kind)
    data = {
        "nihii": nihii.value,
        "kind": "pharmacy" if nihii.is_pharmacy else "person",
        "qualification": nihii.qualification,
    }
    return f"{nihii.value}  {kind}", data


def _kbo(kbo: Kbo) -> tuple[str, dict[str, Any]]:
    return kbo.formatted, {"kbo": kbo.value, "formatted": kbo.formatted}


def _mutuality(value: str) -> tuple[str, dict[str, Any]]:
    member: Member | None = None
    if "/" in value or ":" in value:
        member = parse_member(value)
        mutuality: Mutuality = member.mutuality
    else:
        mutuality = parse_mutuality(value)
    data: dict[str, Any] = {
        "mutuality": mutuality.code,
        "union": mutuality.union,
        "insurer": mutuality.insurer,
    }
    insurer = _(mutuality.insurer)  # the union's name, in the user's language when catalogued
    text = f"{mutuality.code}  {insurer}"
    if member is not None:
        data["member_number"] = member.number
        text = f"{member}  {insurer}, {Text.member.format(number=member.number)}"
    return text, data


def _check(
    field: str, values: list[str], describe: Callable[[str], tuple[str, dict[str, Any]]], json: bool
) -> None:
    from mcn_cli.domain.text import visible

    results: list[dict[str, Any]] = []
    all_valid = True
    for value in values:
        try:
            text, data = describe(value)
        except InvalidInput as error:
            all_valid = False
            hint = human_hint(error)
            line = (Text.invalid_hint if hint else Text.invalid).format(
                field=Text.fields.get(error.field, error.field),
                value=visible(value),
                detail=visible(render(error.detail_id, error.params)),
                hint=visible(hint or ""),
            )
            sys.stderr.write(line + "\n")
            results.append(
                {
                    "input": value,
                    "valid": False,
                    "field": error.field,
                    "rule": error.rule,
                    "message": error.message,
                }
            )
            continue
        results.append({"input": value, "valid": True, **data})
        if not json:
            emit_line(text)
    if json:
        emit_json(results)
    if not all_valid:
        raise typer.Exit(ExitStatus.BAD_INPUT)


@app.command("niss", help=Text.niss_help)
def niss(values: Values, json: Json = False) -> None:
    _check("niss", values, lambda v: _niss(parse_niss(v)), json)


@app.command("nihii", help=Text.nihii_help)
def nihii(values: Values, json: Json = False) -> None:
    _check("nihii", values, lambda v: _nihii(parse_nihii(v)), json)


@app.command("kbo", help=Text.kbo_help)
def kbo(values: Values, json: Json = False) -> None:
    _check("kbo", values, lambda v: _kbo(parse_kbo(v)), json)


@app.command("mutuality", help=Text.mutuality_help)
def mutuality(values: Values, json: Json = False) -> None:
    _check("mutuality", values, _mutuality, json)
