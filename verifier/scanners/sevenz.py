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
from verifier.scanners.budget import RULE, DecompressionBudget
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.members import (
    MAX_DEPTH,
    escapes,
    link_escapes,
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
        yield ctx.finding("ARCHIVE-UNSCANNABLE", Severity.HIGH, refused, member=member)
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


def _header_refusal(spool: IO[bytes], size: int) -> str | None:
    """Why the start header is refused before py7zr reads the header it points at."""
    start = os.pread(spool.fileno(), _START_HEADER, 0)
    if len(start) < _START_HEADER:
        return "7z archive is truncated: its start header is incomplete"
    offset, length = struct.unpack_from("<QQ", start, 12)
    if length > MAX_HEADER:
        return f"7z archive header of {length} bytes is larger than the {MAX_HEADER >> 20} MiB read"
    if _START_HEADER + offset + length > size:
        return "7z archive is truncated: its header lies beyond the end of the file"
    return None


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
    entries = [
        _Entry(str(f.filename), int(f.uncompressed or 0), bool(f.is_directory), bool(f.is_symlink))
        for f in archive.list()
    ]
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
    wanted = [e for e in entries if not e.is_directory and not escapes(e.name)]
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
        archive.extract(targets=[e.name for e in wanted], factory=factory)
    finally:
        for writer in factory.writers:  # those py7zr abandoned on an error
            writer.file.close()


def _name_findings(ctx: ScanContext, entries: list[_Entry], *, prefix: str) -> Iterator[Finding]:
    for entry in entries:
        if escapes(entry.name):
            yield ctx.finding(
                "ARCHIVE-PATH-TRAVERSAL",
                Severity.HIGH,
                f"7z member name {entry.name!r} would be extracted outside the folder; it was "
                "not extracted",
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
    targets = {e.name for e in wanted}
    seen: dict[str, int] = {}
    out: dict[str, list[_Entry]] = {}
    for entry in entries:
        if entry.name not in targets:
            continue
        name = entry.name
        if name in seen:
            name = f"{entry.name}_{seen[entry.name]}"
            seen[entry.name] += 1
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
            self.name = name
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
    if depth + 1 > MAX_DEPTH:
        yield ctx.finding(
            "ARCHIVE-BOMB",
            Severity.HIGH,
            f"containers nested more than {MAX_DEPTH} levels deep; the innermost was not opened",
            member=member,
        )
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
