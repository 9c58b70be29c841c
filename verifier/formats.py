"""The names of the output and evidence formats: the choices the command line offers.

Kept apart from the renderers (which load rich, cryptography, fpdf2 and the store) so that the
command line can build its options without importing any of them.
"""

from __future__ import annotations

import enum

from verifier import __version__

#: The project's public home (also `[project.urls]` in pyproject.toml).
PROJECT_URL = "https://github.com/model-weights-verifier/verifier"
#: The documentation of the running version: links in reports (SARIF `helpUri`) point here, so
#: a finding's entry matches the code that emitted it.
DOCS_URL = f"{PROJECT_URL}/blob/v{__version__}/docs"


class OutputFormat(enum.StrEnum):
    """Formats the command line can print."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


#: Formats that can render the history (SARIF describes one scan's results).
HISTORY_FORMATS = (OutputFormat.TABLE, OutputFormat.JSON)


class EvidenceFormat(enum.StrEnum):
    """Formats `verifier report` writes."""

    CYCLONEDX = "cyclonedx"
    SPDX = "spdx"
    VSA = "vsa"
    DOSSIER_HTML = "dossier-html"
    DOSSIER_PDF = "dossier-pdf"
    MARKDOWN = "markdown"

    @property
    def binary(self) -> bool:
        """Whether the format is bytes that must go to a file, not a terminal."""
        return self is EvidenceFormat.DOSSIER_PDF


#: `predicate.verifier.id` of a verification summary unless the organisation names its own
#: deployment (`--verifier-id`); documented in docs/evidence.md.
DEFAULT_VERIFIER_ID = "urn:verifier:model-weights-verifier"
