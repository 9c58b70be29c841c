"""Licence ids: the Hugging Face spellings that are SPDX licence ids in another case."""

from __future__ import annotations

#: Hugging Face licence ids whose SPDX id differs only in case (the SPDX list is case-exact).
_SPDX_IDS = {
    spdx.lower(): spdx
    for spdx in (
        "Apache-2.0",
        "MIT",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "CC0-1.0",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-4.0",
        "CC-BY-NC-SA-4.0",
        "CC-BY-NC-ND-4.0",
        "GPL-2.0",
        "GPL-3.0",
        "LGPL-3.0",
        "AGPL-3.0",
        "MPL-2.0",
        "Unlicense",
        "OpenRAIL",
        "Artistic-2.0",
        "BSL-1.0",
        "ECL-2.0",
        "EPL-2.0",
        "WTFPL",
    )
}


def spdx_license_id(licence: str) -> str | None:
    """The SPDX licence id a Hugging Face licence id names, or None when it names none."""
    return _SPDX_IDS.get(licence.lower())
