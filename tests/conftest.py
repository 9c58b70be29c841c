"""Shared fixtures: isolated home, generated tiny model, marker folder, SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.hub_emulator import HubEmulator
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
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
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


POSTGRES_ENV = "VERIFIER_TEST_POSTGRES_URL"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a folder that does not exist yet (the store must create it)."""
    return f"sqlite:///{tmp_path / 'state' / 'verifier.db'}"


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"{POSTGRES_ENV} is not set; set it to a PostgreSQL URL such as "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test to run the PostgreSQL tests"
        )
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs once on SQLite and once on PostgreSQL (when set)."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(autouse=True)
def no_real_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach huggingface.co: the default endpoint is a closed loopback port."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubEmulator]:
    """A Hub emulator on loopback with `HF_ENDPOINT` pointing at it (see tests/hub_emulator.py).

    Add repositories with `hub.add_repo("ns/name", {"path": b"bytes"}, card_data={...})`,
    then scan `hf://ns/name`. `HF_HOME` is a fresh folder, so no token or cache leaks in.
    """
    with HubEmulator() as emulator:
        monkeypatch.setenv("HF_ENDPOINT", emulator.endpoint)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        yield emulator
