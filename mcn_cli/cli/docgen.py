"""Regenerate completions/ and man/ from the Typer app: ``python -m mcn_cli.cli.docgen [ROOT]``.

The committed outputs are tested to be current (tests/test_docs.py). Man pages are written in
each language from the same texts as ``--help``: English in ``man/``, French and Dutch in
``man/fr/man1/`` and ``man/nl/man1/`` (``man -M man/fr mcn``). The completion scripts are the
same in every language: the descriptions they show come from the program at each Tab, in the
user's language.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer._click import core as click_core
from typer._click.shell_completion import get_completion_class
from typer.core import TyperGroup

from mcn_cli import __version__
from mcn_cli.cli import clickwords, i18n
from mcn_cli.cli.i18n import _
from mcn_cli.cli.main import app, root_command
from mcn_cli.domain.messages import N_
from mcn_cli.status import DESCRIPTIONS

SHELLS = {"bash": "mcn.bash", "zsh": "mcn.zsh", "fish": "mcn.fish"}

ENVIRONMENT = {
    "MCN_HOME": N_("Folder for all of mcn's files (config.toml, data); overrides the platform folders."),
    "MCN_DEBUG": N_("Set to 1 to show the traceback of an internal error."),
    "MCN_CACHE_PASSPHRASE": N_("The cache passphrase, when the cache is protected by one (else a prompt)."),
    "MCN_CACHE_NEW_PASSPHRASE": N_("The new passphrase for mcn cache rekey --passphrase (else a prompt)."),
    "MCN_ENV": N_("The eHealth environment: sandbox (default), acc or prod."),
    "MCN_LANG": N_("The language of the messages: fr, nl or en (else the lang setting, then the locale)."),
    "MCN_SESSION": N_('The eHealth session a command uses when --session is not given (else "default").'),
    "MCN_PIN": N_(
        "The eID PIN (else a hidden prompt; --pin-fd reads it from a file descriptor); "
        "also the PIN mcn sandbox init gives the sandbox tokens."
    ),
    "MCN_ORG_PASSWORD": N_("The organisation keystore's password (else a prompt, or --org-password-fd)."),
    "MCN_KEYSTORE_PASSWORD": N_(
        "The personal fallback keystore's password (else a prompt, or --password-fd)."
    ),
    "MCN_NEW_KEYSTORE_PASSWORD": N_("The password of a new keystore (mcn cert request; else a prompt)."),
    "MCN_LICENSE_USERNAME": N_("The username of MyCareNet's licence for the software package."),
    "MCN_LICENSE_PASSWORD": N_("The password of MyCareNet's licence for the software package."),
    "MCN_CACHE_KEY_FILE": N_("Where the cache's key file is (default: vault.key in the data folder)."),
    "MCN_STORE_URL": N_("The shared store's postgresql:// address (the store_url setting; empty: SQLite)."),
    "MCN_WORKSTATION": N_("This workstation's name in the shared store (default: the host name)."),
}


def completion_script(shell: str) -> str:
    command = typer.main.get_command(app)
    completion = get_completion_class(shell)
    assert completion is not None
    return completion(command, {}, "mcn", "_MCN_COMPLETE").source().rstrip("\n") + "\n"


def _roff(text: str) -> str:
    lines = []
    for line in text.replace("\\", "\\\\").replace("-", "\\-").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _paragraphs(text: str) -> str:
    blocks = [" ".join(block.split()) for block in text.strip().split("\n\n") if block.strip()]
    return "\n.PP\n".join(_roff(block) for block in blocks)


def _options(command: click_core.Command, ctx: click_core.Context) -> list[str]:
    out = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        names, help_text = clickwords.metavars(names), clickwords.option_help(help_text)
        out += [".TP", f"\\fB{_roff(names)}\\fR", _roff(" ".join(help_text.split())) or "."]
    return out


def _command_sections(command: click_core.Command, ctx: click_core.Context, level: str = ".SH") -> list[str]:
    out = [level + " " + _("SYNOPSIS") if level == ".SH" else f"{level} {ctx.command_path}"]
    pieces = clickwords.metavars(" ".join(command.collect_usage_pieces(ctx)))
    out += [f"\\fB{_roff(ctx.command_path)}\\fR {_roff(pieces)}"]
    if level == ".SH":
        out.append(".SH " + _("DESCRIPTION"))
    else:
        out.append(".PP")
    out.append(_paragraphs(command.help or ""))
    options = _options(command, ctx)
    if options:
        out += [
            ".PP" if level != ".SH" else ".SH " + _("OPTIONS"),
            *([_("Options:")] if level != ".SH" else []),
            *options,
        ]
    return out


def _exit_status() -> list[str]:
    out = [".SH " + _("EXIT STATUS")]
    for status, text in DESCRIPTIONS.items():
        out += [".TP", f"\\fB{int(status)}\\fR", _roff(_(text))]
    return out


def _header(name: str, summary: str) -> list[str]:
    title = _roff(name.upper())
    return [
        '.TH {title} 1 "" "mcn {version}" "{manual}"'.format(
            title=title, version=__version__, manual=_("mcn manual")
        ),
        ".SH " + _("NAME"),
        f"{_roff(name)} \\- {_roff(summary)}",
    ]


def man_pages() -> dict[str, str]:
    """The man pages in the current language."""
    root = root_command()
    root_ctx = click_core.Context(root, info_name="mcn", help_option_names=["-h", "--help"])
    assert isinstance(root, TyperGroup)
    pages: dict[str, str] = {}
    names = root.list_commands(root_ctx)
    lines = _header("mcn", _("MyCareNet for Belgian pharmacies and tarification offices"))
    lines += _command_sections(root, root_ctx)
    lines.append(".SH " + _("COMMANDS"))
    for name in names:
        sub = root.get_command(root_ctx, name)
        assert sub is not None
        lines += [".TP", f"\\fBmcn\\-{_roff(name)}\\fR(1)", _roff(sub.get_short_help_str(limit=100))]
    lines += _exit_status()
    lines.append(".SH " + _("ENVIRONMENT"))
    for var, text in ENVIRONMENT.items():
        lines += [".TP", f"\\fB{var}\\fR", _roff(_(text))]
    lines += [
        ".SH " + _("FILES"),
        ".TP",
        "\\fB$MCN_HOME/data/mcn.sqlite3\\fR",
        _roff(_("The encrypted cache and the audit trail (owner-only).")),
        ".SH CRON",
        _roff(_("Purge what billing no longer needs, every night:")),
        ".PP",
        "17 3 * * *  mcn cache purge",
    ]
    lines += [".SH " + _("SEE ALSO"), ", ".join(f"\\fBmcn\\-{_roff(n)}\\fR(1)" for n in names)]
    pages["mcn.1"] = "\n".join(lines) + "\n"
    for name in names:
        sub = root.get_command(root_ctx, name)
        assert sub is not None
        ctx = click_core.Context(sub, info_name=name, parent=root_ctx)
        lines = _header(f"mcn-{name}", sub.get_short_help_str(limit=100))
        lines += _command_sections(sub, ctx)
        if isinstance(sub, TyperGroup):
            lines.append(".SH " + _("COMMANDS"))
            for child_name in sub.list_commands(ctx):
                child = sub.get_command(ctx, child_name)
                assert child is not None
                child_ctx = click_core.Context(child, info_name=child_name, parent=ctx)
                lines += _command_sections(child, child_ctx, level=".SS")
        lines += _exit_status()
        lines += [".SH " + _("SEE ALSO"), "\\fBmcn\\fR(1)"]
        pages[f"mcn-{name}.1"] = "\n".join(lines) + "\n"
    return pages


MAN_DIRS = {"en": "man", "fr": "man/fr/man1", "nl": "man/nl/man1"}


def outputs() -> dict[str, str]:
    """Every generated file, by path relative to the project root."""
    before = i18n.language()
    try:
        i18n.use("en")
        files = {f"completions/{file}": completion_script(shell) for shell, file in SHELLS.items()}
        for lang, folder in MAN_DIRS.items():
            i18n.use(lang)
            files.update({f"{folder}/{name}": text for name, text in man_pages().items()})
    finally:
        i18n.use(before)
    return files


def write(root: Path) -> list[Path]:
    written = []
    for relative, text in outputs().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    generated = outputs()
    for folder in MAN_DIRS.values():
        for stale in (root / folder).glob("mcn*.1"):
            if f"{folder}/{stale.name}" not in generated:
                stale.unlink()
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
    for path in write(target):
        print(path)
