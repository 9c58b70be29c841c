"""The member seam: how a container (zip, tar, compressed stream) scans what it holds.

Containers identify each member by content and call `scan_member`. A format that needs to be
scanned differently inside an archive than as a file registers a `MemberScanner` in
`MEMBER_SCANNERS` (THE extension point for member formats); otherwise the format's file
scanner runs on the member's stream and its findings are attributed to the member.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import PickleReader, ScanContext, ScanStream
from verifier.scanners.registry import load_scanner_module, scanner_class

#: Deepest nesting of containers inside containers that is opened (zip, tar, compressed).
MAX_DEPTH = 4

_NOT_SCANNED = frozenset({FileFormat.UNKNOWN, FileFormat.EMPTY})

#: (member stream, file context, member path, nesting depth) -> findings.
MemberScanner = Callable[[ScanStream, ScanContext, str, int], Iterator[Finding]]

#: Format -> how to scan a member of that format. Register here (one entry per format).
MEMBER_SCANNERS: dict[FileFormat, MemberScanner] = {}


def register_member_scanner(fmt: FileFormat, scan: MemberScanner) -> None:
    """Make containers scan members of format `fmt` with `scan`."""
    MEMBER_SCANNERS[fmt] = scan


def nesting_refusal(ctx: ScanContext, *, member: str, depth: int) -> Finding | None:
    """ARCHIVE-BOMB when opening a container found at `depth` would nest past MAX_DEPTH.

    The one refusal every container (zip, tar, 7z, compressed stream) makes before opening a
    container it holds; None when it may be opened.
    """
    if depth + 1 <= MAX_DEPTH:
        return None
    return ctx.finding(
        "ARCHIVE-BOMB",
        Severity.HIGH,
        f"containers nested more than {MAX_DEPTH} levels deep; the innermost was not opened",
        member=member,
    )


def scan_member(
    stream: ScanStream, ctx: ScanContext, fmt: FileFormat, *, member: str, depth: int
) -> Iterator[Finding]:
    """Scan one member, whose first byte is at the stream's position, as format `fmt`."""
    if fmt in _NOT_SCANNED:
        return  # raw data (tensor storages): nothing a loader would interpret
    # Scanner modules are imported on first use: the member's may not be loaded yet.
    load_scanner_module(fmt)
    special = MEMBER_SCANNERS.get(fmt)
    if special is not None:
        yield from special(stream, ctx, member, depth)
        return
    scanner_cls = scanner_class(fmt)
    if scanner_cls is None:
        return
    # Who reads a pickle is the container's to say, for its own pickle records only.
    reader = ctx.pickle_reader if fmt is FileFormat.PICKLE else PickleReader.PYTHON
    inner = ScanContext(path=ctx.path, format=fmt, budget=ctx.budget, pickle_reader=reader)
    for finding in scanner_cls().scan(stream, inner):
        yield Finding(
            code=finding.code,
            severity=finding.severity,
            message=finding.message,
            file=finding.file,
            member=f"{member}!{finding.member}" if finding.member else member,
            offset=finding.offset,
            evidence=finding.evidence,
        )


_DRIVE = re.compile(r"^[A-Za-z]:")


def escapes(name: str) -> bool:
    """Whether extracting to `name` writes outside the destination (`..`, absolute, drive)."""
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        return True
    return ".." in path.split("/")


def link_escapes(member: str, target: str, *, hard: bool) -> bool:
    """Whether a link member's target lies outside the archive's folder."""
    path = target.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        return True
    base = "" if hard else posixpath.dirname(member.replace("\\", "/"))
    joined = posixpath.normpath(posixpath.join(base, path)) if (base or path) else ""
    return joined == ".." or joined.startswith("../")
