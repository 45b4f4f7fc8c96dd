"""The user's language: French, Dutch or English, through gettext catalogues.

The language is, in order: ``--lang``, ``MCN_LANG``, the ``lang`` setting, the locale
(``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``fr_BE.UTF-8`` → French), English last.
Catalogues are ``mcn_cli/locale/<lang>/LC_MESSAGES/mcn.mo``, compiled from the ``.po`` sources
beside them (``scripts/catalogues.sh``). Only human text is translated: ``--json``, CSV
columns and exit statuses never change with the language.

Click's own messages ("Usage:", "Missing option…") go through the standard ``gettext`` domain,
which is pointed at the same catalogue, so a whole help page reads in one language.
"""

from __future__ import annotations

import gettext
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import Message, install_renderer

LANGUAGES = ("fr", "nl", "en")
DOMAIN = "mcn"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

# Command modules translate their texts when imported: switching language in one process (the
# tests do) forgets them so that they are imported again in the new language.
_KEEP = {"mcn_cli.cli", "mcn_cli.cli.main", "mcn_cli.cli.i18n", "mcn_cli.cli.errors", "mcn_cli.cli.output"}


class _State:
    language = "en"
    catalogue: gettext.NullTranslations = gettext.NullTranslations()


def language() -> str:
    return _State.language


def _from_locale(value: str) -> str | None:
    """``fr_BE.UTF-8`` → ``fr``; None when the locale names none of our languages."""
    for part in value.split(":"):
        code = part.split(".")[0].split("@")[0].split("_")[0].lower()
        if code in LANGUAGES:
            return code
        if code in ("c", "posix"):
            return "en"
    return None


def _checked(value: str, field: str) -> str:
    code = value.strip().lower()
    if code not in LANGUAGES:
        raise InvalidInput(field, "choice", "must be fr, nl or en, got {value!r}", value=value)
    return code


def choose(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """The language for this command line (see the module's docstring)."""
    environ = os.environ if environ is None else environ
    for index, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and index + 1 < len(argv):
            return _checked(argv[index + 1], "lang")
        if arg.startswith("--lang="):
            return _checked(arg.partition("=")[2], "lang")
    if environ.get("MCN_LANG"):
        return _checked(environ["MCN_LANG"], "MCN_LANG")
    configured = _configured()
    if configured:
        return configured
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(name):
            found = _from_locale(environ[name])
            if found:
                return found
            if name != "LANGUAGE":  # LANGUAGE is a list of wishes; the others decide alone
                return "en"
    return "en"


def _configured() -> str:
    from mcn_cli.store import settings

    return settings.configured_language()


def without_lang(argv: Sequence[str]) -> list[str]:
    """The command line without ``--lang X`` (accepted anywhere before ``--``)."""
    out: list[str] = []
    skip = False
    rest = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if not rest and arg == "--lang":
            skip = True
            continue
        if not rest and arg.startswith("--lang="):
            continue
        rest = rest or arg == "--"
        out.append(arg)
    return out


def use(code: str) -> None:
    """Speak ``code`` from now on (also Click's own messages, through the gettext domain)."""
    changed = code != _State.language
    _State.language = code
    _State.catalogue = gettext.translation(DOMAIN, LOCALE_DIR, [code], fallback=True)
    os.environ["LANGUAGE"] = code  # read by gettext.gettext, which Click's messages use
    gettext.bindtextdomain(DOMAIN, str(LOCALE_DIR))
    gettext.textdomain(DOMAIN)
    install_renderer(render)  # prompts asked below cli/ (PINs, passwords) in the same language
    if changed:
        _forget_commands()


def _forget_commands() -> None:
    for name in [n for n in sys.modules if n.startswith("mcn_cli.cli.") and n not in _KEEP]:
        del sys.modules[name]
    main = sys.modules.get("mcn_cli.cli.main")
    if main is not None:
        main.load_command.cache_clear()


def _(msgid: str) -> str:
    """``msgid`` in the user's language."""
    return _State.catalogue.gettext(msgid)


def ngettext(singular: str, plural: str, count: int) -> str:
    return _State.catalogue.ngettext(singular, plural, count)


def render(msgid: str | Message, params: Mapping[str, object] | None = None) -> str:
    """A message in the user's language with its parameters filled in (parameters that are
    messages, dates or booleans are rendered the same way)."""
    if isinstance(msgid, Message):
        msgid, params = msgid.msgid, msgid.params
    text = _(msgid)
    if not params:
        return text
    values = {name: value_text(value) for name, value in params.items()}
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):  # a broken translation must not hide the message
        return msgid.format(**values)


def value_text(value: object) -> object:
    if isinstance(value, Message):
        return render(value)
    if isinstance(value, datetime):
        return moment(value)
    if isinstance(value, date):
        return day(value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return value


def day(value: date) -> str:
    """A date as people write it here: 28/11/2026 in French and Dutch, ISO in English."""
    if _State.language == "en":
        return value.isoformat()
    return value.strftime("%d/%m/%Y")


def moment(value: datetime, *, zone: bool = False) -> str:
    """A time in local time (``28/11/2026 14:05``), with its zone only when asked."""
    local = value.astimezone()
    text = f"{day(local.date())} {local:%H:%M}"
    return f"{text} {local:%Z}" if zone else text


YES = ("y", "yes", "o", "oui", "j", "ja")
NO = ("n", "no", "non", "nee", "neen")


def answer(text: str) -> bool | None:
    """True for y/yes, o/oui, j/ja; False for n/no/non/nee; None for anything else."""
    word = text.strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    return None


def confirm(question: str, *, default: bool = False) -> bool:
    """Ask a yes/no question on stderr; y/yes, o/oui and j/ja all mean yes. An empty answer is
    the default; anything else asks again. Ctrl-C or end of input ends the line and aborts."""
    choices = _("[y/N]") if not default else _("[Y/n]")
    while True:
        sys.stderr.write(f"{question} {choices} ")
        sys.stderr.flush()
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            sys.stderr.write("\n")
            raise
        if not line:  # end of input: the question cannot be answered
            sys.stderr.write("\n")
            raise KeyboardInterrupt
        if not line.strip():
            return default
        decided = answer(line)
        if decided is not None:
            return decided
        sys.stderr.write(_("Please answer yes or no.") + "\n")
