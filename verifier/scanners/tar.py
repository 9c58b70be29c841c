"""Tar archives (PyTorch's oldest format among them): members scanned by content, in order."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.members import MAX_DEPTH, register_member_scanner, scan_member
from verifier.scanners.sniff import HEAD_SIZE, identify
from verifier.scanners.streams import BoundedStream, PrefixedStream

_BLOCK = 512
_LINKS = (b"1", b"2")
_SKIPPED_KINDS = (b"x", b"g", b"L", b"K", b"5", b"3", b"4", b"6")  # headers, dirs, devices


def _octal(field: bytes) -> int:
    raw = field.split(b"\0", 1)[0].strip()
    if field[:1] == b"\x80":  # GNU base-256 size
        return int.from_bytes(field[1:], "big")
    return int(raw or b"0", 8)


def _escapes(target: str) -> bool:
    return target.startswith("/") or ".." in posixpath.normpath(target).split("/")


def scan_tar(
    stream: ScanStream, ctx: ScanContext, *, prefix: str = "", depth: int = 0
) -> Iterator[Finding]:
    """Walk a tar from the stream's position: each member identified and scanned by content."""
    while True:
        offset = stream.tell()
        header = stream.read(_BLOCK)
        if len(header) < _BLOCK or header == bytes(_BLOCK):
            return
        name = prefix + header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        kind = header[156:157]
        try:
            size = _octal(header[124:136])
        except ValueError:
            yield ctx.finding(
                "ARCHIVE-UNSCANNABLE",
                Severity.HIGH,
                "tar header has an invalid size",
                member=name,
                offset=offset,
            )
            return
        if kind in _LINKS:
            target = header[157:257].split(b"\0", 1)[0].decode("utf-8", "replace")
            if _escapes(target):
                yield ctx.finding(
                    "ARCHIVE-UNSCANNABLE",
                    Severity.HIGH,
                    f"tar member is a link to {target!r}, outside the archive; links are "
                    "not followed",
                    member=name,
                    evidence=target,
                )
        body = BoundedStream(stream, size)
        if kind not in _SKIPPED_KINDS and kind not in _LINKS and size:
            head = body.read(min(size, HEAD_SIZE))
            fmt = identify(head, size)
            yield from scan_member(
                PrefixedStream(head, body), ctx, fmt, member=name, depth=depth + 1
            )
        if body.finish():
            yield ctx.finding(
                "ARCHIVE-TRUNCATED", Severity.HIGH, "tar member is truncated", member=name
            )
            return
        stream.skip(-size % _BLOCK)


def _scan_tar_member(
    stream: ScanStream, ctx: ScanContext, member: str, depth: int
) -> Iterator[Finding]:
    if depth + 1 > MAX_DEPTH:
        yield ctx.finding(
            "ARCHIVE-BOMB",
            Severity.HIGH,
            f"containers nested more than {MAX_DEPTH} levels deep; the innermost was not opened",
            member=member,
        )
        return
    yield from scan_tar(stream, ctx, prefix=member + "!", depth=depth + 1)


register_member_scanner(FileFormat.TAR, _scan_tar_member)


class TarScanner(Scanner):
    """Scans a tar archive's members."""

    formats = frozenset({FileFormat.TAR})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for every member and for links that leave the archive."""
        yield from scan_tar(stream, ctx)
