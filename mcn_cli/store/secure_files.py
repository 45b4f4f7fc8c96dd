"""Writing secrets and personal data to disk: owner-only (0600), atomic, never half-written."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mcn_cli.store import paths


def write_private(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``path`` with mode 0600, all or nothing. Without ``replace`` an existing
    file is left alone and ``FileExistsError`` is raised (another process made it first)."""
    paths.private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
