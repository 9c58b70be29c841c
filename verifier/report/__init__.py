"""Output formats behind one interface: each renders a scan report (or the history) to text."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import assert_never

from verifier.model import ScanReport, ScanSummary
from verifier.report import json_format, table


class OutputFormat(enum.StrEnum):
    """Formats the command line can print."""

    TABLE = "table"
    JSON = "json"


def render_report(report: ScanReport, fmt: OutputFormat) -> str:
    """Render one scan in `fmt`."""
    if fmt is OutputFormat.TABLE:
        return table.render_report(report)
    if fmt is OutputFormat.JSON:
        return json_format.render_report(report)
    assert_never(fmt)


def render_history(scans: Sequence[ScanSummary], fmt: OutputFormat) -> str:
    """Render the scan history in `fmt`."""
    if fmt is OutputFormat.TABLE:
        return table.render_history(scans)
    if fmt is OutputFormat.JSON:
        return json_format.render_history(scans)
    assert_never(fmt)
