"""Formats recognised but not yet analysed in depth: reported, so the policy sees the gap."""

from __future__ import annotations

from collections.abc import Iterator

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream

#: How much an unanalysed format matters: ONNX runs no Python.
_GAPS = {
    FileFormat.ONNX: (Severity.LOW, "ONNX model (external data and custom operators)"),
}


class UnanalysedScanner(Scanner):
    """Reports that a recognised format's contents were not analysed."""

    formats = frozenset(_GAPS)

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield one FORMAT-NOT-ANALYSED finding saying what was not checked."""
        severity, what = _GAPS[ctx.format]
        yield ctx.finding(
            "FORMAT-NOT-ANALYSED",
            severity,
            f"{what}: recognised by content, but its contents are not analysed yet",
        )
