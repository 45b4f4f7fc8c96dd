"""Entry point: builds the Typer app and runs it with one error-to-exit-status mapping."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any, NoReturn

import typer
from typer._click import _textwrap
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from mcn_cli import __version__
from mcn_cli.cli import clickwords, i18n, output
from mcn_cli.cli.errors import report, status_for, warn
from mcn_cli.cli.i18n import _
from mcn_cli.domain.errors import InvalidInput, KeyLost, McnError
from mcn_cli.domain.messages import N_
from mcn_cli.status import ExitStatus

HELP = N_(
    "MyCareNet for Belgian pharmacies and tarification offices.\n\n"
    "Consult a patient's rights and payment commitment, work out coverage and reuse, "
    "and follow the emergency flow when the network is down."
)
VERSION_HELP = N_("Show the version and exit.")
ENV_HELP = N_("eHealth environment: sandbox, acc or prod (default: MCN_ENV, config, sandbox).")
LANG_HELP = N_("Language of the messages: fr, nl or en (default: MCN_LANG, config, locale, en).")

# Help text wraps at spaces only: Click would break "--no-document-conformity" or
# "NIHII-PHARMACY" at a hyphen, and a name cut in two cannot be copied (the bundled Click's own
# wrapper class; other users of textwrap are untouched).
_textwrap.TextWrapper.wordsep_re = _textwrap.TextWrapper.wordsep_simple_re

# Commands by name, imported only when run (shell completion and scripts stay fast): the module
# under mcn_cli.cli and either its Typer app (a command group) or its command function.
COMMANDS: dict[str, tuple[str, str]] = {
    "login": ("session", "login"),
    "logout": ("session", "logout"),
    "session": ("session", "app"),
    "consult": ("consult", "consult"),
    "ot": ("ot", "app"),
    "check": ("check", "app"),
    "coverage": ("coverage", "coverage"),
    "reuse": ("reuse", "reuse"),
    "fallback": ("fallback", "fallback"),
    "cache": ("cache", "app"),
    "billing": ("billing", "app"),
    "audit": ("audit", "app"),
    "cert": ("cert", "app"),
    "sandbox": ("sandbox", "app"),
    "demo": ("demo", "demo"),
    "store": ("store", "app"),
}
_HELP_TEXT = {"login": "login_help", "logout": "logout_help"}  # else the module's Text.help


@cache
def load_command(name: str) -> Any:
    module_name, attribute = COMMANDS[name]
    module = importlib.import_module(f"mcn_cli.cli.{module_name}")
    target = getattr(module, attribute)
    if isinstance(target, typer.Typer):
        command = typer.main.get_command(target)
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(name, help=getattr(module.Text, _HELP_TEXT.get(name, "help")))(target)
        command = typer.main.get_command(single)
    command.name = name
    _whole_short_help(command)
    return command


def _whole_short_help(command: Any) -> None:
    """Command lists show each command's first sentence whole (Click cuts it at 45 characters
    with "..."): set it as the short help, through the whole tree."""
    if command.help and not command.short_help:
        first = command.help.strip().split("\n\n")[0]
        cut = first.find(". ")
        command.short_help = " ".join((first if cut < 0 else first[: cut + 1]).split())
    for sub in getattr(command, "commands", {}).values():
        _whole_short_help(sub)


class LazyCommands(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return load_command(cmd_name) if cmd_name in COMMANDS else None


app = typer.Typer(
    name="mcn",
    cls=LazyCommands,
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"mcn {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help=VERSION_HELP, callback=_version, is_eager=True),
    ] = False,
    env: Annotated[str | None, typer.Option("--env", help=ENV_HELP, show_default=False)] = None,
    lang: Annotated[str | None, typer.Option("--lang", help=LANG_HELP, show_default=False)] = None,
) -> None:
    """MyCareNet for Belgian pharmacies and tarification offices."""
    if env is not None:
        if env not in ("sandbox", "acc", "prod"):
            raise InvalidInput("env", "choice", N_("must be sandbox, acc or prod, got {value!r}"), value=env)
        os.environ["MCN_ENV"] = env


def root_command() -> Any:
    """The whole program's Click command, its own texts in the user's language (the commands'
    texts are translated when their module is imported)."""
    command = typer.main.get_command(app)
    command.help = _(HELP)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = _(param.help)
    return command


def _show_store_warnings() -> None:
    """The store tells when it falls back to this workstation's spool: a warning on stderr."""
    from mcn_cli.store import backend

    backend.warn = lambda message: warn(i18n.render(message))


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line and return its exit status; never raises for user errors."""
    args = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args
    output.reset()
    try:
        i18n.use(i18n.choose(args))
    except McnError as error:
        return report(status_for(error), error.message, json_mode=json_mode, error=error)
    args = i18n.without_lang(args)
    if os.environ.get("_MCN_COMPLETE"):  # Typer renders completion help with rich, which would
        os.environ["COLUMNS"] = "10000"  # wrap a description across lines inside the shell's string
    clickwords.install()
    _show_store_warnings()
    command = root_command()
    try:
        result = command.main(args=args, prog_name="mcn", standalone_mode=False)
    except McnError as error:
        if isinstance(error, KeyLost):  # whatever command unlocked the cache: the way out
            from mcn_cli.cli.cache import key_recovery

            key_recovery(error)
        status = status_for(error)
        return report(status, error.message, json_mode=json_mode, error=error)
    except click_exceptions.NoArgsIsHelpError as error:
        text = error.format_message()  # rich help is printed already and leaves this empty
        if text:
            sys.stdout.write(text + "\n")
        return int(ExitStatus.BAD_INPUT)
    except click_exceptions.UsageError as error:
        where = f"mcn {error.ctx.command_path.partition(' ')[2]}".strip() if error.ctx else "mcn"
        english = error.format_message()
        message = f"{english} (see '{where} --help')"
        shown = _("{message} (see '{command} --help')").format(
            message=clickwords.usage_error(english), command=where
        )
        return report(ExitStatus.BAD_INPUT, message, json_mode=json_mode, shown=shown)
    except click_exceptions.ClickException as error:
        english = error.format_message()
        shown = clickwords.usage_error(english)
        return report(ExitStatus.BAD_INPUT, english, json_mode=json_mode, shown=shown)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("\n" + _("mcn: interrupted") + "\n")
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitStatus.OK)
    except Exception as error:  # a bug: one line, the traceback only on request
        if os.environ.get("MCN_DEBUG"):
            raise
        return report(
            ExitStatus.ERROR,
            f"internal error: {type(error).__name__}: {error} (set MCN_DEBUG=1 for the traceback)",
            json_mode=json_mode,
            error=McnError(
                N_("internal error: {kind}: {error} (set MCN_DEBUG=1 for the traceback)"),
                kind=type(error).__name__,
                error=str(error),
            ),
        )
    status = int(result) if isinstance(result, int) else int(ExitStatus.OK)
    if status == ExitStatus.INTERRUPTED:  # Typer turns Ctrl-C in a command into a silent 130
        sys.stderr.write(_("mcn: interrupted") + "\n")
    return status


def main() -> NoReturn:
    sys.exit(run())
