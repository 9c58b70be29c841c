"""7z archives, read with py7zr (extra `7z`): every member extracted under the budget, scanned.

rar stays recognised and refused unread. A 7z archive is copied forward into an unnamed
temporary file (so the bytes scanned are the bytes hashed, read once), its header is read by
py7zr, declared sizes are checked against the decompression budget before anything is
inflated, and each member is inflated by py7zr into its own unnamed temporary file, charged
to the budget as it is written, then scanned by content through `scan_member` and dropped:
memory holds py7zr's bounded blocks and header, never a whole member.
"""

from __future__ import annotations

import io
import lzma
import os
import posixpath
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.budget import MAX_DICTIONARY, RULE, DecompressionBudget
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.members import (
    escapes,
    link_escapes,
    nesting_refusal,
    register_member_scanner,
    scan_member,
)
from verifier.scanners.sniff import HEAD_SIZE, archive_kind, identify
from verifier.scanners.streams import PrefixedStream

#: Most entries read from one 7z archive's header.
MAX_MEMBERS = 100_000
#: Largest member inflated, whatever the budget (as `archive.MAX_INFLATED` for zip).
MAX_MEMBER = 4 << 30
#: Largest (raw) header read; py7zr itself caps a decoded header at 256 MiB.
MAX_HEADER = 64 << 20
_START_HEADER = 32
_COPY = 1 << 20
_LINK_TARGET = 4096


class _SpoolReader(io.BufferedReader):
    """The spooled archive as py7zr reads it, with a name.

    py7zr names an entry stored without a name after the archive's file name, with
    `os.path.basename`: an unnamed temporary file's name is its descriptor, an int.
    """

    name = "archive.7z"


class _OverBudget(Exception):
    """A member inflated past its declared size or the decompression budget."""


class _FileStream:
    """A ScanStream over an unnamed temporary file holding one inflated member."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self._fd = handle.fileno()
        self._size = size
        self._pos = 0

    @property
    def size(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def read(self, n: int) -> bytes:
        out = self.read_at(self._pos, min(n, self._size - self._pos))
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        step = max(0, min(n, self._size - self._pos))
        self._pos += step
        return step

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0 or offset >= self._size:
            return b""
        return os.pread(self._fd, min(n, self._size - offset), offset)


@dataclass(frozen=True)
class _Entry:
    name: str
    size: int
    is_directory: bool
    is_symlink: bool
    #: The name py7zr is asked to extract: `name`, or an alias for a name that escapes.
    key: str


def py7zr_available() -> bool:
    """Whether the optional py7zr package (extra `7z`) can be imported to read 7z archives."""
    try:
        import py7zr  # noqa: F401
    except ImportError:
        return False
    return True


def _read_errors() -> tuple[type[BaseException], ...]:
    """What py7zr raises on hostile or damaged input: translated to findings at this edge."""
    import py7zr.exceptions

    return (
        py7zr.exceptions.ArchiveError,
        py7zr.exceptions.PasswordRequired,
        py7zr.exceptions.AbsolutePathError,
        lzma.LZMAError,
        zlib.error,
        struct.error,
        EOFError,
        ValueError,
        KeyError,
        IndexError,
        NotImplementedError,
        OSError,
    )


def scan_7z(stream: ScanStream, ctx: ScanContext, *, prefix: str, depth: int) -> Iterator[Finding]:
    """Scan the 7z archive from the stream's position: every member py7zr reads, by content."""
    member = prefix.removesuffix("!") or None
    if not py7zr_available():
        yield ctx.finding(
            "ARCHIVE-UNSCANNABLE",
            Severity.HIGH,
            "7z archive: reading it needs the py7zr package, which is not installed "
            "(pip install 'model-weights-verifier[7z]'); its content was not checked",
            member=member,
            evidence="7z",
        )
        return
    try:
        with tempfile.TemporaryFile(prefix="verifier-7z-") as spool:
            copied = _spool(stream, spool)
            findings = list(_scan_spooled(spool, copied, ctx, prefix=prefix, depth=depth))
    except OSError as exc:  # no room or no temporary folder: refused, never a crash
        findings = [
            ctx.finding(
                "ARCHIVE-UNSCANNABLE",
                Severity.HIGH,
                f"7z archive could not be copied to a temporary file ({exc.strerror or exc}); "
                "its content was not checked",
                member=member,
            )
        ]
    yield from findings


def _spool(stream: ScanStream, spool: IO[bytes]) -> int:
    copied = 0
    while chunk := stream.read(_COPY):
        spool.write(chunk)
        copied += len(chunk)
    spool.flush()
    spool.seek(0)
    return copied


def _scan_spooled(
    spool: IO[bytes], size: int, ctx: ScanContext, *, prefix: str, depth: int
) -> Iterator[Finding]:
    import py7zr

    member = prefix.removesuffix("!") or None
    refused = _header_refusal(spool, size)
    if refused is not None:
        code, message = refused
        yield ctx.finding(code, Severity.HIGH, message, member=member)
        return
    budget = ctx.budget or DecompressionBudget.for_file(size)
    errors = _read_errors()
    findings: list[Finding] = []
    try:
        with (
            _SpoolReader(io.FileIO(spool.fileno(), "r", closefd=False)) as reader,
            py7zr.SevenZipFile(reader, mode="r", max_extract_size=budget.remaining()) as archive,
        ):
            if archive.needs_password():
                findings.append(_encrypted(ctx, member, "its members are encrypted"))
            else:
                _scan_archive(archive, ctx, budget, findings, prefix=prefix, depth=depth)
    except py7zr.exceptions.PasswordRequired:
        findings.append(_encrypted(ctx, member, "its header is encrypted"))
    except _OverBudget as exc:
        findings.append(ctx.finding("ARCHIVE-BOMB", Severity.HIGH, str(exc), member=member))
    except py7zr.exceptions.DecompressionBombError as exc:
        findings.append(
            ctx.finding(
                "ARCHIVE-BOMB",
                Severity.HIGH,
                f"7z archive inflates past the decompression budget ({RULE}): {exc}",
                member=member,
            )
        )
    except errors as exc:
        findings.append(
            ctx.finding(
                "ARCHIVE-UNSCANNABLE",
                Severity.HIGH,
                f"7z archive cannot be read: {type(exc).__name__}: {exc}"[:300]
                + "; members not yet scanned were not checked",
                member=member,
            )
        )
    yield from findings


def _header_refusal(spool: IO[bytes], size: int) -> tuple[str, str] | None:
    """The finding code and message refusing the header before py7zr reads it, or None."""
    start = os.pread(spool.fileno(), _START_HEADER, 0)
    unscannable = "ARCHIVE-UNSCANNABLE"
    if len(start) < _START_HEADER:
        return unscannable, "7z archive is truncated: its start header is incomplete"
    offset, length = struct.unpack_from("<QQ", start, 12)
    if length > MAX_HEADER:
        return (
            unscannable,
            f"7z archive header of {length} bytes is larger than the {MAX_HEADER >> 20} MiB read",
        )
    if _START_HEADER + offset + length > size:
        return unscannable, "7z archive is truncated: its header lies beyond the end of the file"
    header = os.pread(spool.fileno(), length, _START_HEADER + offset)
    return _encoded_header_refusal(spool, header)


#: 7z coder ids (py7zr.properties.CompressionMethod) whose decoders allocate what they declare.
_LZMA, _LZMA2, _PPMD = b"\x03\x01\x01", b"\x21", b"\x03\x04\x01"
_AES = b"\x06\xf1\x07\x01"
_ENCODED_HEADER = 0x17


def coder_memory(method: bytes, properties: bytes | None) -> int:
    """The bytes a 7z coder's decoder allocates before it inflates anything, from its properties.

    LZMA: a dictionary of the size in properties 1-4; LZMA2: the size coded in its one
    property byte (40 is 4 GiB - 1, past 40 liblzma refuses: counted as 4 GiB); PPMd: a model
    of the size in properties 1-4. Other coders (deflate, bzip2, BCJ, AES) use small fixed
    amounts: 0.
    """
    props = properties or b""
    if method in (_LZMA, _PPMD):
        return int.from_bytes(props[1:5], "little")
    if method == _LZMA2 and props:
        bits = props[0] & 0x3F
        if bits >= 40:
            return 0xFFFFFFFF if bits == 40 else 1 << 32
        return (2 | (bits & 1)) << (bits // 2 + 11)
    return 0


def _coders_refusal(folders: Any, where: str) -> str | None:
    """Why coders that declare more memory than MAX_DICTIONARY are refused, or None."""
    for folder in folders or ():
        for coder in folder.coders:
            need = coder_memory(bytes(coder["method"]), coder.get("properties"))
            if need > MAX_DICTIONARY:
                return (
                    f"a 7z coder of the {where} (method {bytes(coder['method']).hex()}) declares "
                    f"a {need}-byte dictionary, more than the {MAX_DICTIONARY >> 20} MiB a "
                    "decoder may allocate; refused before anything was decompressed"
                )
    return None


def _encoded_header_refusal(spool: IO[bytes], header: bytes) -> tuple[str, str] | None:
    """Checks on a header that is itself compressed, before py7zr decodes it.

    py7zr decodes an encoded header while it opens the archive, so its coders are checked here,
    from the raw bytes. 7-Zip and py7zr encode a header once, with one LZMA or LZMA2 coder (and
    AES when it is encrypted); its first decoded byte tells whether it is encoded again, and such
    a header, whose inner coders could only be seen after decoding, is refused.
    """
    from py7zr.archiveinfo import HeaderStreamsInfo

    if header[:1] != bytes([_ENCODED_HEADER]):
        return None
    try:
        streams = HeaderStreamsInfo.retrieve(io.BytesIO(header[1:]))
        folders = streams.unpackinfo.folders
        packpos, packsize = streams.packinfo.packpos, streams.packinfo.packsizes[0]
    except _read_errors():
        return None  # py7zr parses it again and reports what is wrong
    refused = _coders_refusal(folders, "encoded header")
    if refused is not None:
        return "ARCHIVE-BOMB", refused
    if len(folders) != 1:
        return None  # py7zr reads one folder of a header and says what is wrong with more
    coders = folders[0].coders
    if any(bytes(c["method"]) == _AES for c in coders):
        return None  # encrypted: py7zr asks for a password, reported as such
    unscannable = "ARCHIVE-UNSCANNABLE"
    if len(coders) != 1 or bytes(coders[0]["method"]) not in (_LZMA, _LZMA2):
        return unscannable, "7z archive header is encoded with coders 7-Zip never uses there"
    packed = os.pread(spool.fileno(), min(packsize, 1 << 16), _START_HEADER + packpos)
    if _first_decoded_byte(coders[0], packed) == _ENCODED_HEADER:
        return unscannable, "7z archive header is encoded twice (7-Zip encodes it once)"
    return None


def _first_decoded_byte(coder: dict[str, Any], packed: bytes) -> int | None:
    """The first byte one LZMA or LZMA2 coder (already checked against the cap) decodes."""
    props = coder.get("properties") or b"\0"
    if bytes(coder["method"]) == _LZMA2:
        filters = [{"id": lzma.FILTER_LZMA2, "dict_size": coder_memory(_LZMA2, props)}]
    else:
        lc_lp_pb = props[0]
        filters = [
            {
                "id": lzma.FILTER_LZMA1,
                "dict_size": max(4096, coder_memory(_LZMA, props)),
                "lc": lc_lp_pb % 9,
                "lp": lc_lp_pb // 9 % 5,
                "pb": lc_lp_pb // 45,
            }
        ]
    try:
        out = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters).decompress(packed, 1)
    except (lzma.LZMAError, ValueError):
        return None  # py7zr fails on it too, and says so
    return out[0] if out else None


def _encrypted(ctx: ScanContext, member: str | None, what: str) -> Finding:
    return ctx.finding(
        "ARCHIVE-UNSCANNABLE",
        Severity.HIGH,
        f"7z archive is encrypted ({what}); no password is asked for or tried, so its "
        "content was not checked",
        member=member,
        evidence="7z encrypted",
    )


def _scan_archive(
    archive: Any,
    ctx: ScanContext,
    budget: DecompressionBudget,
    sink: list[Finding],
    *,
    prefix: str,
    depth: int,
) -> None:
    """Names and declared sizes first; then members inflated one by one and scanned.

    Findings go to `sink` as they are made, so those made before py7zr fails are kept.
    """
    member = prefix.removesuffix("!") or None
    entries = _entries(archive)
    if len(entries) > MAX_MEMBERS:
        sink.append(
            ctx.finding(
                "ARCHIVE-UNSCANNABLE",
                Severity.HIGH,
                f"7z archive lists {len(entries)} entries, more than the {MAX_MEMBERS} read",
                member=member,
            )
        )
        return
    sink.extend(_name_findings(ctx, entries, prefix=prefix))
    streams = getattr(archive.header, "main_streams", None)
    refused = _coders_refusal(streams.unpackinfo.folders if streams else (), "archive's members")
    if refused is not None:
        sink.append(ctx.finding("ARCHIVE-BOMB", Severity.HIGH, refused, member=member))
        return
    wanted = [e for e in entries if not e.is_directory]
    over = _over_budget(ctx, wanted, budget, member=member)
    if over is not None:  # refused before anything is inflated
        sink.append(over)
        return
    if not wanted:
        return
    factory = _writer_factory(
        ctx, budget, _output_names(entries, wanted), sink, prefix=prefix, depth=depth
    )
    try:
        archive.extract(targets=[e.key for e in wanted], factory=factory)
    finally:
        for writer in factory.writers:  # those py7zr abandoned on an error
            writer.file.close()


def _entries(archive: Any) -> list[_Entry]:
    """The archive's entries; one whose name escapes the folder is renamed to an alias.

    py7zr refuses to hand such a name even to a writer factory (which writes nothing to disk),
    but the member's content is what anyone who extracts it gets, so it is scanned too, under
    the alias, and reported under its own name. The rename goes through the entry's properties
    (`ArchiveFile.file_properties()`, the dict py7zr reads the name from).
    """
    files = list(archive.files)
    names = {str(f.filename) for f in files}
    entries: list[_Entry] = []
    for index, f in enumerate(files):
        name = str(f.filename)
        key = name
        if escapes(name) and not f.is_directory:
            key = f"verifier-escaping-member-{index}"
            while key in names:
                key += "_"
            names.add(key)
            f.file_properties()["filename"] = key
        entries.append(
            _Entry(name, int(f.uncompressed or 0), bool(f.is_directory), bool(f.is_symlink), key)
        )
    return entries


def _name_findings(ctx: ScanContext, entries: list[_Entry], *, prefix: str) -> Iterator[Finding]:
    for entry in entries:
        if escapes(entry.name):
            yield ctx.finding(
                "ARCHIVE-PATH-TRAVERSAL",
                Severity.HIGH,
                f"7z member name {entry.name!r} would be extracted outside the folder; its "
                "content is scanned all the same",
                member=prefix + entry.name,
                evidence=entry.name,
            )


def _over_budget(
    ctx: ScanContext, wanted: list[_Entry], budget: DecompressionBudget, *, member: str | None
) -> Finding | None:
    """A finding when one member or all together declare more than may be inflated."""
    biggest = max((e.size for e in wanted), default=0)
    if biggest > MAX_MEMBER:
        return ctx.finding(
            "ARCHIVE-BOMB",
            Severity.HIGH,
            f"a 7z member declares {biggest} bytes inflated, more than the {MAX_MEMBER >> 30} "
            "GiB a member may expand to; nothing was decompressed",
            member=member,
        )
    declared = sum(e.size for e in wanted)
    left = budget.remaining()
    if declared <= left:
        return None
    return ctx.finding(
        "ARCHIVE-BOMB",
        Severity.HIGH,
        f"the 7z archive's members declare {declared} bytes inflated, more than the {left} "
        f"left of the decompression budget ({RULE}); none of them was decompressed",
        member=member,
    )


def _output_names(entries: list[_Entry], wanted: list[_Entry]) -> dict[str, list[_Entry]]:
    """The name py7zr hands the writer factory for each wanted member, as `_extract` makes it.

    py7zr counts every entry whose name is a target (a folder of the same name too): a repeated
    name gets `_0`, `_1`, ... appended; the name is then cleaned of `.` parts. Names that end
    up the same keep every entry, so a link among them is still checked as a link.
    """
    targets = {e.key for e in wanted}
    seen: dict[str, int] = {}
    out: dict[str, list[_Entry]] = {}
    for entry in entries:
        if entry.key not in targets:
            continue
        name = entry.key
        if name in seen:
            name = f"{entry.key}_{seen[entry.key]}"
            seen[entry.key] += 1
        else:
            seen[name] = 0
        if not entry.is_directory:
            out.setdefault(posixpath.normpath(name), []).append(entry)
    return out


def _writer_factory(
    ctx: ScanContext,
    budget: DecompressionBudget,
    names: dict[str, list[_Entry]],
    sink: list[Finding],
    *,
    prefix: str,
    depth: int,
) -> Any:
    """py7zr's writer factory: each member to its own temporary file, scanned when complete."""
    from py7zr.io import Py7zIO, WriterFactory

    class MemberWriter(Py7zIO):
        def __init__(self, name: str, entries: list[_Entry]) -> None:
            # An escaping member is extracted under its alias, reported under its name.
            aliased = len(entries) == 1 and entries[0].key != entries[0].name
            self.name = entries[0].name if aliased else name
            # None of ours (never expected): read both as a link and as content, fail closed.
            self.links = [e for e in entries if e.is_symlink] if entries else None
            self.is_content = not entries or any(not e.is_symlink for e in entries)
            self.limit = max((e.size for e in entries), default=MAX_MEMBER)
            # Closed by close(), or by _scan_archive when py7zr abandons the member.
            self.file = tempfile.TemporaryFile(prefix="verifier-7z-member-")  # noqa: SIM115
            self.written = 0

        def write(self, s: bytes | bytearray) -> int:
            self.written += len(s)
            if self.written > self.limit:
                raise _OverBudget(
                    f"7z member {self.name!r} inflates past its declared {self.limit} bytes"
                )
            if not budget.take(len(s)):
                raise _OverBudget(f"7z member {self.name!r}: {budget.exceeded()}")
            return self.file.write(s)

        def read(self, size: int | None = None) -> bytes:
            return b""  # py7zr never reads back what it wrote through a factory

        def seek(self, offset: int, whence: int = 0) -> int:
            return self.file.tell()  # a rewind after the last write: the scan reads by offset

        def flush(self) -> None:
            self.file.flush()

        def size(self) -> int:
            return self.written

        def close(self) -> None:
            try:
                self.file.flush()
                sink.extend(self._findings())
            finally:
                self.file.close()

        def _findings(self) -> Iterator[Finding]:
            where = prefix + self.name
            stream = _FileStream(self.file, self.written)
            if self.links is None or self.links:
                names = [e.name for e in self.links] if self.links else [self.name]
                yield from _link_findings(ctx, stream, names, where=where)
            if self.is_content:
                head = stream.read_at(0, min(self.written, HEAD_SIZE))
                fmt = identify(head, self.written)
                yield from scan_member(stream, ctx, fmt, member=where, depth=depth)

    class MemberFactory(WriterFactory):
        def __init__(self) -> None:
            self.writers: list[MemberWriter] = []

        def create(self, filename: str) -> Py7zIO:
            name = posixpath.normpath(filename)
            writer = MemberWriter(name, names.get(name, []))
            self.writers.append(writer)
            return writer

    factory = MemberFactory()
    return factory


def _link_findings(
    ctx: ScanContext, stream: _FileStream, names: list[str], *, where: str
) -> Iterator[Finding]:
    """A symbolic link member: its data is the target (read, never followed)."""
    target = stream.read_at(0, _LINK_TARGET).decode("utf-8", "backslashreplace")
    if not target or any(link_escapes(name, target, hard=False) for name in names):
        yield ctx.finding(
            "ARCHIVE-PATH-TRAVERSAL",
            Severity.HIGH,
            f"7z member is a symbolic link to {target!r}, outside the archive",
            member=where,
            evidence=target,
        )


def _scan_7z_member(
    stream: ScanStream, ctx: ScanContext, member: str, depth: int
) -> Iterator[Finding]:
    head = stream.read(16)  # a member inflated forward has no random access: pushed back
    stream = PrefixedStream(head, stream)
    kind = archive_kind(head)
    if kind != "7z":
        yield _unopenable(ctx, kind or "archive", member=member)
        return
    refusal = nesting_refusal(ctx, member=member, depth=depth)
    if refusal is not None:
        yield refusal
        return
    yield from scan_7z(stream, ctx, prefix=member + "!", depth=depth + 1)


def _unopenable(ctx: ScanContext, kind: str, *, member: str | None) -> Finding:
    return ctx.finding(
        "ARCHIVE-UNSCANNABLE",
        Severity.HIGH,
        f"{kind} archive: the scanner does not open this archive format, so its "
        "contents were not checked",
        member=member,
        evidence=kind,
    )


register_member_scanner(FileFormat.ARCHIVE, _scan_7z_member)


class ArchiveScanner(Scanner):
    """7z archives read with py7zr and every member scanned; rar recognised, never opened."""

    formats = frozenset({FileFormat.ARCHIVE})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for a 7z archive's members, or one ARCHIVE-UNSCANNABLE for rar."""
        kind = archive_kind(stream.read_at(0, 16)) or "archive"
        if kind != "7z":
            yield _unopenable(ctx, kind, member=None)
            return
        yield from scan_7z(stream, ctx, prefix="", depth=0)
