"""The pickle sequence `torch.load` reads from a legacy (non-zip, non-tar) file."""

from __future__ import annotations

from collections.abc import Iterator

from verifier.model import Finding
from verifier.scanners.interface import ScanContext, ScanStream
from verifier.scanners.pickle import analyse_pickle, pickle_findings

#: The legacy format holds: magic number, protocol version, system info, the object, storage keys.
LEGACY_PICKLES = 5


def scan_legacy_pickles(stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
    """The pickles `torch.load` reads from a non-tar legacy file, from the stream's position.

    Also what torch.load reads from any file tarfile rejects (it falls back to this at 0).
    """
    for index in range(LEGACY_PICKLES):
        analysis = analyse_pickle(stream)
        yield from pickle_findings(analysis, ctx, member=f"pickle[{index}]")
        if analysis.error is not None:
            return
