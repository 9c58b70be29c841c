"""PyTorch's legacy formats: a sequence of pickles followed by raw storages, or a tar of pickles."""

from __future__ import annotations

from collections.abc import Iterator

from verifier.model import FileFormat, Finding
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.streams import PrefixedStream
from verifier.scanners.tar import BLOCK, checksum_ok, scan_tar
from verifier.scanners.torch_pickles import scan_legacy_pickles


class TorchLegacyScanner(Scanner):
    """Scans `torch.save(..., _use_new_zipfile_serialization=False)` files of both layouts."""

    formats = frozenset({FileFormat.PYTORCH_LEGACY})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for each pickle in the file; storage data is skipped.

        torch.load tries tarfile first: a head tarfile accepts (its checksum holds) is read
        as a tar, whatever its magic; otherwise the file is a sequence of pickles.
        """
        head = stream.read(BLOCK)
        view = PrefixedStream(head, stream)
        if len(head) == BLOCK and (head[257:262] == b"ustar" or checksum_ok(head)):
            yield from scan_tar(view, ctx)
            return
        yield from scan_legacy_pickles(view, ctx)
