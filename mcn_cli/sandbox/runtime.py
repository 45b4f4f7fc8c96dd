"""Finding the sandbox server, or starting one in this process (so a newcomer needs no second
terminal)."""

from __future__ import annotations

import json
import os

from mcn_cli.domain.errors import InvalidInput
from mcn_cli.domain.messages import N_
from mcn_cli.sandbox.world import Files

_IN_PROCESS: dict[str, object] = {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _closed_port() -> str:
    """An address where nothing listens: the network is down."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"https://127.0.0.1:{port}"


def running_url(files: Files) -> str | None:
    """The URL of a sandbox server started by `mcn sandbox serve`, while its process lives."""
    try:
        info = json.loads(files.server_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    url = str(info.get("url", ""))
    pid = info.get("pid")
    return url if url and isinstance(pid, int) and _alive(pid) else None


def base_url(files: Files | None = None) -> str:
    """A sandbox server for this process: the running one, or one started in-process."""
    files = files or Files()
    if not files.exists():
        raise InvalidInput(
            "sandbox", "not-initialised", N_("the sandbox is not set up: run mcn sandbox init")
        )
    override = os.environ.get("MCN_SANDBOX_URL")
    if override:
        return override.rstrip("/")
    from mcn_cli.sandbox.insurability import fault_switch

    switched = fault_switch(files, ("refused",))
    if switched is not None and switched.kind == "refused":
        return _closed_port()
    url = running_url(files)
    if url:
        return url
    key = str(files.root)
    server = _IN_PROCESS.get(key)
    if server is None:
        from mcn_cli.sandbox.server import Server

        server = Server(files).start()
        _IN_PROCESS[key] = server
    return server.url  # type: ignore[attr-defined]


def stop_in_process() -> None:
    """Stop the servers this process started (tests)."""
    for server in list(_IN_PROCESS.values()):
        server.stop()  # type: ignore[attr-defined]
    _IN_PROCESS.clear()
