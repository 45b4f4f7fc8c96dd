"""One table of exit statuses for the whole program.

Documented in README.md and man/mcn.1; every command uses these and nothing else.
"""

from __future__ import annotations

from enum import IntEnum

from mcn_cli.domain.messages import N_


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1  # unexpected failure (a bug): report it
    BAD_INPUT = 2  # invalid value or usage; nothing was sent or written
    NO_COMMITMENT = 3  # no right at this date, or no payment commitment may be used
    AUTH_NEEDED = 4  # no valid eHealth session: log in
    SERVICE_UNAVAILABLE = 5  # network or service down: use the emergency flow (mcn fallback)
    POLICY_REFUSED = 6  # refused by the legitimate-use rules
    DATA_INTEGRITY = 7  # local data unreadable: wrong key, tampered record, broken audit chain
    NO_DATABASE = 8  # the data folder holds no database (a mistyped MCN_HOME?): nothing was done
    INTERRUPTED = 130  # Ctrl-C


# English source text (msgids): cli/ shows _(DESCRIPTIONS[status]).
DESCRIPTIONS: dict[ExitStatus, str] = {
    ExitStatus.OK: N_("success"),
    ExitStatus.ERROR: N_("unexpected failure (a bug: run again with MCN_DEBUG=1 and report the traceback)"),
    ExitStatus.BAD_INPUT: N_("bad input or usage; nothing was sent or written"),
    ExitStatus.NO_COMMITMENT: N_("no right at this date, or no payment commitment may be used"),
    ExitStatus.AUTH_NEEDED: N_("authentication needed: no valid eHealth session (run mcn login)"),
    ExitStatus.SERVICE_UNAVAILABLE: N_("service unavailable: use the emergency flow (mcn fallback)"),
    ExitStatus.POLICY_REFUSED: N_("refused by the legitimate-use policy"),
    ExitStatus.DATA_INTEGRITY: N_("local data integrity: wrong key, tampered record or audit chain"),
    ExitStatus.NO_DATABASE: N_("no local database in the data folder (check MCN_HOME); nothing was done"),
    ExitStatus.INTERRUPTED: N_("interrupted (Ctrl-C)"),
}
