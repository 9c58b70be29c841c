"""Output formats behind one interface: each renders a scan report (or the history) to text."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import assert_never

from verifier.errors import UsageError
from verifier.model import ScanReport, ScanSummary
from verifier.report import json_format, sarif, table


class OutputFormat(enum.StrEnum):
    """Formats the command line can print."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


#: Formats that can render the history (SARIF describes one scan's results).
HISTORY_FORMATS = (OutputFormat.TABLE, OutputFormat.JSON)


def render_report(report: ScanReport, fmt: OutputFormat) -> str:
    """Render one scan in `fmt`."""
    if fmt is OutputFormat.TABLE:
        return table.render_report(report)
    if fmt is OutputFormat.JSON:
        return json_format.render_report(report)
    if fmt is OutputFormat.SARIF:
        return sarif.render_report(report)
    assert_never(fmt)


def render_history(scans: Sequence[ScanSummary], fmt: OutputFormat) -> str:
    """Render the scan history in `fmt`.

    Raises:
        UsageError: `fmt` describes a single scan (SARIF).
    """
    if fmt is OutputFormat.TABLE:
        return table.render_history(scans)
    if fmt is OutputFormat.JSON:
        return json_format.render_history(scans)
    if fmt is OutputFormat.SARIF:
        raise UsageError("the history has no SARIF form; use --format table or json")
    assert_never(fmt)
