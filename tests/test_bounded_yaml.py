"""Policy YAML is built by libyaml once its events fit the caps, with the same checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier import bounded_yaml

ROOT = Path(__file__).resolve().parents[1]


def _bounded_composer(text: str) -> tuple[object, list[str]]:
    """What the Python composer (the path that reports a cap with its line) builds."""
    loader = bounded_yaml._BoundedLoader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


@pytest.mark.parametrize("path", sorted((ROOT / "policies").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_files_load_as_the_bounded_composer_builds_them(path: Path) -> None:
    text = path.read_text()
    assert bounded_yaml.load(text) == _bounded_composer(text)


def test_the_fast_path_is_taken_where_libyaml_is_built_in() -> None:
    import yaml

    assert (bounded_yaml._CHECKED_FAST_LOADER is not None) == hasattr(yaml, "CSafeLoader")


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: 2\na: 3\n",
        "outer:\n  x: 1\n  x: 2\nlist: [{k: 1, k: 2}]\n",
        "reviewed: 2025-01-31\nwhen: 2025-01-31T10:00:00Z\n",
        "a: &x {k: v}\nb: *x\n",
    ],
)
def test_duplicates_and_dates_are_checked_on_both_paths(text: str) -> None:
    assert bounded_yaml.load(text) == _bounded_composer(text)


def test_an_invalid_date_is_refused_with_its_line_on_the_fast_path() -> None:
    with pytest.raises(Exception, match="invalid date '2025-02-30'") as caught:
        bounded_yaml.load("a: 1\nexpires: 2025-02-30\n")
    assert caught.value.problem_mark.line == 1  # type: ignore[attr-defined]
