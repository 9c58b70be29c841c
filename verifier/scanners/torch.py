"""PyTorch's legacy formats: a sequence of pickles followed by raw storages, or a tar of pickles."""

from __future__ import annotations

from collections.abc import Iterator

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.pickle import analyse_pickle, pickle_findings
from verifier.scanners.sniff import identify
from verifier.scanners.streams import BoundedStream, PrefixedStream

#: The legacy format holds: magic number, protocol version, system info, the object, storage keys.
LEGACY_PICKLES = 5
_TAR_BLOCK = 512


class TorchLegacyScanner(Scanner):
    """Scans `torch.save(..., _use_new_zipfile_serialization=False)` files of both layouts."""

    formats = frozenset({FileFormat.PYTORCH_LEGACY})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for each pickle in the file; storage data is skipped."""
        head = stream.read(_TAR_BLOCK)
        view = PrefixedStream(head, stream)
        if len(head) == _TAR_BLOCK and head[257:262] == b"ustar":
            yield from _scan_tar(view, ctx)
            return
        for index in range(LEGACY_PICKLES):
            analysis = analyse_pickle(view)
            yield from pickle_findings(analysis, ctx, member=f"pickle[{index}]")
            if analysis.error is not None:
                return


def _scan_tar(stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
    while True:
        header = stream.read(_TAR_BLOCK)
        if len(header) < _TAR_BLOCK or header == bytes(_TAR_BLOCK):
            return
        name = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        kind = header[156:157]
        try:
            size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError:
            yield ctx.finding(
                "ARCHIVE-UNSCANNABLE", Severity.HIGH, "tar header has an invalid size", member=name
            )
            return
        if kind in (b"1", b"2"):
            yield ctx.finding(
                "ARCHIVE-UNSCANNABLE",
                Severity.HIGH,
                "tar member is a link; the scanner does not follow links",
                member=name,
            )
        body = BoundedStream(stream, size)
        member_head = body.read(65536)
        if identify(member_head, size) in (FileFormat.PICKLE, FileFormat.PYTORCH_LEGACY):
            member_view = PrefixedStream(member_head, body)
            yield from pickle_findings(analyse_pickle(member_view, limit=size), ctx, member=name)
        if body.finish():
            yield ctx.finding(
                "ARCHIVE-TRUNCATED", Severity.HIGH, "tar member is truncated", member=name
            )
            return
        stream.skip(-size % _TAR_BLOCK)
