"""docs/evidence.md names every format and every level the code can produce."""

from __future__ import annotations

from pathlib import Path

from verifier.evidence import EvidenceFormat
from verifier.evidence.levels import Level

DOC = (Path(__file__).resolve().parents[2] / "docs" / "evidence.md").read_text()


def test_every_format_is_documented() -> None:
    assert [f.value for f in EvidenceFormat if f"`{f.value}`" not in DOC] == []


def test_every_level_is_documented() -> None:
    assert [level.value for level in Level if f"`{level.value}`" not in DOC] == []
