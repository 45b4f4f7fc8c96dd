"""A "please wait" line on stderr while a slow call runs (``with waiting(_("Consulting MyCareNet…")):``).

Shown only when stderr is a terminal, and only once the wait exceeds ``DELAY`` seconds (a quick
answer shows nothing). The line is cleared before the block ends, so the command's own output
never follows it; lines written during the wait go through :meth:`Spinner.say`, which clears
the line first. Scripts (``--json``, pipes, files) never see it. A hidden prompt during the
wait (``getpass``: the cache passphrase, a PIN) pauses the line until it is answered.
"""

from __future__ import annotations

import getpass
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

DELAY = 0.5  # seconds of silence before the line appears
FRAMES = "|/-\\"
TICK = 0.1


_ACTIVE: list[Spinner] = []
_SAVED: dict[str, Any] = {}  # getpass.getpass while a line is shown


def _getpass_paused(prompt: str = "Password: ", stream: TextIO | None = None) -> str:
    """``getpass.getpass`` with every waiting line erased and held until the answer."""
    held = list(_ACTIVE)
    for spinner in held:
        spinner.hold()
    try:
        return _SAVED["getpass"](prompt, stream)
    finally:
        for spinner in held:
            spinner.release()


class Spinner:
    """The waiting line of one block; :meth:`say` writes a whole line without mixing with it."""

    def __init__(self, text: str, stream: TextIO, *, active: bool, delay: float = DELAY) -> None:
        self.text = text
        self.stream = stream
        self.active = active
        self.delay = delay
        self.shown = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._held = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.active:
            if not _ACTIVE:
                _SAVED["getpass"] = getpass.getpass
                getpass.getpass = _getpass_paused
            _ACTIVE.append(self)
            self._thread = threading.Thread(target=self._run, name="mcn-spinner", daemon=True)
            self._thread.start()

    def hold(self) -> None:
        """Erase the line and draw nothing until :meth:`release` (a prompt is on the terminal)."""
        with self._lock:
            self._held.set()
            self._clear()

    def release(self) -> None:
        self._held.clear()

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        frame = 0
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    break
                if self._held.is_set():  # a prompt is on the terminal
                    frame -= 1
                else:
                    self.stream.write(f"\r{FRAMES[frame % len(FRAMES)]} {self.text}")
                    self.stream.flush()
                    self.shown = True
            frame += 1
            self._stop.wait(TICK)

    def _clear(self) -> None:
        """Erase the line (called with the lock held)."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def say(self, line: str) -> None:
        """Write ``line`` (and a line break) on the stream, the waiting line erased first."""
        with self._lock:
            self._clear()
            self.stream.write(line + "\n")
            self.stream.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._clear()
        if self in _ACTIVE:
            _ACTIVE.remove(self)
            if not _ACTIVE:
                getpass.getpass = _SAVED.pop("getpass")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


@contextmanager
def waiting(text: str, *, enabled: bool = True, stream: TextIO | None = None,
            delay: float | None = None) -> Iterator[Spinner]:
    """Show ``text`` with a turning bar on stderr while the block runs, if stderr is a terminal,
    ``enabled`` (pass ``not json``) and the block lasts more than ``delay`` seconds (``DELAY``)."""
    out = sys.stderr if stream is None else stream
    wait = DELAY if delay is None else delay
    spinner = Spinner(text, out, active=enabled and _is_terminal(out), delay=wait)
    spinner.start()
    try:
        yield spinner
    finally:
        spinner.stop()
