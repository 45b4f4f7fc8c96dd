"""Click's and Typer's own words ("Usage:", "Options", "Missing option…") in the user's language.

The Click bundled in Typer writes its help and usage errors in English. Typer's part asks the
standard gettext domain (pointed at our catalogue by :mod:`mcn_cli.cli.i18n`); the rest is
translated here: the help formatter's headings and the help option's text, and the usage errors
recognised by their English form (anything not recognised stays as Click wrote it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from typer._click import core as click_core
from typer._click import formatting

from mcn_cli.cli.i18n import _
from mcn_cli.domain.messages import N_

# Typer asks gettext for these (typer/core.py): listed so that they are in our catalogue.
TYPER_WORDS = (
    N_("Options"),
    N_("Commands"),
    N_("Arguments"),
    N_("required"),
    N_("default: {default}"),
    N_("env var: {var}"),
    N_("No such command {name!r}."),
    N_("Missing command."),
    N_("Aborted!"),
)

HELP_OPTION = N_("Show this message and exit.")  # Click's own text for --help

# Type names Typer shows as metavars (<str>): words a pharmacist reads.
METAVARS = {
    "<str>": N_("<text>"),
    "<int>": N_("<number>"),
    "<float>": N_("<number>"),
    "<path>": N_("<path>"),
    "<file>": N_("<file>"),
}
_METAVAR = re.compile("|".join(re.escape(name) for name in METAVARS))


class Formatter(formatting.HelpFormatter):
    """Click's help formatter, speaking the user's language."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, metavars(args), _("Usage: ") if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        super().write_heading(_(heading))

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        super().write_dl([(metavars(term), option_help(text)) for term, text in rows], col_max, col_spacing)


def metavars(text: str) -> str:
    return _METAVAR.sub(lambda found: _(METAVARS[found.group(0)]), text)


def option_help(text: str) -> str:
    return _(HELP_OPTION) if text == HELP_OPTION else text


def install() -> None:
    """Every Click context formats help with :class:`Formatter`."""
    click_core.Context.formatter_class = Formatter


# Usage errors as Click words them, and ours: (pattern, message with the pattern's groups).
ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), message)
    for pattern, message in (
        (r"Missing option (?P<names>.+)\.", N_("Missing option {names}.")),
        (r"Missing argument (?P<names>.+)\.", N_("Missing argument {names}.")),
        (r"Missing parameter (?P<names>.+)\.", N_("Missing parameter {names}.")),
        (
            r"No such option: (?P<option>\S+) \(Possible options: (?P<options>.+)\)",
            N_("No such option: {option} (possible options: {options})"),
        ),
        (r"No such option: (?P<option>\S+)", N_("No such option: {option}")),
        (r"No such command '(?P<command>.+)'\.", N_("No such command '{command}'.")),
        (r"Got unexpected extra arguments? \((?P<args>.*)\)", N_("Unexpected extra argument(s): {args}")),
        (r"Option '(?P<option>.+)' requires an argument\.", N_("Option '{option}' needs a value.")),
        (
            r"Option '(?P<option>.+)' requires (?P<count>\d+) arguments\.",
            N_("Option '{option}' needs {count} values."),
        ),
        (r"Option '(?P<option>.+)' does not take a value\.", N_("Option '{option}' takes no value.")),
        (
            r"Invalid value for (?P<param>.+?): (?P<value>'.*') is not a valid integer\.",
            N_("Invalid value for {param}: {value} is not a whole number."),
        ),
        (
            r"Invalid value for (?P<param>.+?): (?P<value>'.*') is not one of (?P<choices>.+)\.",
            N_("Invalid value for {param}: {value} is not one of {choices}."),
        ),
        (
            r"Invalid value for (?P<param>.+?): (?:File|Directory|Path) (?P<path>'.*') does not exist\.",
            N_("Invalid value for {param}: {path} does not exist."),
        ),
        (r"Invalid value for (?P<param>.+?): (?P<detail>.*)", N_("Invalid value for {param}: {detail}")),
    )
)


def usage_error(message: str) -> str:
    """A Click usage error in the user's language (as Click wrote it when not recognised)."""
    for pattern, wording in ERRORS:
        found = pattern.fullmatch(message.strip())
        if found:
            return _(wording).format(**found.groupdict())
    return message
