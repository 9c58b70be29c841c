"""Zip containers (PyTorch archives, npz, plain zip): each member opened by content, one pass."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.budget import RULE
from verifier.scanners.interface import PickleReader, ScanContext, Scanner, ScanStream
from verifier.scanners.keras import scan_config_member
from verifier.scanners.members import (
    escapes,
    link_escapes,
    scan_member,
)
from verifier.scanners.sniff import identify
from verifier.scanners.streams import (
    BoundedStream,
    InflateError,
    InflateStream,
    PrefixedStream,
    ReplayStream,
)
from verifier.scanners.torchscript import TorchScriptArchive, archive_folder

#: Most central-directory entries read; more is a finding.
MAX_ENTRIES = 200_000
#: Largest central directory read.
MAX_DIRECTORY = 64 << 20
#: Most bytes a compressed member may expand to before it is called a bomb.
MAX_INFLATED = 4 << 30
_HEAD = 65536
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_STORED, _DEFLATED = 0, 8
_PICKLE_FORMATS = {FileFormat.PICKLE, FileFormat.PYTORCH_LEGACY}
_STORAGE = re.compile(r"(^|/)data/\d+$")
_IMPORT_CODES = frozenset(
    {
        "PICKLE-DANGEROUS-GLOBAL",
        "PICKLE-UNKNOWN-GLOBAL",
        "PICKLE-UNRESOLVED-GLOBAL",
        "PICKLE-EXTENSION-CODE",
    }
)
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
    made_by: int = 0
    external: int = 0

    @property
    def is_symlink(self) -> bool:
        """A unix symbolic link (the member's data is the target), as unzip tools extract it."""
        return self.made_by >> 8 == 3 and (self.external >> 16) & 0o170000 == 0o120000


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


def read_directory(stream: ScanStream, *, follow_locator: bool = False) -> list[_Entry]:
    """Read the central directory from the end of the archive (metadata only).

    By default the directory is read as Python's zipfile reads it: the zip64 end record just
    before its locator, offsets shifted by any data in front of the archive, every entry in the
    directory's stated size (whatever the end record counts), names cut at a NUL. With
    `follow_locator`, as PyTorch's reader (miniz) reads it: the zip64 record at the offset the
    locator states, offsets taken as they are, as many entries as the end record counts, names
    whole.

    Raises:
        ZipStructureError: no end record, or a directory that is truncated or too large.
    """
    return read_directory_counted(stream, follow_locator=follow_locator)[0]


def _end_record(stream: ScanStream) -> tuple[bytes, int]:
    """The end record and its position, found as zipfile finds it."""
    if stream.size >= 22:
        # zipfile first tries an end record with no comment at the very end.
        last = stream.read_at(stream.size - 22, 22)
        if last[:4] == _EOCD and last[-2:] == b"\0\0":
            return last, stream.size - 22
    tail_len = min(stream.size, 65557)
    tail = stream.read_at(stream.size - tail_len, tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        raise ZipStructureError("no end-of-central-directory record")
    return tail[at : at + 22], stream.size - tail_len + at


def read_directory_counted(
    stream: ScanStream, *, follow_locator: bool = False
) -> tuple[list[_Entry], int]:
    """`read_directory`, with the number of entries the end record declares.

    Raises:
        ZipStructureError: as `read_directory`.
    """
    record, eocd_pos = _end_record(stream)
    (_, _, _, _, count, cd_size, cd_offset, _) = struct.unpack("<4sHHHHIIH", record)
    dir_end = eocd_pos
    loc = stream.read_at(eocd_pos - 20, 20) if eocd_pos >= 76 else b""
    if len(loc) == 20 and loc[:4] == _EOCD64_LOCATOR:
        # zipfile reads the zip64 record just before its locator; miniz where the locator says.
        stated = struct.unpack_from("<Q", loc, 8)[0]
        rec_at = stated if follow_locator else eocd_pos - 76
        rec = stream.read_at(rec_at, 56) if rec_at <= stream.size - 56 else b""
        if len(rec) != 56 or rec[:4] != b"PK\x06\x06":
            raise ZipStructureError("zip64 end record missing")
        count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec, 32)
        dir_end = eocd_pos - 76
    elif 0xFFFFFFFF in (cd_size, cd_offset) or count == 0xFFFF:
        raise ZipStructureError("zip64 archive without a zip64 locator")
    if count > MAX_ENTRIES or cd_size > MAX_DIRECTORY:
        raise ZipStructureError(f"central directory too large ({count} entries)")
    # A zip appended to other data (a pickle, say) keeps offsets relative to its own start;
    # like zipfile, shift them by what precedes the directory (miniz does not).
    base = 0 if follow_locator else dir_end - cd_size - cd_offset
    if base < 0 or base + cd_offset + cd_size > stream.size:
        raise ZipStructureError("central directory lies beyond the end of the file")
    data = stream.read_at(base + cd_offset, cd_size)
    entries: list[_Entry] = []
    pos = 0
    # zipfile reads entries until the directory's size is used up; miniz reads `count` of them.
    while (len(entries) < count) if follow_locator else (pos < cd_size):
        if data[pos : pos + 4] != _CENTRAL or pos + 46 > len(data):
            raise ZipStructureError("central directory entry is corrupt")
        if len(entries) >= MAX_ENTRIES:
            raise ZipStructureError(f"central directory too large (over {MAX_ENTRIES} entries)")
        entry, pos = _central_entry(data, pos, base=base, whole_name=follow_locator)
        entries.append(entry)
    return entries, count


def _central_entry(data: bytes, pos: int, *, base: int, whole_name: bool) -> tuple[_Entry, int]:
    """One central directory entry at `pos`, and where the next one starts."""
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
    if not whole_name:
        name = name.split("\0", 1)[0]  # zipfile's ZipInfo cuts the name at a NUL
    entry = _Entry(
        name,
        method,
        flags,
        crc,
        csize,
        usize,
        base + offset,
        made_by=fields[1],
        external=fields[15],
    )
    return entry, pos + 46 + nlen + xlen + clen


class ZipScanner(Scanner):
    """Walks a zip's members in file order, scanning pickles and nested archives by content."""

    formats = frozenset(_ZIP_FORMATS)

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for every member, the directory and the archive's structure."""
        yield from scan_zip(stream, ctx, prefix="", depth=0)


def scan_zip(stream: ScanStream, ctx: ScanContext, *, prefix: str, depth: int) -> Iterator[Finding]:
    """Scan an archive whose first byte is at the stream's current position.

    The members are those Python's zipfile lists. When the archive starts at the stream's
    first byte with a local header (what torch.load checks before using its own reader) and
    PyTorch's reader would find a different directory, the file is CONTAINER-AMBIGUOUS and
    the members only that reader sees are scanned as well.
    """
    try:
        entries, declared = read_directory_counted(stream)
    except ZipStructureError as exc:
        yield ctx.finding(
            "ARCHIVE-UNSCANNABLE",
            Severity.HIGH,
            f"zip archive cannot be read: {exc}",
            member=prefix or None,
        )
        return
    if declared != len(entries):
        yield ctx.finding(
            "ZIP-INCONSISTENT",
            Severity.HIGH,
            f"the end record counts {declared} entries but the central directory holds "
            f"{len(entries)}: zipfile lists them all, PyTorch's reader the first {declared}; "
            "all were scanned",
            member=prefix or None,
        )
    others = _miniz_only(stream, entries)
    yield from _directory_findings(ctx, entries, prefix=prefix)
    over = _over_budget(ctx, entries, prefix=prefix)
    if over is not None:  # refused before anything is inflated; stored members still scanned
        yield over
        entries = [e for e in entries if e.method != _DEFLATED]
    folder = archive_folder([e.name for e in entries])
    script = TorchScriptArchive(folder) if folder is not None else None
    yield from _walk_entries(stream, ctx, entries, prefix=prefix, depth=depth, script=script)
    if others:
        yield ctx.finding(
            "CONTAINER-AMBIGUOUS",
            Severity.HIGH,
            "PyTorch's zip reader (which follows the zip64 locator, takes offsets as stated "
            "and names whole) finds members that Python's zipfile does not; both views were "
            "scanned",
            member=prefix or None,
            evidence=", ".join(sorted({e.name for e in others}))[:200],
        )
        yield from _directory_findings(ctx, others, prefix=prefix)
        yield from _walk_entries(
            ReplayStream(stream), ctx, others, prefix=prefix, depth=depth, script=script
        )
    if script is not None:
        yield script.summary(ctx, member=prefix or None)


def _over_budget(ctx: ScanContext, entries: list[_Entry], *, prefix: str) -> Finding | None:
    """A finding when the deflated members together declare more than the budget has left.

    Each member's declared size is enforced as it inflates, so the sum is an upper bound.
    """
    if ctx.budget is None:
        return None
    declared = sum(e.size for e in entries if e.method == _DEFLATED)
    left = ctx.budget.remaining()
    if declared <= left:
        return None
    return ctx.finding(
        "ARCHIVE-BOMB",
        Severity.HIGH,
        f"the archive's deflated members declare {declared} bytes inflated, more than the "
        f"{left} left of the decompression budget ({RULE}); none of them was decompressed",
        member=prefix or None,
    )


def _miniz_only(stream: ScanStream, entries: list[_Entry]) -> list[_Entry]:
    """Entries PyTorch's reader would list and zipfile would not (none if it cannot read it)."""
    if stream.tell() != 0 or stream.read_at(0, 4) != _LOCAL:
        return []
    try:
        miniz = read_directory(stream, follow_locator=True)
    except ZipStructureError:
        return []
    known = {(e.name, e.offset, e.compressed, e.size, e.method) for e in entries}
    return [e for e in miniz if (e.name, e.offset, e.compressed, e.size, e.method) not in known]


def _directory_findings(
    ctx: ScanContext, entries: list[_Entry], *, prefix: str
) -> Iterator[Finding]:
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
        if escapes(entry.name):
            yield ctx.finding(
                "ARCHIVE-PATH-TRAVERSAL",
                Severity.HIGH,
                f"zip member name {entry.name!r} would be extracted outside the folder",
                member=prefix + entry.name,
                evidence=entry.name,
            )


def _walk_entries(
    stream: ScanStream,
    ctx: ScanContext,
    entries: list[_Entry],
    *,
    prefix: str,
    depth: int,
    script: TorchScriptArchive | None,
) -> Iterator[Finding]:
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
        yield from _scan_member(stream, ctx, entry, prefix=prefix, depth=depth, script=script)


def _scan_member(
    stream: ScanStream,
    ctx: ScanContext,
    entry: _Entry,
    *,
    prefix: str,
    depth: int,
    script: TorchScriptArchive | None,
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
    flags, local_csize, local_size = struct.unpack_from("<6xH10xII", header)
    described = flags & 0x08 or 0xFFFFFFFF in (local_csize, local_size)
    if not described and (local_csize, local_size) != (entry.compressed, entry.size):
        yield ctx.finding(
            "ZIP-INCONSISTENT",
            Severity.HIGH,
            f"local header gives sizes {local_csize}/{local_size} but the directory "
            f"{entry.compressed}/{entry.size}; streaming readers would read other bytes",
            member=member,
            offset=entry.offset,
        )
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
    if entry.method not in (_STORED, _DEFLATED):
        yield ctx.finding(
            "ARCHIVE-UNSCANNABLE",
            Severity.HIGH,
            f"member uses compression method {entry.method}, which the scanner cannot open",
            member=member,
        )
        stream.skip(entry.compressed)
        return
    if entry.method == _DEFLATED and _looks_like_bomb(entry):
        yield ctx.finding(
            "ARCHIVE-BOMB",
            Severity.HIGH,
            f"member claims to expand {entry.compressed} bytes to {entry.size} bytes; "
            "it was not decompressed",
            member=member,
        )
        stream.skip(entry.compressed)
        return
    if entry.is_symlink:
        yield from _symlink_findings(stream, ctx, entry, member=member)
        return
    if entry.method == _DEFLATED and ctx.budget is not None:
        left = ctx.budget.remaining()
        if entry.size > left:
            yield ctx.finding(
                "ARCHIVE-BOMB",
                Severity.HIGH,
                f"member declares {entry.size} bytes inflated, more than the {left} left of "
                f"the decompression budget ({RULE}); it was not decompressed",
                member=member,
            )
            stream.skip(entry.compressed)
            return
    body: BoundedStream | InflateStream
    if entry.method == _STORED:
        body = BoundedStream(stream, entry.compressed)
    else:
        body = InflateStream(
            stream,
            compressed=entry.compressed,
            size=entry.size,
            cap=entry.size,
            budget=ctx.budget,
        )
    try:
        yield from _scan_body(body, ctx, entry, member=member, depth=depth, script=script)
        missing = body.finish()
        if isinstance(body, InflateStream) and body.crc is not None and body.crc != entry.crc:
            yield _crc_finding(ctx, member)
    except InflateError as exc:
        code = "ARCHIVE-BOMB" if exc.bomb else "ARCHIVE-UNSCANNABLE"
        yield ctx.finding(code, Severity.HIGH, str(exc), member=member)
        missing = body.abandon() if isinstance(body, InflateStream) else body.finish()
    if missing:
        yield ctx.finding(
            "ZIP-TRUNCATED",
            Severity.HIGH,
            f"member is {missing} byte(s) shorter than the directory says",
            member=member,
        )


def _symlink_findings(
    stream: ScanStream, ctx: ScanContext, entry: _Entry, *, member: str
) -> Iterator[Finding]:
    """A unix symlink member: its data is the link target (read, never followed)."""
    body: BoundedStream | InflateStream
    if entry.method == _STORED:
        body = BoundedStream(stream, entry.compressed)
    else:
        body = InflateStream(stream, compressed=entry.compressed, size=entry.size, cap=4096)
    try:
        target = body.read(4096).decode("utf-8", "backslashreplace")
        body.finish()
    except InflateError:
        target = ""
        if isinstance(body, InflateStream):
            body.abandon()
        else:
            body.finish()
    if not target or link_escapes(entry.name, target, hard=False):
        yield ctx.finding(
            "ARCHIVE-PATH-TRAVERSAL",
            Severity.HIGH,
            f"zip member is a symbolic link to {target!r}, outside the archive",
            member=member,
            evidence=target,
        )


def _looks_like_bomb(entry: _Entry) -> bool:
    """A declared expansion no model member needs: over MAX_INFLATED, or 1000:1 past 1 GiB."""
    if entry.size > MAX_INFLATED:
        return True
    return entry.size > (1 << 30) and entry.size > 1000 * max(entry.compressed, 1)


def _scan_body(
    body: BoundedStream | InflateStream,
    ctx: ScanContext,
    entry: _Entry,
    *,
    member: str,
    depth: int,
    script: TorchScriptArchive | None,
) -> Iterator[Finding]:
    if script is not None and script.is_code(entry.name):
        yield from script.read_code(body, ctx, member=member)
        return
    if entry.name == "config.json":
        # Keras reads the archive's config.json with json.loads on the bytes: any UTF encoding.
        yield from scan_config_member(body, ctx, member=member, depth=depth)
        return
    head = body.read(min(_HEAD, entry.size))
    fmt = identify(head, entry.size)
    view = PrefixedStream(head, body)
    if script is not None and script.is_pickle(entry.name):
        ctx = replace(ctx, pickle_reader=PickleReader.TORCHSCRIPT)
    findings = scan_member(view, ctx, fmt, member=member, depth=depth)
    if _STORAGE.search(entry.name):
        # PyTorch reads `<folder>/data/<n>` as raw tensor bytes, never parses them: bytes that
        # happen to look like a format are only reported if they import something.
        findings = (f for f in findings if f.code in _IMPORT_CODES)
    yield from findings
    if fmt in _PICKLE_FORMATS and isinstance(body, BoundedStream):
        yield from _check_crc(body, ctx, entry, member=member)


def _crc_finding(ctx: ScanContext, member: str) -> Finding:
    return ctx.finding(
        "ZIP-CRC-MISMATCH",
        Severity.HIGH,
        "member's CRC does not match the directory; loaders may reject or misread it",
        member=member,
    )


def _check_crc(
    body: BoundedStream, ctx: ScanContext, entry: _Entry, *, member: str
) -> Iterator[Finding]:
    """Check the CRC of a small stored pickle member (re-reading only that member's bytes)."""
    if entry.compressed > MAX_DIRECTORY:
        return
    data = body.read_at(0, entry.compressed)
    if len(data) != entry.compressed:
        return  # no random access (a zip read forward): its reader checks the CRC as it reads
    if zlib.crc32(data) != entry.crc:
        yield _crc_finding(ctx, member)
