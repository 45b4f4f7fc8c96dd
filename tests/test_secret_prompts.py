"""The hidden prompts for PINs and passwords (actions/secrets.py): an empty answer asks again,
Ctrl-C (or the end of input) ends the prompt's line before the interruption goes on."""

from __future__ import annotations

import os
import sys
import time

import pytest

from mcn_cli.status import ExitStatus
from tests.conftest import ROOT, SANDBOX_PIN


def answering(monkeypatch, *answers: object) -> list[str]:
    """getpass on a terminal, answering in turn (an exception is raised); the prompts seen."""
    prompts: list[str] = []
    queue = list(answers)

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        answer = queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return str(answer)

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", getpass)
    return prompts


def test_an_empty_pin_at_the_prompt_asks_again(mcn, sandbox, monkeypatch):
    prompts = answering(monkeypatch, "", "", SANDBOX_PIN)
    result = mcn("login")
    assert result.code == 0, result.err
    assert prompts == ["eID PIN: "] * 3
    assert result.err.count("the eID PIN cannot be empty") == 2


def test_empty_answers_without_end_give_up_with_the_usual_error(monkeypatch):
    from mcn_cli.actions.secrets import EMPTY_ASKS, secret
    from mcn_cli.domain.errors import AuthenticationNeeded

    prompts = answering(monkeypatch, *[""] * EMPTY_ASKS)
    with pytest.raises(AuthenticationNeeded, match="the eID PIN is needed: set MCN_PIN"):
        secret("eID PIN", "MCN_PIN", prompt="eID PIN: ", fd_option="--pin-fd")()
    assert len(prompts) == EMPTY_ASKS


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), EOFError()], ids=["ctrl-c", "end-of-input"])
def test_ctrl_c_at_a_prompt_ends_the_line(monkeypatch, capsys, stop):
    from mcn_cli.actions.secrets import secret

    answering(monkeypatch, stop)
    with pytest.raises(KeyboardInterrupt):
        secret("eID PIN", "MCN_PIN", prompt="eID PIN: ", fd_option="--pin-fd")()
    assert capsys.readouterr().err == "\n"


def test_ctrl_c_at_the_login_prompt_is_an_interruption(mcn, sandbox, monkeypatch):
    answering(monkeypatch, KeyboardInterrupt())
    result = mcn("login")
    assert result.code == ExitStatus.INTERRUPTED
    assert result.err.startswith("\n") and "Traceback" not in result.err


def test_new_pin_confirmation_left_empty_asks_again(mcn, sandbox, monkeypatch):
    prompts = answering(monkeypatch, "246813", "", "246813")
    assert mcn("sandbox", "init", "--json").json()["tokens"] == "created"
    assert len(prompts) == 3 and prompts[1] == prompts[2] == "Again: "


def test_on_a_real_terminal(sandbox, mcn_home):
    """Through a pseudo-terminal, as a pharmacist types: Enter alone asks again; Ctrl-C at the
    prompt stops with the terminal's line ended (no later text glued to the prompt)."""
    pty = pytest.importorskip("pty")
    env = {k: v for k, v in os.environ.items() if k != "MCN_PIN"}
    env.update(MCN_HOME=str(mcn_home), MCN_LANG="en", PYTHONPATH=str(ROOT))
    pid, fd = pty.fork()
    if pid == 0:  # the child: mcn on the terminal
        os.chdir(ROOT)
        os.execvpe(sys.executable, [sys.executable, "-m", "mcn_cli", "login"], env)
    seen = b""

    def read_until(needle: bytes | None, count: int = 1) -> None:
        """Until ``needle`` was seen ``count`` times (None: until the child ends)."""
        nonlocal seen
        deadline = time.monotonic() + 60
        while needle is None or seen.count(needle) < count:
            assert time.monotonic() < deadline, seen
            try:
                seen += os.read(fd, 1024)
            except OSError:  # the child ended
                break

    try:
        read_until(b"eID PIN: ")
        os.write(fd, b"\r")  # Enter alone
        read_until(b"eID PIN: ", 2)
        assert b"cannot be empty" in seen
        os.write(fd, b"\x03")  # Ctrl-C
        read_until(None)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == ExitStatus.INTERRUPTED
    after = seen.rsplit(b"eID PIN: ", 1)[1]
    assert after.lstrip(b"^C").startswith((b"\r\n", b"\n")), after  # the prompt's line was ended
