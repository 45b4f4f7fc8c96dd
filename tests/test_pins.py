"""PINs: never on a command line, checked for form before any token sees them (issue 11, item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcn_cli.sandbox.world import DEFAULT_PIN
from mcn_cli.status import ExitStatus
from tests.conftest import SANDBOX_PIN

NEW_PIN = "246813"

BAD_PINS = {
    "too-short": "123",
    "too-long": "1234567890123",
    "huge": "7" * 10_000,
    "newline-inside": "12\n34",
    "trailing-newline": "1234\n",  # only a file descriptor's last newline is taken off
    "full-width": "１２３４",  # str.isdigit() says yes
    "arabic-indic": "١٢٣٤",
    "superscript": "¹²³⁴",
    "space-inside": "12 34",
    "leading-space": " 1234",
    "trailing-space": "1234 ",
    "letters": "12ab",
    "sign": "+1234",
}


def fd_with(data: bytes) -> int:
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return read


class _Spy:
    def __init__(self, inner, seen: list) -> None:
        self._inner = inner
        self._seen = seen

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


class _TokenSpy(_Spy):
    def open(self, *args, **kwargs):
        self._seen.append(kwargs.get("user_pin"))
        return self._inner.open(*args, **kwargs)


class _LibrarySpy(_Spy):
    def get_tokens(self, *args, **kwargs):
        return [_TokenSpy(t, self._seen) for t in self._inner.get_tokens(*args, **kwargs)]


@pytest.fixture
def pins_seen(monkeypatch) -> list:
    """Every user PIN the eID login hands to a token (None for sessions without login)."""
    from mcn_cli.ehealth import signers

    seen: list = []
    real = signers.pkcs11_library
    monkeypatch.setattr(signers, "pkcs11_library", lambda module: _LibrarySpy(real(module), seen))
    return seen


@pytest.fixture
def children(monkeypatch) -> list:
    """The argv of every child process started (subprocess, os.system, exec, spawn)."""
    started: list = []
    real_init = subprocess.Popen.__init__

    def popen(self, args, *rest, **kwargs):
        started.append(args)
        return real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", popen)
    for name in ("system", "posix_spawn", "posix_spawnp", "execv", "execve", "execvp", "execvpe", "spawnv"):
        if hasattr(os, name):
            real = getattr(os, name)
            monkeypatch.setattr(
                os,
                name,
                lambda *args, _real=real, **kwargs: (started.append(args), _real(*args, **kwargs))[1],
            )
    return started


def no_failed_login(sandbox) -> bool:
    """SoftHSM marks a token USER_PIN_COUNT_LOW after a wrong PIN: a try was used."""
    from pkcs11 import TokenFlag

    from mcn_cli.ehealth.signers import EID_TOKEN, pkcs11_library
    from mcn_cli.sandbox import softhsm

    softhsm.configure(sandbox.softhsm)
    library = pkcs11_library(softhsm.module())
    tokens = list(library.get_tokens(token_label=EID_TOKEN))
    assert tokens
    return not any(t.flags & (TokenFlag.USER_PIN_COUNT_LOW | TokenFlag.USER_PIN_LOCKED) for t in tokens)


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("mcn: error: ") and "Traceback" not in err


# --- no PIN on any command line ---------------------------------------------------------------


def test_tokens_are_made_without_any_child_process(mcn, sandbox, children, monkeypatch):
    from mcn_cli.sandbox.softhsm import SO_PIN

    monkeypatch.setenv("MCN_PIN", NEW_PIN)
    result = mcn("sandbox", "init", "--json")
    assert result.code == 0, result.err
    assert result.json()["tokens"] == "created"
    assert children == [], "the tokens must be made through PKCS#11, not a command line"
    assert not any(NEW_PIN in str(argv) or SO_PIN in str(argv) for argv in children)


def test_the_softhsm_code_runs_no_program():
    from mcn_cli.sandbox import softhsm

    source = Path(softhsm.__file__).read_text(encoding="utf-8")
    assert "import subprocess" not in source and "os.system" not in source


def test_the_pin_option_is_gone(mcn, sandbox):
    result = mcn("sandbox", "init", "--pin", "5678")
    assert result.code == ExitStatus.BAD_INPUT and "--pin" in result.err
    assert "--pin " not in mcn("sandbox", "init", "--help").out.replace("--pin-fd", "")


# --- where sandbox init takes the PIN from ----------------------------------------------------


def test_init_with_mcn_pin_sets_the_pin_login_needs(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", NEW_PIN)
    assert mcn("sandbox", "init", "--json").json()["tokens"] == "created"
    assert mcn("login").code == 0
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login", "--session", "old-pin").code == ExitStatus.AUTH_NEEDED


def test_init_with_the_same_pin_keeps_the_tokens(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    result = mcn("sandbox", "init", "--json").json()
    assert result["created"] is False and result["tokens"] == "kept"


def test_init_with_pin_fd_sets_the_pin_login_needs(mcn, sandbox, monkeypatch):
    fd = fd_with((NEW_PIN + "\n").encode())
    try:
        result = mcn("sandbox", "init", "--pin-fd", str(fd), "--json")
    finally:
        os.close(fd)
    assert result.code == 0, result.err
    assert result.json()["tokens"] == "created"
    monkeypatch.setenv("MCN_PIN", NEW_PIN)
    assert mcn("login").code == 0


def test_pin_fd_wins_over_mcn_pin(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    fd = fd_with(NEW_PIN.encode())  # no newline at all is fine too
    try:
        assert mcn("sandbox", "init", "--pin-fd", str(fd), "--json").json()["tokens"] == "created"
    finally:
        os.close(fd)
    monkeypatch.setenv("MCN_PIN", NEW_PIN)
    assert mcn("login").code == 0


def test_init_without_pin_or_terminal_uses_the_documented_1234(mcn, sandbox, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    monkeypatch.setattr("getpass.getpass", lambda *a, **k: pytest.fail("no prompt without a terminal"))
    assert DEFAULT_PIN == "1234"
    assert mcn("sandbox", "init", "--json").json()["tokens"] == "created"
    monkeypatch.setenv("MCN_PIN", "1234")
    assert mcn("login").code == 0


def test_init_on_a_terminal_asks_twice(mcn, sandbox, monkeypatch):
    prompts: list[str] = []
    answers = iter([NEW_PIN, NEW_PIN])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": (prompts.append(prompt), next(answers))[1])
    assert mcn("sandbox", "init", "--json").json()["tokens"] == "created"
    assert len(prompts) == 2
    monkeypatch.setenv("MCN_PIN", NEW_PIN)
    assert mcn("login").code == 0


def test_init_on_a_terminal_refuses_two_different_pins(mcn, sandbox, monkeypatch):
    answers = iter([NEW_PIN, "246814"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    result = mcn("sandbox", "init")
    assert result.code == ExitStatus.BAD_INPUT and one_line(result.err) and "differ" in result.err
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0  # the tokens were not touched


def test_init_on_a_terminal_enter_keeps_1234(mcn, sandbox, monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "")
    assert mcn("sandbox", "init", "--json").json()["tokens"] == "created"
    monkeypatch.setenv("MCN_PIN", "1234")
    assert mcn("login").code == 0


# --- bad PIN forms: exit 2, one line, before any token ----------------------------------------


@pytest.mark.parametrize("pin", BAD_PINS.values(), ids=BAD_PINS.keys())
def test_bad_pin_at_login_costs_no_try(mcn, sandbox, monkeypatch, pins_seen, pin):
    monkeypatch.setenv("MCN_PIN", pin)
    result = mcn("login")
    assert result.code == ExitStatus.BAD_INPUT, result.err
    assert one_line(result.err) and ("4 to 12" in result.err or "0-9" in result.err)
    assert pin.strip() not in result.err
    assert [p for p in pins_seen if p is not None] == [], "the token saw the bad PIN"
    assert no_failed_login(sandbox)
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    assert pins_seen[-1] == SANDBOX_PIN  # the spy does see PINs


@pytest.mark.parametrize(
    "data",
    [b"12\n34\n", b"1234\n\n", b"1234 \n", "１２３４\n".encode(), b"7" * 10_000, b"\xff\xfe12\n", b"\n", b""],
    ids=["two-lines", "two-newlines", "space", "full-width", "huge", "not-utf8", "newline-only", "empty"],
)
def test_bad_pin_from_a_file_descriptor_at_login(mcn, sandbox, monkeypatch, pins_seen, data):
    fd = fd_with(data)
    try:
        result = mcn("login", "--pin-fd", str(fd))
    finally:
        os.close(fd)
    assert result.code == ExitStatus.BAD_INPUT, result.err
    assert one_line(result.err)
    assert [p for p in pins_seen if p is not None] == []
    assert no_failed_login(sandbox)


@pytest.mark.parametrize("pin", BAD_PINS.values(), ids=BAD_PINS.keys())
def test_bad_pin_at_init_touches_nothing(mcn, sandbox, monkeypatch, pin):
    from mcn_cli.ehealth import signers
    from mcn_cli.sandbox import softhsm

    before = {p: p.stat().st_mtime_ns for p in sandbox.softhsm.rglob("*") if p.is_file()}
    monkeypatch.setattr(softhsm, "pkcs11_library", lambda module: pytest.fail("a token was reached"))
    monkeypatch.setattr(signers, "pkcs11_library", lambda module: pytest.fail("a token was reached"))
    monkeypatch.setenv("MCN_PIN", pin)
    result = mcn("sandbox", "init", "--json")
    assert result.code == ExitStatus.BAD_INPUT, result.err
    assert one_line(result.err) and pin.strip() not in result.err
    assert {p: p.stat().st_mtime_ns for p in sandbox.softhsm.rglob("*") if p.is_file()} == before
    monkeypatch.undo()


@pytest.mark.parametrize("data", [b"12\n34\n", b"1234\r\n\n", "１２３４".encode(), b" 1234\n"])
def test_bad_pin_fd_at_init(mcn, sandbox, monkeypatch, data):
    fd = fd_with(data)
    try:
        result = mcn("sandbox", "init", "--pin-fd", str(fd))
    finally:
        os.close(fd)
    assert result.code == ExitStatus.BAD_INPUT and one_line(result.err)
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    assert no_failed_login(sandbox)


def test_bad_pin_at_the_terminal_prompt_of_init(mcn, sandbox, monkeypatch):
    answers = iter(["１２３４", "１２３４"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    result = mcn("sandbox", "init")
    assert result.code == ExitStatus.BAD_INPUT and one_line(result.err)


def test_initialise_refuses_a_bad_pin_before_writing_anything(tmp_path):
    from mcn_cli.domain.errors import InvalidInput
    from mcn_cli.sandbox.setup import initialise
    from mcn_cli.sandbox.world import Files

    with pytest.raises(InvalidInput):
        initialise("１２３４", Files(tmp_path / "sandbox"))
    assert not (tmp_path / "sandbox").exists()


# --- the rules themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("pin", ["1234", "000000", "123456789012"])
def test_good_pins(pin):
    from mcn_cli.domain.pin import check_pin

    assert check_pin(pin) == pin


@pytest.mark.parametrize("pin", [*BAD_PINS.values(), ""], ids=[*BAD_PINS.keys(), "empty"])
def test_bad_pins(pin):
    from mcn_cli.domain.errors import InvalidInput
    from mcn_cli.domain.pin import check_pin

    with pytest.raises(InvalidInput) as refused:
        check_pin(pin)
    assert refused.value.rule == "form" and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("data", "value"),
    [(b"1234\n", "1234"), (b"1234", "1234"), (b"1234\r\n", "1234"), (b"pass word\n", "pass word")],
)
def test_a_file_descriptor_loses_one_trailing_newline_only(data, value):
    from mcn_cli.actions.secrets import _from_fd

    fd = fd_with(data)
    try:
        assert _from_fd(fd, "eID PIN", "--pin-fd") == value
    finally:
        os.close(fd)


def test_an_endless_file_descriptor_is_refused_quickly():
    from mcn_cli.actions.secrets import _from_fd
    from mcn_cli.domain.errors import InvalidInput

    fd = os.open("/dev/zero", os.O_RDONLY)
    try:
        with pytest.raises(InvalidInput) as refused:
            _from_fd(fd, "eID PIN", "--pin-fd")
    finally:
        os.close(fd)
    assert refused.value.rule == "too-long"


def test_a_wrong_pin_of_the_right_form_does_reach_the_token(mcn, sandbox, monkeypatch, pins_seen):
    """The control for the checks above: SoftHSM does record a real wrong try."""
    monkeypatch.setenv("MCN_PIN", "0000")
    assert mcn("login").code == ExitStatus.AUTH_NEEDED
    assert "0000" in pins_seen and not no_failed_login(sandbox)


# -- the tries left (PKCS#11 CKF_USER_PIN_* token flags) ---------------------------------------
# SoftHSM2 reports COUNT_LOW after a wrong PIN but never FINAL_TRY nor LOCKED (it has no try
# counter): those are tested on a stand-in token, and the mapping from flags to message alone.


def test_a_wrong_pin_on_softhsm_says_tries_are_running_out(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", "0000")
    result = mcn("login")
    assert result.code == ExitStatus.AUTH_NEEDED
    assert "wrong eID PIN: two tries left at most (the card locks after 3 wrong PINs)" in result.err


def test_the_pin_flags_are_pkcs11s():
    from pkcs11 import TokenFlag

    from mcn_cli.ehealth import signers

    assert signers.PIN_COUNT_LOW == TokenFlag.USER_PIN_COUNT_LOW
    assert signers.PIN_FINAL_TRY == TokenFlag.USER_PIN_FINAL_TRY
    assert signers.PIN_LOCKED == TokenFlag.USER_PIN_LOCKED


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        (0, "wrong eID PIN (the card locks after 3 wrong PINs)"),
        (0x10000, "wrong eID PIN: two tries left at most (the card locks after 3 wrong PINs)"),
        (0x10000 | 0x20000, "wrong eID PIN: one try left: a wrong PIN now blocks the card"),
        (0x20000, "wrong eID PIN: one try left: a wrong PIN now blocks the card"),
        (0x40000, "wrong eID PIN: the card is now locked: unblock it with its PUK at the municipality"),
    ],
)
def test_a_wrong_pin_says_what_the_token_reports(flags, text):
    from mcn_cli.domain.errors import AuthenticationNeeded
    from mcn_cli.ehealth.signers import wrong_pin

    error = wrong_pin(flags)
    assert isinstance(error, AuthenticationNeeded) and str(error) == text


class _Card:
    """A stand-in eID token: its flags before the login, and after a wrong PIN."""

    label = "BELPIC"

    def __init__(self, flags: int, after: int) -> None:
        self.flags = flags
        self.after = after
        self.pins: list = []
        card = self

        class _Slot:
            def get_token(self):
                return type("Token", (), {"flags": card.after})()

        self.slot = _Slot()

    def open(self, user_pin=None, **kwargs):
        from pkcs11 import exceptions as p11

        self.pins.append(user_pin)
        raise p11.PinIncorrect()


def _with_card(monkeypatch, card: _Card) -> None:
    from mcn_cli.ehealth import signers

    library = type("Library", (), {"get_tokens": lambda self, token_label=None: [card]})()
    monkeypatch.setattr(signers, "pkcs11_library", lambda module: library)


def test_one_try_left_is_told_before_the_pin_is_asked(monkeypatch):
    from mcn_cli.domain.errors import AuthenticationNeeded
    from mcn_cli.ehealth import signers

    card = _Card(0x20000 | 0x10000, 0x40000)
    _with_card(monkeypatch, card)
    events: list = []

    def pin() -> str:
        events.append("asked")
        return "1234"

    with pytest.raises(AuthenticationNeeded) as caught:
        signers.open_eid("stand-in", pin, warn=lambda message: events.append(str(message)))
    assert events == ["one try left: a wrong PIN now blocks the card", "asked"]
    assert card.pins == ["1234"]
    assert str(caught.value) == (
        "wrong eID PIN: the card is now locked: unblock it with its PUK at the municipality"
    )
    assert caught.value.msgid.startswith("wrong eID PIN")  # a message with its id, for translation


def test_a_locked_card_is_refused_before_any_pin(monkeypatch):
    from mcn_cli.domain.errors import AuthenticationNeeded
    from mcn_cli.ehealth import signers

    card = _Card(0x40000, 0x40000)
    _with_card(monkeypatch, card)

    def pin() -> str:
        raise AssertionError("no PIN is asked for a locked card")

    with pytest.raises(AuthenticationNeeded) as caught:
        signers.open_eid("stand-in", pin)
    assert str(caught.value) == "the eID card is locked: unblock it with its PUK at the municipality"
    assert card.pins == []
