"""Where mcn keeps its files. ``MCN_HOME`` overrides every path (tests, several profiles)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path | None:
    value = os.environ.get("MCN_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    base = home()
    if base is not None:
        return base
    from platformdirs import user_config_path

    return user_config_path("mcn", appauthor=False)


def data_dir() -> Path:
    base = home()
    if base is not None:
        return base / "data"
    from platformdirs import user_data_path

    return user_data_path("mcn", appauthor=False)


def config_file() -> Path:
    return config_dir() / "config.toml"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by its owner only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
