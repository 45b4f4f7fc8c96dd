"""The "Consulting MyCareNet…" line: on a terminal only, after half a second, cleared before output."""

from __future__ import annotations

import io
import os
import select
import time

from mcn_cli.cli.spinner import waiting


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_slow_wait_on_a_terminal_shows_the_line_then_clears_it():
    stream = FakeTerminal()
    with waiting("Consulting MyCareNet…", stream=stream, delay=0.05) as spinner:
        time.sleep(0.3)
        spinner.say("mcn: trying again")
        time.sleep(0.2)
    text = stream.getvalue()
    assert "Consulting MyCareNet…" in text
    assert "\r\x1b[Kmcn: trying again\n" in text  # the line is erased before a message
    assert text.endswith("\r\x1b[K")  # and before the command's output


def test_a_quick_answer_shows_nothing():
    stream = FakeTerminal()
    with waiting("Consulting MyCareNet…", stream=stream):  # 0.5 s by default
        time.sleep(0.05)
    assert stream.getvalue() == ""


def test_never_when_not_a_terminal_or_disabled():
    pipe = io.StringIO()
    with waiting("Consulting MyCareNet…", stream=pipe, delay=0):
        time.sleep(0.2)
    assert pipe.getvalue() == ""
    terminal = FakeTerminal()
    with waiting("Consulting MyCareNet…", stream=terminal, delay=0, enabled=False) as spinner:
        time.sleep(0.2)
        spinner.say("plain line")
    assert terminal.getvalue() == "plain line\n"


def test_on_a_real_pty():
    master, slave = os.openpty()
    stream = open(slave, "w", encoding="utf-8")
    try:
        with waiting("Consulting MyCareNet…", stream=stream, delay=0.05):
            time.sleep(0.3)
        seen = b""
        while select.select([master], [], [], 0.2)[0]:
            seen += os.read(master, 4096)
    finally:
        stream.close()
        os.close(master)
    assert "Consulting MyCareNet…".encode() in seen and seen.endswith(b"\r\x1b[K")


def test_a_hidden_prompt_during_the_wait_erases_and_holds_the_line(monkeypatch):
    import getpass

    stream = FakeTerminal()
    seen: list[str] = []

    def prompt(text: str = "", where: object = None) -> str:
        before = stream.getvalue()
        assert "Consulting" in before and before.endswith("\r\x1b[K")  # erased before the prompt
        time.sleep(0.3)  # the user types: nothing is drawn meanwhile
        seen.append(stream.getvalue()[len(before):])
        return "secret"

    monkeypatch.setattr(getpass, "getpass", prompt)
    with waiting("Consulting MyCareNet…", stream=stream, delay=0.05):
        time.sleep(0.2)
        assert getpass.getpass("Cache passphrase: ") == "secret"
    assert seen == [""]
    assert getpass.getpass is prompt  # put back after the wait
