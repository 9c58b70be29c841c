"""Where verifier keeps its state: resolved from flags and the environment."""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """The folder for verifier's own state: `VERIFIER_HOME` or the user data folder."""
    explicit = os.environ.get("VERIFIER_HOME")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs  # only when VERIFIER_HOME is unset: keeps the command line's start light

    return Path(platformdirs.user_data_dir("verifier", appauthor=False))


def database_url(explicit: str | None = None) -> str:
    """The database to record in: the flag, `VERIFIER_DATABASE_URL`, or SQLite in `home_dir()`."""
    if explicit:
        return explicit
    from_env = os.environ.get("VERIFIER_DATABASE_URL")
    if from_env:
        return from_env
    return f"sqlite:///{home_dir() / 'verifier.db'}"
