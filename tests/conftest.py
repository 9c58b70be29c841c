"""Shared fixtures: an isolated verifier home, a generated tiny model, a marker folder."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.samples import MARKER_NAME

ROOT = Path(__file__).resolve().parents[1]


def _load_example_builder() -> object:
    spec = importlib.util.spec_from_file_location(
        "make_tiny_model", ROOT / "examples" / "make_tiny_model.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_tiny_model"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own VERIFIER_HOME and no inherited database URL."""
    home = tmp_path_factory.mktemp("verifier-home")
    monkeypatch.setenv("VERIFIER_HOME", str(home))
    monkeypatch.delenv("VERIFIER_DATABASE_URL", raising=False)
    return home


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A small, clean model repository built by the example script."""
    builder = _load_example_builder()
    out = tmp_path / "tiny-model"
    builder.main(out)  # type: ignore[attr-defined]
    return out


@pytest.fixture
def marker_dir(tmp_path: Path) -> Iterator[Path]:
    """Where a payload would leave its marker if it ever ran; asserted empty afterwards."""
    folder = tmp_path / "marker"
    folder.mkdir()
    yield folder
    assert not (folder / MARKER_NAME).exists(), "a payload ran during the test"
