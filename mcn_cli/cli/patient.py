"""The patient options shared by the commands that look a patient up (and their --session)."""

from __future__ import annotations

from typing import Annotated

import typer

from mcn_cli.cli.i18n import _
from mcn_cli.domain.consultation import PatientId
from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.identifiers import Member, parse_membership_number, parse_mutuality, parse_niss
from mcn_cli.domain.messages import N_


class Text:
    """Human text of the shared patient and session options (translate here)."""

    niss_help = _("The patient's NISS/INSZ (or BIS number).")
    mutuality_help = _("Mutuality code (3 digits), with --member-number.")
    member_help = _("Membership number at the mutuality (RegNrWithMut).")
    session_help = _("The eHealth session to use (default: MCN_SESSION when set, else \"default\").")


NissOption = Annotated[str | None, typer.Option("--niss", help=Text.niss_help, show_default=False)]
MutualityOption = Annotated[
    str | None, typer.Option("--mutuality", help=Text.mutuality_help, show_default=False)
]
MemberOption = Annotated[
    str | None, typer.Option("--member-number", help=Text.member_help, show_default=False)
]
SessionOption = Annotated[
    str,
    typer.Option("--session", "-s", help=Text.session_help, envvar="MCN_SESSION", show_default=False,
                 show_envvar=False),
]


def patient_from(niss: str | None, mutuality: str | None, member_number: str | None) -> PatientId:
    if niss is not None:
        if mutuality is not None or member_number is not None:
            raise InvalidInput(
                "patient", "one-identifier", N_("give --niss or --mutuality/--member-number, not both")
            )
        return parse_niss(niss)
    if mutuality is None and member_number is None:
        raise InvalidInput("patient", "missing", N_("give --niss, or --mutuality with --member-number"))
    if mutuality is None:
        raise InvalidInput("mutuality", "missing", N_("--member-number needs --mutuality"))
    if member_number is None:
        raise InvalidInput("member-number", "missing", N_("--mutuality needs --member-number"))
    return Member(parse_mutuality(mutuality), parse_membership_number(member_number))


def mask_niss(niss: str) -> str:
    return f"**.**.**-**{niss[8]}.{niss[9:11]}"


def mask_member(number: str) -> str:
    return "*" * max(len(number) - 3, 0) + number[-3:]
