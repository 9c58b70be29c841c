"""The names of the output and evidence formats: the choices the command line offers.

Kept apart from the renderers (which load rich, cryptography, fpdf2 and the store) so that the
command line can build its options without importing any of them.
"""

from __future__ import annotations

import enum
from typing import Any

from verifier import __version__

#: The project's public home (also `[project.urls]` in pyproject.toml).
PROJECT_URL = "https://github.com/model-weights-verifier/verifier"
#: The documentation of the running version: links in reports (SARIF `helpUri`) point here, so
#: a finding's entry matches the code that emitted it.
DOCS_URL = f"{PROJECT_URL}/blob/v{__version__}/docs"


def help_uri(code: str) -> str:
    """The entry of finding `code` in docs/findings.md: each code is a `### CODE` heading there,
    whose anchor (as GitHub and most Markdown renderers make it) is the code in lower case.
    SARIF's `helpUri` and the dashboard's findings link here."""
    return f"{DOCS_URL}/findings.md#{code.lower()}"


class OutputFormat(enum.StrEnum):
    """Formats the command line can print."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


class JsonDocument(enum.StrEnum):
    """The command line's other JSON documents (beside scan, check, lockfile and facts): each
    has its JSON Schema `verifier/schemas/<value>.schema.json` and carries `schema_version`."""

    HISTORY = "history"
    DECISION = "decision"
    LINEAGE_BASES = "lineage-bases"
    BANS = "bans"
    BAN_CHANGE = "ban-change"
    BLAST_RADIUS = "blast-radius"
    REDECIDE = "redecide"
    CHANGES = "changes"
    WATCHES = "watches"
    BLOBS_GC = "blobs-gc"

    @property
    def schema_version(self) -> int:
        """The version its schema pins (`"schema_version": {"const": N}`)."""
        return 1

    def document(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` with `schema_version` first."""
        return {"schema_version": self.schema_version, **body}


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
