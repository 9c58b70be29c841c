"""Pickle findings: imports classified allowlist-first, then errors; the bare-pickle scanner."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import PickleReader, ScanContext, Scanner, ScanStream
from verifier.scanners.pickle_globals import GlobalClass, classify
from verifier.scanners.pickle_walk import (
    MAX_NESTED_BYTES,
    MAX_NESTING,
    BytesStream,
    PickleAnalysis,
    analyse_pickle,
)
from verifier.scanners.refused_globals import refusal
from verifier.scanners.torchscript import is_torchscript_name

__all__ = ["PickleAnalysis", "PickleScanner", "analyse_pickle", "pickle_findings"]


def pickle_findings(
    analysis: PickleAnalysis, ctx: ScanContext, *, member: str | None = None
) -> Iterator[Finding]:
    """Turn an analysis into findings: imports by class, then unresolved names, then errors."""
    seen: dict[tuple[str, str], int] = {}
    safe: list[str] = []
    for module, name, offset in analysis.imports:
        full = f"{module}.{name}"
        verdict = classify(module, name)
        if ctx.pickle_reader is PickleReader.TORCHSCRIPT and is_torchscript_name(full):
            verdict = GlobalClass.SAFE  # resolved by TorchScript from the archive, not imported
        if verdict is GlobalClass.SAFE:
            if full not in safe:
                safe.append(full)
            continue
        key = (verdict.value, full)
        if key in seen:
            continue
        seen[key] = offset
        if verdict is GlobalClass.DANGEROUS:
            yield ctx.finding(
                "PICKLE-DANGEROUS-GLOBAL",
                Severity.CRITICAL,
                f"pickle imports {full}, which can run code or reach the system when loaded",
                member=member,
                offset=offset,
                evidence=full,
            )
        else:
            why = refusal(module)
            yield ctx.finding(
                "PICKLE-UNKNOWN-GLOBAL",
                Severity.HIGH,
                f"pickle imports {full}, which is not on the allowlist of checkpoint callables"
                + (f": {why}" if why else ""),
                member=member,
                offset=offset,
                evidence=full,
            )
    rejected = list(_argument_findings(analysis, ctx, member=member))
    rejected += _state_call_findings(analysis, ctx, member=member)
    rejected += _dtype_findings(analysis, ctx, member=member)
    yield from rejected
    for offset in analysis.unresolved[:1]:
        yield ctx.finding(
            "PICKLE-UNRESOLVED-GLOBAL",
            Severity.CRITICAL,
            "pickle builds an import name at load time that the scanner could not resolve "
            f"({len(analysis.unresolved)} time(s))",
            member=member,
            offset=offset,
        )
    for offset in analysis.ext_codes[:1]:
        yield ctx.finding(
            "PICKLE-EXTENSION-CODE",
            Severity.HIGH,
            "pickle imports through the copyreg extension registry (EXT opcodes), "
            "which the scanner cannot resolve",
            member=member,
            offset=offset,
        )
    if analysis.error is not None:
        yield ctx.finding(
            "PICKLE-MALFORMED",
            Severity.HIGH,
            f"pickle stream is malformed: {analysis.error}; a loader may have run what came "
            "before the error",
            member=member,
            offset=analysis.error_offset,
        )
    yield from _nested_findings(analysis, ctx, member=member)
    flagged = (
        seen or rejected or analysis.unresolved or analysis.ext_codes or analysis.opaque_nested
    )
    if not flagged:
        what = "imports only allowlisted callables" if safe else "imports nothing"
        yield ctx.finding(
            "PICKLE-IMPORTS",
            Severity.INFO,
            f"pickle (protocol {analysis.protocol}) {what}",
            member=member,
            evidence=", ".join(safe) or None,
        )


def _argument_findings(
    analysis: PickleAnalysis, ctx: ScanContext, *, member: str | None
) -> Iterator[Finding]:
    """Reconstructors that would call something the walk could not read."""
    seen: set[tuple[str, str]] = set()
    for callee, problem, offset in analysis.argument_problems:
        if (callee, problem) in seen:
            continue
        seen.add((callee, problem))
        yield ctx.finding(
            "PICKLE-UNSAFE-ARGUMENTS",
            Severity.CRITICAL,
            f"pickle calls {callee}, which calls one of its arguments, with arguments no "
            f"saver writes: {problem}",
            member=member,
            offset=offset,
            evidence=callee,
        )


def _state_call_findings(
    analysis: PickleAnalysis, ctx: ScanContext, *, member: str | None
) -> Iterator[Finding]:
    """Opcodes that would call what the pickle put on an object (pickle_state.py)."""
    seen: set[str] = set()
    for problem, offset in analysis.state_calls:
        if problem in seen:
            continue
        seen.add(problem)
        yield ctx.finding(
            "PICKLE-STATE-CALL",
            Severity.CRITICAL,
            f"pickle makes the unpickler call a value it chose, out of the scanner's sight: "
            f"{problem}",
            member=member,
            offset=offset,
        )


def _dtype_findings(
    analysis: PickleAnalysis, ctx: ScanContext, *, member: str | None
) -> Iterator[Finding]:
    """NumPy memory layouts no NumPy pickle writes (pickle_dtype.py)."""
    seen: set[str] = set()
    for problem, offset in analysis.numpy_memory:
        if problem in seen:
            continue
        seen.add(problem)
        yield ctx.finding(
            "PICKLE-NUMPY-MEMORY",
            Severity.CRITICAL,
            "pickle makes NumPy read the file's bytes as memory (object pointers, or past "
            f"each element): {problem}",
            member=member,
            offset=offset,
        )


def _nested_findings(
    analysis: PickleAnalysis, ctx: ScanContext, *, member: str | None
) -> Iterator[Finding]:
    """Scan, by content, the bytes the pickle hands to a nested loader (pickle.loads,
    torch.storage._load_from_bytes, ...): they are loaded too, whatever their format."""
    from verifier.scanners.members import scan_member
    from verifier.scanners.sniff import HEAD_SIZE, identify

    prefix = f"{member}!" if member else ""
    ctx = dataclasses.replace(ctx, pickle_reader=PickleReader.PYTHON)  # nested loaders are Python
    for offset in analysis.opaque_nested[:1]:
        yield ctx.finding(
            "PICKLE-NESTED-UNSCANNED",
            Severity.HIGH,
            "pickle hands data to a nested loader that the scanner could not read (computed "
            f"at load time, or over {MAX_NESTED_BYTES >> 20} MiB)",
            member=member,
            offset=offset,
        )
    for offset, blob in analysis.blobs:
        where = f"{prefix}nested@{offset}"
        if where.count("nested@") > MAX_NESTING:
            yield ctx.finding(
                "PICKLE-NESTED-UNSCANNED",
                Severity.HIGH,
                f"pickles nested more than {MAX_NESTING} levels deep",
                member=where,
                offset=offset,
            )
            continue
        fmt = identify(blob[:HEAD_SIZE], len(blob))
        yield from scan_member(BytesStream(blob), ctx, fmt, member=where, depth=0)


class PickleScanner(Scanner):
    """Scans a bare pickle file, and any pickles concatenated after it."""

    formats = frozenset({FileFormat.PICKLE})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for every pickle in the file and for trailing bytes."""
        analysis = analyse_pickle(stream)
        yield from pickle_findings(analysis, ctx)
        if analysis.error is not None:
            return
        if stream.tell() < stream.size:
            yield from _scan_trailing(stream, ctx)


def _scan_trailing(stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
    """Bytes after the first STOP: an appended zip, further pickles, or inert trailing data.

    Looping unpicklers (joblib, `while True: pickle.load(f)`) run every concatenated pickle,
    whatever protocol it starts with, so each is analysed; zip readers find an archive
    appended at the end (a polyglot), so it is scanned too.
    """
    from verifier.scanners.archive import has_end_record, scan_zip

    if has_end_record(stream):
        yield ctx.finding(
            "FORMAT-POLYGLOT",
            Severity.HIGH,
            "file is a pickle at offset 0 and a zip archive at its end: torch.load runs the "
            "pickle, zip readers see the archive; both were scanned",
            offset=stream.tell(),
        )
        yield from scan_zip(stream, ctx, prefix="", depth=0)
        return
    index = 1
    while stream.tell() < stream.size:
        offset = stream.tell()
        analysis = analyse_pickle(stream)
        names = analysis.imports or analysis.unresolved or analysis.ext_codes
        if not names and (analysis.error is not None or analysis.opcodes < 2):
            yield ctx.finding(
                "PICKLE-TRAILING-DATA",
                Severity.MEDIUM,
                f"{stream.size - offset} byte(s) follow the pickle's STOP opcode",
                offset=offset,
            )
            return
        if index == 1:
            yield ctx.finding(
                "PICKLE-CONCATENATED",
                Severity.MEDIUM,
                "several pickles are concatenated in this file; each was analysed",
                offset=offset,
            )
        yield from pickle_findings(analysis, ctx, member=f"pickle[{index}]")
        index += 1
        if analysis.error is not None:
            return
