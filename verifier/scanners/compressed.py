"""Compressed streams (joblib's zlib, gzip, bz2, xz, lzma and lz4 pickles)."""

from __future__ import annotations

from collections.abc import Iterator

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.members import nesting_refusal, register_member_scanner, scan_member
from verifier.scanners.raw_pickle import raw_pickle_reading
from verifier.scanners.sniff import (
    HEAD_SIZE,
    compression_kind,
    identify,
    zfile_data_start,
)
from verifier.scanners.streams import (
    UNKNOWN_SIZE,
    DecompressStream,
    InflateError,
    PrefixedStream,
    lz4_available,
)

#: Decompressed bytes allowed per compressed byte (deflate's ceiling is about 1032:1) ...
MAX_RATIO = 1100
#: ... but never less than this, nor more than MAX_DECOMPRESSED.
MIN_CAP = 1 << 30
MAX_DECOMPRESSED = 64 << 30


def scan_compressed(
    stream: ScanStream, ctx: ScanContext, member: str | None, depth: int
) -> Iterator[Finding]:
    """Decompress the stream from its position and scan what it holds, by content.

    The raw bytes are judged too, as a pickle-based loader would read them (see `raw_pickle`).
    """
    base = stream.tell()
    first = stream.read(4096)
    kind = compression_kind(first)
    source = PrefixedStream(first, stream)
    where = f"{member}!({kind})" if member else f"({kind})"
    if kind is None:
        yield ctx.finding(
            "ARCHIVE-UNSCANNABLE", Severity.HIGH, "compressed stream of unknown kind", member=member
        )
        return
    raw = raw_pickle_reading(
        first, size=stream.size - base, read_at=lambda at, n: stream.read_at(base + at, n)
    )
    if not raw.stops:
        yield ctx.finding(
            "CONTAINER-AMBIGUOUS",
            Severity.HIGH,
            f"{kind} stream whose raw bytes a pickle-based loader (pickle.load, torch.load's "
            f"fallback, numpy.load with allow_pickle) would not refuse at once: {raw.reason}; "
            "what follows is chosen by the file's author and is not what was scanned",
            member=member,
            offset=base + raw.offset,
            evidence=f"{kind} head {first[:8].hex()}",
        )
    if kind == "lz4" and not lz4_available():
        yield ctx.finding(
            "ARCHIVE-UNSCANNABLE",
            Severity.HIGH,
            "lz4 stream (joblib compress='lz4'): reading it needs the lz4 package, which is "
            "not installed (pip install 'model-weights-verifier[lz4]'); its content was not "
            "checked",
            member=member,
            evidence="lz4",
        )
        return
    refusal = nesting_refusal(ctx, member=where, depth=depth)
    if refusal is not None:
        yield refusal
        return
    cap = min(MAX_DECOMPRESSED, max(MIN_CAP, MAX_RATIO * (source.size - source.tell())))
    if kind == "zfile":  # joblib's legacy z-file: a length header, then one zlib stream
        source.skip(zfile_data_start(first) or 0)
        kind = "zlib"
    body = DecompressStream(source, kind, cap=cap, budget=ctx.budget)
    try:
        head = body.read(HEAD_SIZE)
        fmt = identify(head, len(head) if len(head) < HEAD_SIZE else UNKNOWN_SIZE)
        yield from scan_member(PrefixedStream(head, body), ctx, fmt, member=where, depth=depth + 1)
    except InflateError as exc:
        code = "ARCHIVE-BOMB" if exc.bomb else "ARCHIVE-UNSCANNABLE"
        yield ctx.finding(code, Severity.HIGH, f"{kind} stream: {exc}", member=where)


def _scan_compressed_member(
    stream: ScanStream, ctx: ScanContext, member: str, depth: int
) -> Iterator[Finding]:
    yield from scan_compressed(stream, ctx, member, depth)


register_member_scanner(FileFormat.COMPRESSED, _scan_compressed_member)


class CompressedScanner(Scanner):
    """Scans a compressed file's content (for example a joblib dump with compress=...)."""

    formats = frozenset({FileFormat.COMPRESSED})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for the decompressed content."""
        yield from scan_compressed(stream, ctx, None, 0)
