"""What people read from the session, cache, ot and sandbox commands: --session's default in the
help (MCN_SESSION), the sessions in words, a busy sandbox port, and the way out of a lost cache key."""

from __future__ import annotations

import socket

import pytest

from mcn_cli.status import ExitStatus
from tests.conftest import SANDBOX_PIN

SESSION_COMMANDS = (
    ("login",),
    ("logout",),
    ("session", "show"),
    ("ot", "consult"),
    ("ot", "batch"),
)


@pytest.mark.parametrize("command", SESSION_COMMANDS, ids=" ".join)
def test_session_option_says_its_default_in_the_help(mcn, command):
    result = mcn(*command, "--help")
    assert result.code == 0, result.err
    assert "[default: default]" not in result.out
    text = " ".join(result.out.split())  # the help is wrapped
    assert "(default: MCN_SESSION when set, else default)" in text


def test_mcn_session_names_the_session(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    monkeypatch.setenv("MCN_SESSION", "counter-3")
    assert mcn("login").code == 0
    assert [s["session"] for s in mcn("session", "list", "--json").json()] == ["counter-3"]
    assert mcn("session", "show", "--json").json()["session"] == "counter-3"
    # the option still wins, and --all is no clash with MCN_SESSION
    assert mcn("session", "show", "--session", "default").code == ExitStatus.AUTH_NEEDED
    assert mcn("logout", "--all", "--json").json() == {"closed": 1}
    clash = mcn("logout", "--all", "--session", "counter-3")
    assert clash.code == ExitStatus.BAD_INPUT


def test_session_list_in_words(mcn, sandbox, monkeypatch):
    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    listed = mcn("session", "list")
    assert listed.code == 0, listed.err
    heading, row = listed.out.splitlines()
    assert heading.split()[:3] == ["SESSION", "USER", "FOR"] and "TIME LEFT" in heading
    assert "ISSUED" not in heading
    assert "pharmacy " in row and "sandbox (tests, on this computer)" in row
    assert " h " in row and "min" in row
    expires = mcn("session", "show", "--json").json()["expires"]
    from datetime import datetime

    local = datetime.fromisoformat(expires).astimezone().strftime("%Y-%m-%d %H:%M")
    assert local in row  # local time, as the pharmacy's clock shows it


def test_sandbox_serve_on_a_busy_port_says_use_port_0(mcn, sandbox):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = mcn("sandbox", "serve", "--port", str(port))
    assert result.code == ExitStatus.BAD_INPUT
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert f"127.0.0.1:{port} is already in use" in lines[0] and "--port 0" in lines[0]


def _cache_with_a_key(mcn):
    result = mcn("cache", "init", "--json")
    assert result.code == 0, result.err
    from mcn_cli.store import vault

    return vault.key_file()


def test_a_lost_key_file_says_how_to_recover(mcn, mcn_home):
    key = _cache_with_a_key(mcn)
    key.unlink()
    result = mcn("cache", "list")
    assert result.code == ExitStatus.DATA_INTEGRITY
    error, hint = result.err.splitlines()
    assert "is missing" in error
    assert hint.startswith("mcn: hint: restore the key file") and str(key) in hint
    assert "mcn cache init" in hint and str(mcn_home / "data" / "mcn.sqlite3") in hint
    assert "audit trail" in hint and "can no longer be read" in hint
    as_json = mcn("cache", "list", "--json").json()["error"]
    assert as_json["kind"] == "data-integrity" and "restore the key file" in as_json["hint"]


def test_a_wrong_key_file_says_how_to_recover(mcn):
    key = _cache_with_a_key(mcn)
    from mcn_cli.store import vault

    vault.write_key_file(key, b"\x01" * 32, replace=True)  # a key, but not this cache's
    result = mcn("cache", "show", "some-id")
    assert result.code == ExitStatus.DATA_INTEGRITY
    assert "wrong cache key" in result.err and "restore the key file" in result.err
    # and the same way out when a new cache is started on top of it
    assert "mcn cache init" in result.err


def test_a_group_readable_key_file_keeps_its_own_fix(mcn):
    key = _cache_with_a_key(mcn)
    key.chmod(0o640)
    result = mcn("cache", "list")
    assert result.code == ExitStatus.DATA_INTEGRITY
    assert "chmod 600" in result.err and "restore the key file" not in result.err


def test_a_lost_key_file_tells_the_way_out_whatever_command_met_it(mcn, sandbox, monkeypatch):
    """Not only the cache and session commands: a consultation that cannot unlock the cache says
    how to recover too (the vault's KeyLost, recognised by its type)."""
    from mcn_cli.store import vault

    monkeypatch.setenv("MCN_PIN", SANDBOX_PIN)
    assert mcn("login").code == 0
    vault.key_file().unlink()
    result = mcn("consult", "--niss", "85073003328")
    assert result.code == ExitStatus.DATA_INTEGRITY
    assert "is missing" in result.err and "restore the key file" in result.err, result.err
