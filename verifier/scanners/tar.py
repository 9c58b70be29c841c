"""Tar archives (PyTorch's legacy format among them), read exactly as `tarfile` reads them.

`torch.load` opens every non-zip file with `tarfile.open(mode="r:")` first; on any
`tarfile.TarError` it seeks back and unpickles the file from offset 0. So this module follows
`tarfile`'s header walk (checksums, pax `x`/`g` records with their `size=` overrides, GNU long
names, V7 directories, the types whose data is skipped) and, when `tarfile` would raise, the
file is analysed as a pickle from offset 0 as well (`TarReadError`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.members import (
    escapes,
    link_escapes,
    nesting_refusal,
    register_member_scanner,
    scan_member,
)
from verifier.scanners.pickle import analyse_pickle, pickle_findings
from verifier.scanners.sniff import HEAD_SIZE, identify
from verifier.scanners.streams import BoundedStream, PrefixedStream, ReplayStream
from verifier.scanners.torch_pickles import scan_legacy_pickles

BLOCK = 512
#: Longest chain of pax/GNU headers in front of one member (tarfile recurses per header).
MAX_HEADER_CHAIN = 32
#: Largest pax or GNU long-name payload read.
MAX_EXTENDED_HEADER = 1 << 20
#: Most members walked in one archive.
MAX_MEMBERS = 100_000
#: Largest member whose data lies outside its own slot (re-read out of order).
MAX_OUT_OF_ORDER = 64 << 20

_REGULAR = frozenset({b"0", b"\0", b"7", b"S"})
_SUPPORTED = frozenset({b"0", b"\0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"L", b"K", b"S"})
_GNU = frozenset({b"L", b"K", b"S"})
_PAX = frozenset({b"x", b"g", b"X"})
_LINKS = frozenset({b"1", b"2"})
_PAX_NUMBERS = {"size": int, "uid": int, "gid": int, "mtime": float, "atime": float}
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
#: The members `torch.serialization`'s legacy loader unpickles, in the order it reads them.
TORCH_MEMBERS = ("storages", "tensors", "pickle")
#: Element sizes of the storage classes the legacy `storages` member names.
_STORAGE_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QInt8Storage": 1,
    "QUInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}


class TarReadError(Exception):
    """`tarfile` would raise ReadError here (so torch.load falls back to pickle at offset 0)."""


class _InvalidHeader(Exception):
    """tarfile's InvalidHeaderError: fatal at offset 0, the end of the archive elsewhere."""


class _NotFollowed(Exception):
    """A structure the scanner refuses to follow (reported as CONTAINER-AMBIGUOUS)."""


@dataclass
class TarMember:
    """One member as `tarfile` would list it."""

    name: str
    linkname: str
    kind: bytes
    size: int  # bytes extractfile() returns (after pax overrides)
    header_offset: int
    data_offset: int
    next_offset: int  # where tarfile reads the next header
    pax: dict[str, str] = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        """Whether tarfile reads data for it (regular files and unknown types)."""
        return self.kind in _REGULAR or self.kind not in _SUPPORTED


def _nts(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _nti(raw: bytes) -> int:
    """tarfile.nti: base-256 or octal through int(s, 8) (so `0o`, `_`, signs are accepted)."""
    if raw[0] in (0o200, 0o377):
        value = int.from_bytes(raw[1:], "big")
        return value - 256 ** (len(raw) - 1) if raw[0] == 0o377 else value
    try:
        text = raw.split(b"\0", 1)[0].decode("ascii")
        return int(text.strip() or "0", 8)
    except ValueError:
        raise _InvalidHeader("invalid number field") from None


def checksum_ok(block: bytes) -> bool:
    """Whether a 512-byte block passes tarfile's header checksum (unsigned or signed sum)."""
    try:
        stated = _nti(block[148:156])
    except _InvalidHeader:
        return False
    unsigned = 256 + sum(block[:148]) + sum(block[156:])
    signed = 256 + sum(struct.unpack_from("148b8x356b", block))
    return stated in (unsigned, signed)


def _blocks(count: int) -> int:
    blocks, rest = divmod(count, BLOCK)
    return (blocks + (1 if rest else 0)) * BLOCK


def _frombuf(block: bytes, offset: int) -> TarMember:
    """tarfile.TarInfo.frombuf for a full, non-zero block."""
    if not checksum_ok(block):
        raise _InvalidHeader("bad checksum")
    for start, end in ((100, 108), (108, 116), (116, 124), (136, 148), (329, 337), (337, 345)):
        _nti(block[start:end])
    size = _nti(block[124:136])
    kind = block[156:157]
    name = _nts(block[0:100])
    prefix = _nts(block[345:500])
    if kind == b"\0" and name.endswith("/"):
        kind = b"5"
    if kind == b"S":
        raise _NotFollowed("GNU sparse member (its data is reassembled from a map)")
    if kind == b"5":
        name = name.rstrip("/")
    if prefix and kind not in _GNU:
        name = prefix + "/" + name
    return TarMember(
        name=name,
        linkname=_nts(block[157:257]),
        kind=kind,
        size=size,
        header_offset=offset,
        data_offset=offset + BLOCK,
        next_offset=offset + BLOCK,
    )


class TarWalker:
    """tarfile's member walk over a forward stream: `next_member()` until None.

    The caller reads a member's data (or not) before asking for the next; the walker skips to
    where tarfile reads the next header.
    """

    def __init__(self, stream: ScanStream) -> None:
        self._stream = stream
        self._start = stream.tell()
        self._globals: dict[str, str] = {}
        self._next = self._start
        self.count = 0

    def next_member(self) -> TarMember | None:
        """The next member, or None at the end of the archive.

        Raises:
            TarReadError: tarfile would raise ReadError.
            _NotFollowed: a structure the scanner does not follow.
        """
        here = self._stream.tell()
        if self._next != here:
            if self._next < here:
                raise _NotFollowed("a member's size sends tarfile backwards")
            if self._next > self._stream.size:
                raise TarReadError("unexpected end of data")
            self._stream.skip(self._next - here)
        offset = self._stream.tell()
        first = offset == self._start
        block = self._stream.read(BLOCK)
        if len(block) < BLOCK:
            if first:
                raise TarReadError("empty file" if not block else "truncated header")
            return None
        if block.count(0) == BLOCK:
            if first:
                raise TarReadError("no member before the end-of-archive block")
            return None
        try:
            member = self._process(block, offset, chain=0)
        except _InvalidHeader as exc:
            if first:
                raise TarReadError(str(exc)) from None
            return None
        self.count += 1
        if self.count > MAX_MEMBERS:
            raise _NotFollowed(f"more than {MAX_MEMBERS} members")
        self._next = member.next_offset
        return member

    def _process(self, block: bytes, offset: int, *, chain: int) -> TarMember:
        if chain > MAX_HEADER_CHAIN:
            raise _NotFollowed(f"more than {MAX_HEADER_CHAIN} extended headers in a row")
        member = _frombuf(block, offset)
        if member.kind in (b"L", b"K"):
            return self._gnu_long(member, chain=chain)
        if member.kind in _PAX:
            return self._pax(member, chain=chain)
        skip = member.size
        _apply_pax(member, self._globals)
        member.next_offset = member.data_offset + (_blocks(skip) if member.has_data else 0)
        return member

    def _payload(self, member: TarMember) -> bytes:
        length = _blocks(member.size)
        if length > MAX_EXTENDED_HEADER:
            raise _NotFollowed(f"extended header of {member.size} bytes")
        return self._stream.read(length)

    def _following(self, chain: int) -> TarMember:
        """The header after an extended header: any error is tarfile's SubsequentHeaderError."""
        offset = self._stream.tell()
        block = self._stream.read(BLOCK)
        if len(block) < BLOCK or block.count(0) == BLOCK:
            raise TarReadError("missing header after an extended header")
        try:
            return self._process(block, offset, chain=chain + 1)
        except _InvalidHeader as exc:
            raise TarReadError(str(exc)) from None

    def _gnu_long(self, member: TarMember, *, chain: int) -> TarMember:
        buf = self._payload(member)
        nxt = self._following(chain)
        nxt.header_offset = member.header_offset
        if member.kind == b"L":
            nxt.name = _nts(buf)
        else:
            nxt.linkname = _nts(buf)
        if nxt.kind == b"5":
            nxt.name = nxt.name.removesuffix("/")
        return nxt

    def _pax(self, member: TarMember, *, chain: int) -> TarMember:
        buf = self._payload(member)
        headers = self._globals if member.kind == b"g" else dict(self._globals)
        _parse_pax(buf, headers)
        if any(key.startswith("GNU.sparse.") for key in headers):
            raise _NotFollowed("GNU sparse pax records")
        nxt = self._following(chain)
        if member.kind in (b"x", b"X"):
            _apply_pax(nxt, headers)
            nxt.header_offset = member.header_offset
            if "size" in headers:
                nxt.next_offset = nxt.data_offset + (_blocks(nxt.size) if nxt.has_data else 0)
        return nxt


def _parse_pax(buf: bytes, headers: dict[str, str]) -> None:
    """tarfile's pax record loop: `<len> <key>=<value>\\n`, stopping at the first non-record."""
    pos = 0
    while True:
        match = _PAX_RECORD.match(buf, pos)
        if not match:
            return
        length = int(match.group(1))
        if length == 0:
            raise _InvalidHeader("pax record of length 0")
        value = buf[match.end(2) + 1 : match.start(1) + length - 1]
        key = match.group(2).decode("utf-8", "surrogateescape")
        headers[key] = value.decode("utf-8", "surrogateescape")
        pos += length


def _apply_pax(member: TarMember, headers: dict[str, str]) -> None:
    for key, value in headers.items():
        if key == "path":
            member.name = value.rstrip("/")
        elif key == "linkpath":
            member.linkname = value
        elif key == "size":
            try:
                member.size = int(value)
            except ValueError:
                member.size = 0
    member.pax = dict(headers)


def display(name: str) -> str:
    """A member name for findings (undecodable bytes escaped)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def scan_tar(
    stream: ScanStream, ctx: ScanContext, *, prefix: str = "", depth: int = 0
) -> Iterator[Finding]:
    """Walk a tar from the stream's position the way tarfile does; scan every member it reads.

    At the top of a file, a tar tarfile rejects is also analysed as a pickle from offset 0
    (torch.load's fallback).
    """
    top = not prefix and depth == 0 and stream.tell() == 0
    walker = TarWalker(stream)
    seen_torch: set[str] = set()
    try:
        while (member := walker.next_member()) is not None:
            yield from _member_findings(stream, ctx, member, prefix=prefix, depth=depth, top=top)
            if top and member.name in TORCH_MEMBERS:
                seen_torch.add(member.name)
    except TarReadError as exc:
        yield from _rejected(stream, ctx, str(exc), prefix=prefix, top=top)
    except _NotFollowed as exc:
        yield ctx.finding(
            "CONTAINER-AMBIGUOUS",
            Severity.HIGH,
            f"tar archive: {exc}; the scanner does not follow it, so it cannot say what "
            "tarfile reads",
            member=prefix or None,
        )


def _rejected(
    stream: ScanStream, ctx: ScanContext, reason: str, *, prefix: str, top: bool
) -> Iterator[Finding]:
    if not top:
        yield ctx.finding(
            "CONTAINER-AMBIGUOUS",
            Severity.HIGH,
            f"tarfile rejects this archive ({reason}); what a reader extracts is undefined",
            member=prefix or None,
        )
        return
    yield ctx.finding(
        "CONTAINER-AMBIGUOUS",
        Severity.HIGH,
        f"tarfile rejects this archive ({reason}), so torch.load unpickles the file from "
        "offset 0 instead; it was analysed that way too",
        offset=0,
    )
    yield from scan_legacy_pickles(ReplayStream(stream), ctx)


def _member_findings(
    stream: ScanStream,
    ctx: ScanContext,
    member: TarMember,
    *,
    prefix: str,
    depth: int,
    top: bool,
) -> Iterator[Finding]:
    where = prefix + display(member.name)
    if escapes(member.name):
        yield ctx.finding(
            "ARCHIVE-PATH-TRAVERSAL",
            Severity.HIGH,
            f"tar member name {display(member.name)!r} would be extracted outside the folder",
            member=where,
            evidence=display(member.name),
        )
    if member.kind in _LINKS and link_escapes(
        member.name, member.linkname, hard=member.kind == b"1"
    ):
        yield ctx.finding(
            "ARCHIVE-PATH-TRAVERSAL",
            Severity.HIGH,
            f"tar member is a link to {display(member.linkname)!r}, outside the archive",
            member=where,
            evidence=display(member.linkname),
        )
    if top and member.name in TORCH_MEMBERS and not member.has_data:
        yield ctx.finding(
            "CONTAINER-AMBIGUOUS",
            Severity.HIGH,
            f"torch's legacy loader extracts {member.name!r}, but it is not a regular file "
            "(a link or special file reads other data)",
            member=where,
        )
    if not member.has_data or member.size <= 0:
        return
    slot = member.next_offset - member.data_offset
    if member.size > slot:
        yield from _out_of_order(stream, ctx, member, where=where, depth=depth, top=top)
        return
    body = BoundedStream(stream, member.size)
    if top and member.name in TORCH_MEMBERS:
        yield from _scan_torch_member(body, ctx, member.name, where=where)
    else:
        head = body.read(min(member.size, HEAD_SIZE))
        fmt = identify(head, member.size)
        yield from scan_member(PrefixedStream(head, body), ctx, fmt, member=where, depth=depth + 1)
    if body.finish():
        raise TarReadError(f"member {display(member.name)!r} is truncated")


def _out_of_order(
    stream: ScanStream, ctx: ScanContext, member: TarMember, *, where: str, depth: int, top: bool
) -> Iterator[Finding]:
    """A member whose data runs over the following headers (a pax size override)."""
    yield ctx.finding(
        "CONTAINER-AMBIGUOUS",
        Severity.HIGH,
        f"tar member's data ({member.size} bytes, from pax records) runs over the headers "
        "that follow it; tarfile reads it anyway",
        member=where,
        offset=member.header_offset,
    )
    if member.data_offset + member.size > stream.size:
        raise TarReadError(f"member {display(member.name)!r} is truncated")
    probe = stream.read_at(member.data_offset, 1)
    if not probe or member.size > MAX_OUT_OF_ORDER:
        yield ctx.finding(
            "ARCHIVE-UNSCANNABLE",
            Severity.HIGH,
            "tar member data out of order could not be re-read",
            member=where,
        )
        return
    body = BoundedStream(ReplayStream(stream, start=member.data_offset), member.size)
    if top and member.name in TORCH_MEMBERS:
        yield from _scan_torch_member(body, ctx, member.name, where=where)
        return
    head = body.read(min(member.size, HEAD_SIZE))
    fmt = identify(head, member.size)
    yield from scan_member(PrefixedStream(head, body), ctx, fmt, member=where, depth=depth + 1)


def _storage_size(imports: list[tuple[str, str, int]]) -> int | None:
    for module, name, _ in reversed(imports):
        if module in ("torch", "torch.cuda") and name in _STORAGE_SIZES:
            return _STORAGE_SIZES[name]
    return None


def _scan_torch_member(
    body: BoundedStream, ctx: ScanContext, name: str, *, where: str
) -> Iterator[Finding]:
    """The pickles torch's legacy loader reads from `storages`, `tensors` or `pickle`.

    `storages`: a count, then per storage an argument pickle naming its class and the raw
    data (int64 element count, then the elements), then the views pickle. `tensors`: a count,
    then per tensor an argument pickle and a fixed record (int32 ndim, 4 bytes, 2*ndim int64,
    int64 offset). `pickle`: one pickle.
    """
    index = 0
    while body.tell() < body.size:
        analysis = analyse_pickle(body)
        yield from pickle_findings(analysis, ctx, member=f"{where}!pickle[{index}]")
        index += 1
        if analysis.error is not None or name == "pickle":
            return
        if index == 1:
            continue  # the count
        if name == "storages":
            element = _storage_size(analysis.imports)
            if element is None:
                continue  # the views pickle (or one torch would not reach): analysed
            raw = body.read(8)
            count = int.from_bytes(raw, "little", signed=True) if len(raw) == 8 else -1
            if count < 0 or body.skip(count * element) < count * element:
                return
        else:
            raw = body.read(8)
            ndim = int.from_bytes(raw[:4], "little", signed=True) if len(raw) == 8 else -1
            if ndim < 0 or body.skip(16 * ndim + 8) < 16 * ndim + 8:
                return


def _scan_tar_member(
    stream: ScanStream, ctx: ScanContext, member: str, depth: int
) -> Iterator[Finding]:
    refusal = nesting_refusal(ctx, member=member, depth=depth)
    if refusal is not None:
        yield refusal
        return
    yield from scan_tar(stream, ctx, prefix=member + "!", depth=depth + 1)


register_member_scanner(FileFormat.TAR, _scan_tar_member)


class TarScanner(Scanner):
    """Scans a tar archive's members as tarfile lists them."""

    formats = frozenset({FileFormat.TAR})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for every member and for names and links that leave the archive."""
        yield from scan_tar(stream, ctx)
