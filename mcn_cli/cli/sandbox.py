"""`mcn sandbox`: the built-in stand-in for eHealth and MyCareNet, on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import typer

from mcn_cli.cli.i18n import _, day, ngettext, render
from mcn_cli.cli.output import emit_fields, emit_json, emit_line, emit_result
from mcn_cli.domain.messages import N_, Message

if TYPE_CHECKING:
    from mcn_cli.sandbox.world import Pharmacy


class Text:
    """Human text of `mcn sandbox` (translate here)."""

    help = _(
        "The built-in sandbox: a local eHealth STS and MyCareNet over HTTPS on loopback, with test people."
    )
    init_help = _(
        "Create the sandbox (idempotent): test PKI, keystores (password mcn-sandbox) and, with SoftHSM2, "
        "eID tokens BELPIC for the test pharmacists. Their PIN comes from MCN_PIN or --pin-fd, else a "
        "hidden prompt on a terminal (asked twice); without a terminal it is 1234."
    )
    serve_help = _("Run the sandbox server in the foreground (commands otherwise start one in-process).")
    pin_fd_help = _(
        "Read the sandbox eID PIN (4 to 12 digits; a test PIN, not a real one) from this file descriptor."
    )
    port_help = _("Port on 127.0.0.1 (0: any free port).")
    json_help = _("Print JSON.")
    created = _("sandbox created in {root}")
    kept = _("sandbox already set up in {root}")
    tokens: ClassVar[dict[str, str]] = {
        "created": _("eID tokens (SoftHSM2, label BELPIC) created with the chosen PIN"),
        "kept": _("eID tokens kept (the PIN is unchanged)"),
        "unavailable": _(
            "no eID tokens: SoftHSM2 is not installed ({hint}); log in with --fallback KEYSTORE"
        ),
    }
    pharmacists = _("Pharmacists (fallback keystores):")
    pharmacies = _("Pharmacies:")
    no_certificate = _("no certificate yet: {command}")
    serving = _("sandbox serving on {url} (Ctrl-C to stop)")
    patients_help = _("The synthetic patients, one per situation, with the dispensing date that shows it.")
    fault_help = _(
        "Switch on a fault for the next requests: refused (network down), slow, http-500, soap-fault, "
        "malformed, throttle; none switches it off."
    )
    kind_help = _("refused, slow, http-500, soap-fault, malformed, throttle or none.")
    times_help = _("Only for this many requests (default: until switched off).")
    seconds_help = _("How long a slow answer takes.")
    fault_on = _("fault {kind!r} switched on")
    fault_off = _("faults switched off")
    issue_help = _(
        "Have the sandbox's eHealth CA sign a certificate request (writes the certificate with its chain)."
    )
    csr_help = _("The certificate request (PEM), as mcn cert request wrote it.")
    out_help = _("Where to write the certificate (default: beside the request, .issued.pem).")
    issued = _("certificate written to {path}: mcn cert install {path}")
    rejections_help = _(
        "Sample rejected invoice lines for a tarification office's tests, as the CSV mcn ot batch reads."
    )
    patient_headers = (_("SCENARIO"), _("NISS"), _("MUTUALITY"), _("MEMBER"), _("TRY --date"), _("SITUATION"))
    next_steps = _("next: MCN_PIN=<pin> mcn login")
    # errors: English source text (N_), shown translated, English in --json
    pin = N_("sandbox eID PIN")
    not_set_up = N_("the sandbox is not set up: run mcn sandbox init")
    port_busy = N_(
        "127.0.0.1:{port} is already in use (another mcn sandbox serve?): use --port 0 for a free port"
    )
    cannot_listen = N_("cannot listen on 127.0.0.1:{port}: {reason}")
    kind_choice = N_("must be none or one of {kinds}, got {value!r}")
    times_range = N_("must be 1 or more")
    unreadable = N_("cannot read {path}: {reason}")
    not_csr = N_("{path} is not a PEM certificate request")


app = typer.Typer(help=Text.help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)


@app.command("init", help=Text.init_help)
def init(
    pin_fd: Annotated[int | None, typer.Option("--pin-fd", help=Text.pin_fd_help, show_default=False)] = None,
    json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False,
) -> None:
    from mcn_cli.actions.secrets import new_pin
    from mcn_cli.sandbox import softhsm, world
    from mcn_cli.sandbox.setup import initialise

    pin = new_pin(Message(Text.pin), "MCN_PIN", fd=pin_fd, default=world.DEFAULT_PIN, fd_option="--pin-fd")
    report = initialise(pin)
    files = report.files
    people = [
        {
            "niss": p.niss,
            "name": p.name,
            "eid": p.eid is not None and report.tokens != "unavailable",
            "fallback_keystore": str(files.personal_keystore(p.niss)),
        }
        for p in world.PEOPLE
    ]
    pharmacies = [
        {
            "nihii": ph.nihii,
            "name": ph.name,
            "holder": ph.holder,
            "authorised": list(ph.authorised),
            "keystore": str(files.org_keystore(ph.nihii)) if ph.certified else None,
            # no certificate yet: the one to request through the sandbox's CertRA
            "request": None if ph.certified else _request_command(ph),
        }
        for ph in world.PHARMACIES
    ]
    if json:
        emit_json(
            {
                "created": report.created,
                "root": str(files.root),
                "tokens": report.tokens,
                "keystore_password": "mcn-sandbox",
                "pharmacists": people,
                "pharmacies": pharmacies,
                "tarification_office": {"nihii": world.OT_NIHII, "keystore": str(files.ot_keystore())},
            }
        )
        return
    emit_line((Text.created if report.created else Text.kept).format(root=files.root))
    emit_line(Text.tokens[report.tokens].format(hint=render(softhsm.INSTALL_HINT)))
    emit_fields(
        [(f"{p['name']} ({p['niss']})", p["fallback_keystore"]) for p in people],
        Text.pharmacists,
    )
    emit_fields(
        [
            (
                f"{ph['name']} ({ph['nihii']})",
                ph["keystore"] or Text.no_certificate.format(command=ph["request"]),
            )
            for ph in pharmacies
        ],
        Text.pharmacies,
    )
    emit_line(Text.next_steps)


def _request_command(pharmacy: Pharmacy) -> str:
    """The command line that asks the sandbox's CertRA for ``pharmacy``'s certificate."""
    import shlex

    return shlex.join(
        [
            *("mcn", "cert", "request", "--org", "--nihii", pharmacy.nihii, "--name", pharmacy.name),
            *("--email", "pharmacy@example.be", "--phone", "02/123.45.67"),
        ]
    )


@app.command("serve", help=Text.serve_help)
def serve(port: Annotated[int, typer.Option("--port", help=Text.port_help)] = 8443) -> None:
    import errno
    import json as json_module
    import os

    from mcn_cli.domain.errors import InvalidInput
    from mcn_cli.sandbox.server import Server
    from mcn_cli.sandbox.world import Files
    from mcn_cli.store.secure_files import write_private

    files = Files()
    if not files.exists():
        raise InvalidInput("sandbox", "not-initialised", Text.not_set_up)
    try:
        server = Server(files, port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise InvalidInput("port", "in-use", Text.port_busy, port=port) from None
        raise InvalidInput("port", "in-use", Text.cannot_listen, port=port, reason=error.strerror) from None
    write_private(files.server_file, json_module.dumps({"url": server.url, "pid": os.getpid()}).encode())
    emit_line(Text.serving.format(url=server.url))
    import sys

    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        files.server_file.unlink(missing_ok=True)
        server.stop()


@app.command("patients", help=Text.patients_help)
def patients(json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False) -> None:
    from datetime import date, timedelta

    from mcn_cli.cli.output import emit_table
    from mcn_cli.sandbox.population import population

    today = date.today()
    everyone = population(today)
    if json:
        emit_json(
            [
                {
                    "scenario": p.scenario,
                    "niss": p.niss,
                    "mutuality": p.mutuality,
                    "member_number": p.member,
                    "name": f"{p.first} {p.last}",
                    "dispensing_date": today + timedelta(days=p.try_date),
                    "description": p.description,
                }
                for p in everyone
            ]
        )
        return
    emit_table(
        Text.patient_headers,
        [
            (
                p.scenario,
                p.niss or "-",
                p.mutuality,
                p.member,
                day(today + timedelta(days=p.try_date)),
                render(p.description),
            )
            for p in everyone
        ],
    )


@app.command("fault", help=Text.fault_help)
def fault(
    kind: Annotated[str, typer.Argument(help=Text.kind_help, show_default=False)],
    times: Annotated[int | None, typer.Option("--times", help=Text.times_help, show_default=False)] = None,
    seconds: Annotated[float, typer.Option("--seconds", help=Text.seconds_help)] = 25.0,
    json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False,
) -> None:
    from mcn_cli.domain.errors import InvalidInput
    from mcn_cli.sandbox.insurability import FAULTS, set_fault
    from mcn_cli.sandbox.world import Files

    if kind != "none" and kind not in FAULTS:
        raise InvalidInput("kind", "choice", Text.kind_choice, kinds=", ".join(FAULTS), value=kind)
    if times is not None and times < 1:
        raise InvalidInput("times", "range", Text.times_range)
    files = Files()
    if not files.exists():
        raise InvalidInput("sandbox", "not-initialised", Text.not_set_up)
    set_fault(files, None if kind == "none" else kind, times, seconds)
    if json:
        emit_json({"fault": None if kind == "none" else kind, "times": times})
    elif kind == "none":
        emit_line(Text.fault_off)
    else:
        emit_line(_fault_on(kind, times))


def _fault_on(kind: str, times: int | None) -> str:
    if not times:
        return Text.fault_on.format(kind=kind)
    text = ngettext(
        "fault {kind!r} switched on for {times} request",
        "fault {kind!r} switched on for {times} requests",
        times,
    )
    return text.format(kind=kind, times=times)


@app.command("issue", help=Text.issue_help)
def issue(
    csr: Annotated[Path, typer.Argument(help=Text.csr_help, show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", help=Text.out_help, show_default=False)] = None,
    json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False,
) -> None:
    from cryptography import x509

    from mcn_cli.domain.errors import InvalidInput
    from mcn_cli.sandbox.ca import issue as sign
    from mcn_cli.sandbox.world import Files
    from mcn_cli.store.secure_files import write_private

    files = Files()
    if not files.exists():
        raise InvalidInput("sandbox", "not-initialised", Text.not_set_up)
    try:
        request = x509.load_pem_x509_csr(csr.read_bytes())
    except OSError as error:
        raise InvalidInput("csr", "unreadable", Text.unreadable, path=csr, reason=error.strerror) from None
    except ValueError:
        raise InvalidInput("csr", "format", Text.not_csr, path=csr) from None
    target = out or csr.with_name(csr.name.removesuffix(".csr") + ".issued.pem")
    write_private(target, sign(files, request))
    emit_result(json, {"certificate": str(target)}, Text.issued.format(path=target))


@app.command("rejections", help=Text.rejections_help)
def rejections(json: Annotated[bool, typer.Option("--json", help=Text.json_help)] = False) -> None:
    import csv
    import sys
    from datetime import date, timedelta

    from mcn_cli.sandbox.population import population
    from mcn_cli.sandbox.world import PARC

    today = date.today()
    chosen = ("annex-1", "annex-6", "newborn", "no-right", "multiple-io", "deceased", "third-party-elevated")
    people = {p.scenario: p for p in population(today)}
    lines = []
    for number, scenario in enumerate(chosen, start=1):
        patient = people[scenario]
        lines.append(
            {
                "rejection": f"SBX-REJ-{number:04d}",
                "pharmacy": PARC.nihii,
                "niss": patient.niss or "",
                "mutuality": "" if patient.niss else patient.mutuality,
                "member_number": "" if patient.niss else patient.member,
                "date": (today + timedelta(days=min(patient.try_date, -3))).isoformat(),
                "rejection_code": "INS01",
            }
        )
    if json:
        emit_json(lines)
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(lines[0]))
    writer.writeheader()
    writer.writerows(lines)
