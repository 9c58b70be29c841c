"""Where the shipped policy files are, and the reading of policy, publishers and waivers files
with the one error each gives when it cannot be read."""

from __future__ import annotations

import importlib
from pathlib import Path

from verifier.errors import PolicyError


def _policies_folder() -> Path:
    """The folder of the shipped policies (the package `verifier._policies`)."""
    # A regular package installed as files: its folder is what `importlib.resources.files`
    # gives, without loading that machinery (and tempfile, zipfile) at every start.
    shipped = importlib.import_module("verifier._policies")
    if shipped.__file__ is not None:
        return Path(shipped.__file__).parent
    from importlib.resources import files

    return Path(str(files("verifier._policies")))


def default_policy_path() -> Path:
    """The shipped default policy, `policies/default.yaml`."""
    return _policies_folder() / "default.yaml"


def shipped_publishers_path() -> Path:
    """The shipped registry, `policies/publishers.yaml`."""
    return _policies_folder() / "publishers.yaml"


def _read_text(path: Path, kind: str, *, says_missing: bool = True) -> str:
    """The text of a `kind` file ("policy", "publishers", "waivers"), with the one error each
    gives; `says_missing`: a file that does not exist gets its own "not found" line.

    Raises:
        PolicyError: the file is missing or unreadable.
    """
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if says_missing and isinstance(exc, FileNotFoundError):
            raise PolicyError(f"{kind} file not found: {path}") from None
        raise PolicyError(f"cannot read {kind} file {path}: {exc}") from None


def read_policy_text(path: Path) -> str:
    """The text of a policy file (`PolicyError` when missing or unreadable)."""
    return _read_text(path, "policy")


def read_publishers_text(path: Path) -> str:
    """The text of a publishers file (`PolicyError` when missing or unreadable)."""
    return _read_text(path, "publishers")


def read_waivers_text(path: Path) -> str:
    """The text of a waivers file (`PolicyError` when unreadable, a missing file included)."""
    return _read_text(path, "waivers", says_missing=False)
