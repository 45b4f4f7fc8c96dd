"""`mcn demo`: the main job end to end against the built-in sandbox, in one command."""

from __future__ import annotations

import os
from datetime import date
from typing import Annotated

import typer

from mcn_cli.cli.i18n import _, moment
from mcn_cli.cli.output import emit_json, emit_line
from mcn_cli.domain.messages import N_


class Text:
    """Human text of `mcn demo` (translate here)."""

    help = _(
        "Run the main job against the built-in sandbox: set it up, log in with the sandbox eID "
        "(PIN from MCN_PIN, else 1234), consult two patients, show the cache."
    )
    json_help = _("Print JSON.")
    step_init = "$ mcn sandbox init"
    step_login = "$ mcn login"
    step_login_fallback = _(
        "$ mcn login --fallback {keystore}   (no SoftHSM2: the personal fallback certificate)"
    )
    step_consult = "$ mcn consult {who}"
    step_list = "$ mcn cache list"
    session = _("session open for {user} at pharmacy {pharmacy} until {until}")
    done = _(
        "Done. Try: mcn sandbox patients, mcn consult --niss <NISS>, mcn reuse, mcn fallback, "
        "mcn audit report"
    )


ONLY_SANDBOX = N_("the demo runs only in the sandbox environment")


def demo(json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False) -> None:
    """Run the main job against the sandbox."""
    from mcn_cli.actions.consult import consult
    from mcn_cli.actions.login import login
    from mcn_cli.cli import cache
    from mcn_cli.cli import consult as consult_cli
    from mcn_cli.cli.output import emit_fields
    from mcn_cli.domain.errors import InvalidInput
    from mcn_cli.domain.identifiers import parse_member, parse_niss
    from mcn_cli.ehealth.endpoints import environment_name
    from mcn_cli.sandbox import population, world
    from mcn_cli.sandbox.setup import initialise
    from mcn_cli.store.settings import load

    settings = load()
    if environment_name(settings) != "sandbox":
        raise InvalidInput("env", "sandbox-only", ONLY_SANDBOX)
    pin = os.environ.get("MCN_PIN") or world.DEFAULT_PIN
    say = (lambda text: None) if json else emit_line
    say(Text.step_init)
    report = initialise(pin)
    if report.tokens == "unavailable":
        keystore = report.files.personal_keystore(world.ANNE.niss)
        say(Text.step_login_fallback.format(keystore=keystore))
        session = login(fallback=keystore, settings=settings)
    else:
        say(Text.step_login)
        os.environ["MCN_PIN"] = pin
        session = login(settings=settings)
    say(
        Text.session.format(
            user=session.user_name, pharmacy=session.organisation, until=moment(session.expires_at)
        )
    )
    today = date.today()
    people = {p.scenario: p for p in population.population(today)}
    results = []
    for patient, who in (
        (parse_niss(people["annex-1"].niss or ""), f"--niss {people['annex-1'].niss}"),
        (
            parse_member(f"{people['newborn'].mutuality}/{people['newborn'].member}"),
            f"--mutuality {people['newborn'].mutuality} --member-number {people['newborn'].member}",
        ),
    ):
        say("")
        say(Text.step_consult.format(who=who))
        result = consult(patient, today, settings=settings)
        results.append({"record": result.record, "outcome": result.outcome})
        if not json:
            emit_fields(consult_cli.rows(result))
    if json:
        emit_json(
            {
                "session": session.name,
                "user": session.user_niss,
                "pharmacy": session.organisation,
                "consultations": results,
            }
        )
        return
    say("")
    say(Text.step_list)
    cache.list_records(state=None, reveal=False, json=False)
    say("")
    say(Text.done)
