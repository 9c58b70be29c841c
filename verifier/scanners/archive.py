"""Zip containers (PyTorch archives, npz, plain zip): each member opened by content, one pass."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.pickle import analyse_pickle, pickle_findings
from verifier.scanners.sniff import identify
from verifier.scanners.streams import BoundedStream, InflateError, InflateStream, PrefixedStream

#: Most central-directory entries read; more is a finding.
MAX_ENTRIES = 200_000
#: Largest central directory read.
MAX_DIRECTORY = 64 << 20
#: Most bytes a compressed member may expand to before it is called a bomb.
MAX_INFLATED = 4 << 30
#: Deepest nesting of zips inside zips that is opened.
MAX_DEPTH = 3
_HEAD = 65536
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_STORED, _DEFLATED = 0, 8
_PICKLE_FORMATS = {FileFormat.PICKLE, FileFormat.PYTORCH_LEGACY}
_ZIP_FORMATS = {FileFormat.ZIP, FileFormat.PYTORCH_ZIP, FileFormat.NUMPY_NPZ}


class ZipStructureError(Exception):
    """The archive's directory cannot be read."""


@dataclass(frozen=True)
class _Entry:
    name: str
    method: int
    flags: int
    crc: int
    compressed: int
    size: int
    offset: int


def _zip64_values(extra: bytes, wanted: list[bool]) -> list[int]:
    """Values from a zip64 extended-information field, in the order the spec lists them."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 0x0001:
            values = []
            at = 0
            for need in wanted:
                if need:
                    if at + 8 > len(body):
                        raise ZipStructureError("zip64 extra field is too short")
                    values.append(struct.unpack_from("<Q", body, at)[0])
                    at += 8
            return values
        pos += 4 + length
    raise ZipStructureError("zip64 sizes announced but no zip64 extra field")


def has_end_record(stream: ScanStream) -> bool:
    """Whether the file ends with a zip end-of-central-directory record (metadata read only)."""
    tail_len = min(stream.size, 65557)
    tail = stream.read_at(stream.size - tail_len, tail_len)
    at = tail.rfind(_EOCD)
    return at >= 0 and at + 22 <= len(tail)


def read_directory(stream: ScanStream) -> list[_Entry]:
    """Read the central directory from the end of the archive (metadata only).

    Raises:
        ZipStructureError: no end record, or a directory that is truncated or too large.
    """
    tail_len = min(stream.size, 65557)
    tail = stream.read_at(stream.size - tail_len, tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        raise ZipStructureError("no end-of-central-directory record")
    (_, _, _, _, count, cd_size, cd_offset, _) = struct.unpack_from("<4sHHHHIIH", tail, at)
    eocd_pos = stream.size - tail_len + at
    dir_end = eocd_pos
    loc = stream.read_at(eocd_pos - 20, 20) if eocd_pos >= 76 else b""
    if len(loc) == 20 and loc[:4] == _EOCD64_LOCATOR:
        # Like zipfile, read the zip64 record just before its locator (its stated offset is
        # relative to the archive's start, which may not be the file's).
        rec = stream.read_at(eocd_pos - 76, 56)
        if len(rec) != 56 or rec[:4] != b"PK\x06\x06":
            raise ZipStructureError("zip64 end record missing")
        count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec, 32)
        dir_end = eocd_pos - 76
    elif 0xFFFFFFFF in (cd_size, cd_offset) or count == 0xFFFF:
        raise ZipStructureError("zip64 archive without a zip64 locator")
    if count > MAX_ENTRIES or cd_size > MAX_DIRECTORY:
        raise ZipStructureError(f"central directory too large ({count} entries)")
    # A zip appended to other data (a pickle, say) keeps offsets relative to its own start;
    # like zipfile, shift them by what precedes the directory.
    base = dir_end - cd_size - cd_offset
    if base < 0 or base + cd_offset + cd_size > stream.size:
        raise ZipStructureError("central directory lies beyond the end of the file")
    data = stream.read_at(base + cd_offset, cd_size)
    entries: list[_Entry] = []
    pos = 0
    for _ in range(count):
        if data[pos : pos + 4] != _CENTRAL or pos + 46 > len(data):
            raise ZipStructureError("central directory entry is corrupt")
        fields = struct.unpack_from("<4sHHHHHHIIIHHHHHII", data, pos)
        flags, method, crc, csize, usize = fields[3], fields[4], fields[7], fields[8], fields[9]
        nlen, xlen, clen, offset = fields[10], fields[11], fields[12], fields[16]
        raw_name = data[pos + 46 : pos + 46 + nlen]
        extra = data[pos + 46 + nlen : pos + 46 + nlen + xlen]
        wanted = [usize == 0xFFFFFFFF, csize == 0xFFFFFFFF, offset == 0xFFFFFFFF]
        if any(wanted):
            values = iter(_zip64_values(extra, wanted))
            usize = next(values) if wanted[0] else usize
            csize = next(values) if wanted[1] else csize
            offset = next(values) if wanted[2] else offset
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        entries.append(_Entry(name, method, flags, crc, csize, usize, base + offset))
        pos += 46 + nlen + xlen + clen
    return entries


class ZipScanner(Scanner):
    """Walks a zip's members in file order, scanning pickles and nested archives by content."""

    formats = frozenset(_ZIP_FORMATS)

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for every member, the directory and the archive's structure."""
        yield from scan_zip(stream, ctx, prefix="", depth=0)


def scan_zip(stream: ScanStream, ctx: ScanContext, *, prefix: str, depth: int) -> Iterator[Finding]:
    """Scan an archive whose first byte is at the stream's current position."""
    try:
        entries = read_directory(stream)
    except ZipStructureError as exc:
        yield ctx.finding(
            "ARCHIVE-UNSCANNABLE",
            Severity.HIGH,
            f"zip archive cannot be read: {exc}",
            member=prefix or None,
        )
        return
    names: set[str] = set()
    for entry in entries:
        if entry.name in names:
            yield ctx.finding(
                "ZIP-DUPLICATE-NAME",
                Severity.HIGH,
                f"archive holds two members named {entry.name!r}; loaders may read either",
                member=prefix + entry.name,
            )
        names.add(entry.name)
    for entry in sorted(entries, key=lambda e: e.offset):
        gap = entry.offset - stream.tell()
        if gap < 0:
            yield ctx.finding(
                "ZIP-OVERLAP",
                Severity.HIGH,
                "archive members overlap",
                member=prefix + entry.name,
                offset=entry.offset,
            )
            continue
        stream.skip(gap)
        yield from _scan_member(stream, ctx, entry, prefix=prefix, depth=depth)


def _scan_member(
    stream: ScanStream, ctx: ScanContext, entry: _Entry, *, prefix: str, depth: int
) -> Iterator[Finding]:
    member = prefix + entry.name
    header = stream.read(30)
    if len(header) < 30 or header[:4] != _LOCAL:
        yield ctx.finding(
            "ZIP-INCONSISTENT",
            Severity.HIGH,
            "central directory points at something that is not a local file header",
            member=member,
            offset=entry.offset,
        )
        return
    nlen, xlen = struct.unpack_from("<HH", header, 26)
    local_name = stream.read(nlen)
    stream.skip(xlen)
    if local_name.decode("utf-8", "replace") != entry.name and local_name.decode(
        "cp437", "replace"
    ) != (entry.name):
        yield ctx.finding(
            "ZIP-INCONSISTENT",
            Severity.HIGH,
            f"local header names {local_name!r} but the directory names {entry.name!r}",
            member=member,
            offset=entry.offset,
        )
    if entry.method == _STORED:
        body: BoundedStream | InflateStream = BoundedStream(stream, entry.compressed)
    elif entry.method == _DEFLATED:
        body = InflateStream(stream, compressed=entry.compressed, size=entry.size, cap=MAX_INFLATED)
    else:
        yield ctx.finding(
            "ARCHIVE-UNSCANNABLE",
            Severity.HIGH,
            f"member uses compression method {entry.method}, which the scanner cannot open",
            member=member,
        )
        stream.skip(entry.compressed)
        return
    try:
        yield from _scan_body(body, ctx, entry, member=member, depth=depth)
        missing = body.finish()
    except InflateError as exc:
        yield ctx.finding("ARCHIVE-UNSCANNABLE", Severity.HIGH, str(exc), member=member)
        missing = body.abandon() if isinstance(body, InflateStream) else body.finish()
    if missing:
        yield ctx.finding(
            "ZIP-TRUNCATED",
            Severity.HIGH,
            f"member is {missing} byte(s) shorter than the directory says",
            member=member,
        )


def _scan_body(
    body: BoundedStream | InflateStream,
    ctx: ScanContext,
    entry: _Entry,
    *,
    member: str,
    depth: int,
) -> Iterator[Finding]:
    head = body.read(min(_HEAD, entry.size))
    fmt = identify(head, entry.size)
    view = PrefixedStream(head, body)
    if fmt in _PICKLE_FORMATS:
        analysis = analyse_pickle(view, limit=entry.size)
        yield from pickle_findings(analysis, ctx, member=member)
        yield from _check_crc(body, ctx, entry, member=member)
    elif fmt in _ZIP_FORMATS:
        if depth + 1 > MAX_DEPTH or isinstance(body, InflateStream):
            yield ctx.finding(
                "ARCHIVE-UNSCANNABLE",
                Severity.HIGH,
                "nested archive is compressed or nested too deeply to open in one pass",
                member=member,
            )
            return
        yield from scan_zip(view, ctx, prefix=member + "!", depth=depth + 1)
    elif fmt is FileFormat.NUMPY:
        from verifier.scanners.numpy import scan_npy

        yield from scan_npy(view, ctx, member=member)


def _check_crc(
    body: BoundedStream | InflateStream, ctx: ScanContext, entry: _Entry, *, member: str
) -> Iterator[Finding]:
    """Check the CRC of a small pickle member (re-reading only that member's metadata bytes)."""
    if isinstance(body, InflateStream) or entry.compressed > MAX_DIRECTORY:
        return
    data = body.read_at(0, entry.compressed)
    if zlib.crc32(data) != entry.crc:
        yield ctx.finding(
            "ZIP-CRC-MISMATCH",
            Severity.HIGH,
            "pickle member's CRC does not match the directory; loaders may reject or misread it",
            member=member,
        )
