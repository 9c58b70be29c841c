"""Golden-file comparison with an update flag: VERIFIER_UPDATE_GOLDEN=1 rewrites them."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, actual: bytes) -> None:
    """Compare `actual` with golden file `name`; with VERIFIER_UPDATE_GOLDEN=1, rewrite it."""
    path = GOLDEN / name
    if os.environ.get("VERIFIER_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
        return
    assert path.exists(), f"{path} missing: run with VERIFIER_UPDATE_GOLDEN=1 to create it"
    expected = path.read_bytes()
    assert actual == expected, f"{name} differs from its golden file (VERIFIER_UPDATE_GOLDEN=1)"
