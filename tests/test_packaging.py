"""The wheel holds every package of the source tree (setuptools' package list is explicit)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "verifier").rglob("__init__.py")
    }
    assert found, "no packages found under verifier/"
    missing = sorted(found - listed)
    assert not missing, f"packages missing from [tool.setuptools] packages: {missing}"
