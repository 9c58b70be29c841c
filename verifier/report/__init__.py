"""Output formats behind one interface: each renders a scan report (or the history) to text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, assert_never

from verifier.errors import UsageError
from verifier.formats import HISTORY_FORMATS, OutputFormat

if TYPE_CHECKING:
    from verifier.model import ScanReport, ScanSummary

__all__ = ["HISTORY_FORMATS", "OutputFormat", "render_history", "render_report"]


def render_report(report: ScanReport, fmt: OutputFormat, *, sarif_root: str | None = None) -> str:
    """Render one scan in `fmt`; `sarif_root` makes SARIF locations relative to that folder.

    Raises:
        UsageError: `sarif_root` with a format other than SARIF, or a scan it cannot apply to.
    """
    if sarif_root is not None and fmt is not OutputFormat.SARIF:
        raise UsageError("--sarif-root applies to --format sarif")
    # Each format loads when used: the table needs rich, which `--format json` never pays for.
    if fmt is OutputFormat.TABLE:
        from verifier.report import table

        return table.render_report(report)
    if fmt is OutputFormat.JSON:
        from verifier.report import json_format

        return json_format.render_report(report)
    if fmt is OutputFormat.SARIF:
        from verifier.report import sarif

        return sarif.render_report(report, sarif_root=sarif_root)
    assert_never(fmt)


def render_history(scans: Sequence[ScanSummary], fmt: OutputFormat) -> str:
    """Render the scan history in `fmt`.

    Raises:
        UsageError: `fmt` describes a single scan (SARIF).
    """
    if fmt is OutputFormat.TABLE:
        from verifier.report import table

        return table.render_history(scans)
    if fmt is OutputFormat.JSON:
        from verifier.report import json_format

        return json_format.render_history(scans)
    if fmt is OutputFormat.SARIF:
        raise UsageError("the history has no SARIF form; use --format table or json")
    assert_never(fmt)
