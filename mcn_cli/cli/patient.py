"""The patient options shared by the commands that look a patient up."""

from __future__ import annotations

from typing import Annotated

import typer

from mcn_cli.domain.consultation import PatientId
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.identifiers import Member, parse_membership_number, parse_mutuality, parse_niss

NissOption = Annotated[
    str | None, typer.Option("--niss", help="The patient's NISS/INSZ (or BIS number).", show_default=False)
]
MutualityOption = Annotated[
    str | None,
    typer.Option("--mutuality", help="Mutuality code (3 digits), with --member-number.", show_default=False),
]
MemberOption = Annotated[
    str | None,
    typer.Option(
        "--member-number", help="Membership number at the mutuality (RegNrWithMut).", show_default=False
    ),
]


def patient_from(niss: str | None, mutuality: str | None, member_number: str | None) -> PatientId:
    if niss is not None:
        if mutuality is not None or member_number is not None:
            raise InvalidInput(
                "patient", "one-identifier", "give --niss or --mutuality/--member-number, not both"
            )
        return parse_niss(niss)
    if mutuality is None and member_number is None:
        raise InvalidInput("patient", "missing", "give --niss, or --mutuality with --member-number")
    if mutuality is None:
        raise InvalidInput("mutuality", "missing", "--member-number needs --mutuality")
    if member_number is None:
        raise InvalidInput("member-number", "missing", "--mutuality needs --member-number")
    return Member(parse_mutuality(mutuality), parse_membership_number(member_number))


def mask_niss(niss: str) -> str:
    return f"**.**.**-**{niss[8]}.{niss[9:11]}"


def mask_member(number: str) -> str:
    return "*" * max(len(number) - 3, 0) + number[-3:]
