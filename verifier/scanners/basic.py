"""Scanners for data formats (JSON, text, images, tokenizers), executables, unknown content."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator

from verifier.bounded_json import MODEL_CONFIG, JsonLimitError, check_shape, decode_narrow
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.facts import CARD_CAP, card_facts, config_facts, is_root
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.keras import config_findings as keras_config_findings
from verifier.scanners.keras import looks_like_keras_config
from verifier.scanners.remote_code import carries_code, config_findings, scan_text
from verifier.scanners.sniff import HEAD_SIZE, executable_kind, text_pickle_import
from verifier.scanners.streams import PrefixedStream

JSON_CAP = MODEL_CONFIG.max_bytes
"""Largest JSON file parsed, in bytes; larger ones are a blocking finding instead."""

_READ_CHUNK = 1 << 20
_EVIDENCE_BYTES = 16
_EXECUTABLE_HEAD = 4096


class JsonScanner(Scanner):
    """Parses JSON completely, so a broken config or tokenizer file is reported."""

    formats = frozenset({FileFormat.JSON})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield JSON-INVALID if the file does not parse, FILE-TOO-LARGE-TO-PARSE past JSON_CAP.

        Raises:
            ScanLimitError: never; size and depth limits are reported as findings.
        """
        polyglot = list(polyglot_zip(stream, ctx))
        if polyglot:
            yield from polyglot
            return
        if carries_code(ctx.path):
            # A Jinja template or Python source that happens to start with a brace.
            yield from scan_text(stream, ctx)
            return
        if stream.size > JSON_CAP:
            yield _too_large(ctx, stream.size)
            return
        data = _read_at_most(stream, JSON_CAP + 1)
        if len(data) > JSON_CAP:
            yield _too_large(ctx, len(data))
            return
        try:
            # The shape is checked on the bytes, before a character is decoded.
            check_shape(data, MODEL_CONFIG)
        except JsonLimitError as exc:
            yield _over_limit(ctx, str(exc))
            return
        bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
        try:
            text, rewritten = decode_narrow(data)
        except UnicodeDecodeError as exc:
            yield _invalid(ctx, f"not valid UTF-8: {exc.reason}", exc.start)
            return
        del data  # the decoded text and the parsed document are held, never the bytes too
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            # Offsets in a rewritten text no longer match the bytes; the line still does.
            offset = None if rewritten else bom + len(text[: exc.pos].encode("utf-8"))
            yield _invalid(ctx, f"not valid JSON: {exc.msg} (line {exc.lineno})", offset)
        except RecursionError:  # a depth the peeling could not see (unbalanced text)
            yield _over_limit(ctx, f"nested deeper than {MODEL_CONFIG.max_depth} levels")
        except ValueError as exc:
            yield _invalid(ctx, f"not parseable: {exc}", None)
        else:
            if is_root(ctx.path, "config.json"):
                ctx.note("config", config_facts(document))
            yield from config_findings(document, ctx)
            if looks_like_keras_config(document):
                yield from keras_config_findings(document, ctx)


def _over_limit(ctx: ScanContext, problem: str) -> Finding:
    return ctx.finding(
        "JSON-LIMIT",
        Severity.HIGH,
        f"JSON file not parsed: {problem} (a config this shape is a resource attack)",
    )


class PassiveScanner(Scanner):
    """Formats that no model loader executes (text, images, SentencePiece models, empty files).

    Nothing is read, except the first MiB of the model card (`README.md` at the root) for its
    facts: the pipeline drains the rest of the stream for hashing.
    """

    formats = frozenset(
        {
            FileFormat.TEXT,
            FileFormat.IMAGE,
            FileFormat.SENTENCEPIECE,
            FileFormat.EMPTY,
            # Never identified by content: `references.identify_referenced` relabels.
            FileFormat.TENSOR_DATA,
        }
    )

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield nothing: these formats carry no code for a loader to run.

        Raises:
            ScanLimitError: never.
        """
        polyglot = list(polyglot_zip(stream, ctx)) if ctx.format is not FileFormat.EMPTY else []
        if polyglot:
            return iter(polyglot)
        if ctx.format is not FileFormat.TEXT:
            return iter(())
        # Read in place where the stream can (a file); a decoded member's bytes are read on.
        head = stream.read_at(0, HEAD_SIZE)
        if not head and stream.size:
            head = stream.read(HEAD_SIZE)
            stream = PrefixedStream(head, stream)
        imported = _pickle_import(head, stream.size, ctx)
        if is_root(ctx.path, "README.md"):
            ctx.note("card", card_facts(bytes(_read_at_most(stream, CARD_CAP))))
            return iter(imported)
        # Python sources and Jinja templates are text that loaders execute.
        return iter([*imported, *scan_text(stream, ctx)])


def _pickle_import(head: bytes, size: int, ctx: ScanContext) -> list[Finding]:
    """PICKLE-IMPORT-IN-TEXT when a pickle loader given this text would import a module first.

    Whatever the loader would try to import is reported: `pickle.load` on `cat` / `dog` runs
    `import at`, which runs code when an `at.py` is on `sys.path`. Text has no call the
    unpicklers reach (else it is a pickle), so the import is all they do: info, not blocking.
    """
    found = text_pickle_import(head, size)
    if found is None:
        return []
    module, name = found
    return [
        ctx.finding(
            "PICKLE-IMPORT-IN-TEXT",
            Severity.INFO,
            f"a pickle loader given this text would import module {module!r} before it "
            "fails; that runs code only if a file of that name is on sys.path (such as a "
            "`.py` file the repository ships, reported as remote code)",
            offset=0,
            evidence=f"{module}.{name}",
        )
    ]


class UnknownFormatScanner(Scanner):
    """Content identified as no format: not allowed by default, since it was not analysed.

    One exception is read: zip readers (`zipfile`, Keras) find an archive by the end record at
    the end of the file, whatever precedes it, so such a file is scanned as the zip it is.
    """

    formats = frozenset({FileFormat.UNKNOWN})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield the zip's findings behind prepended data, or one FORMAT-UNKNOWN finding.

        Raises:
            ScanLimitError: never.
        """
        if zip_at_end(stream):
            first = stream.read_at(0, _EVIDENCE_BYTES)
            yield ctx.finding(
                "ZIP-PREPENDED-DATA",
                Severity.MEDIUM,
                "a zip archive follows unidentified leading bytes: zip readers and Keras open "
                "it anyway, so its members were scanned",
                offset=0,
                evidence=f"first bytes: {first.hex()}",
            )
            yield from _scan_zip(stream, ctx)
            return
        first = stream.read(_EVIDENCE_BYTES)
        yield ctx.finding(
            "FORMAT-UNKNOWN",
            Severity.HIGH,
            "content identified as no known format, so it was not analysed; a policy may "
            "allow such files by path (see docs/policy.md)",
            offset=0,
            evidence=f"first bytes: {first.hex()}" if first else None,
        )


class ExecutableScanner(Scanner):
    """Native programs and libraries (PE, ELF, Mach-O): no model loader needs one."""

    formats = frozenset({FileFormat.EXECUTABLE})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield one FORMAT-EXECUTABLE finding naming the kind of executable.

        Raises:
            ScanLimitError: never.
        """
        kind = executable_kind(stream.read(_EXECUTABLE_HEAD)) or "native"
        yield ctx.finding(
            "FORMAT-EXECUTABLE",
            Severity.HIGH,
            f"{kind} executable or library, whatever its name: no model loader needs one, and "
            "its code is not analysed",
            offset=0,
            evidence=kind,
        )


def zip_at_end(stream: ScanStream) -> bool:
    """Whether the file ends with a zip archive that zip readers would open (metadata only)."""
    from verifier.scanners.archive import ZipStructureError, has_end_record, read_directory

    if stream.size < 22 or not has_end_record(stream):
        return False
    try:
        return bool(read_directory(stream))
    except ZipStructureError:
        return False


def polyglot_zip(stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
    """For data formats: a zip archive at the file's end makes it a polyglot; scan the zip."""
    if not zip_at_end(stream):
        return
    yield ctx.finding(
        "FORMAT-POLYGLOT",
        Severity.HIGH,
        f"file is {ctx.format.value} at offset 0 and a zip archive at its end: zip readers and "
        "Keras open the archive; it was scanned",
    )
    yield from _scan_zip(stream, ctx)


def _scan_zip(stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
    from verifier.scanners.archive import scan_zip

    yield from scan_zip(stream, ctx, prefix="", depth=0)


def _too_large(ctx: ScanContext, size: int) -> Finding:
    return ctx.finding(
        "FILE-TOO-LARGE-TO-PARSE",
        Severity.HIGH,
        f"JSON file of {size} bytes exceeds the {JSON_CAP}-byte parse limit; not parsed",
    )


def _invalid(ctx: ScanContext, message: str, offset: int | None) -> Finding:
    return ctx.finding("JSON-INVALID", Severity.MEDIUM, f"JSON file is {message}", offset=offset)


def _read_at_most(stream: ScanStream, limit: int) -> bytearray:
    """Up to `limit` bytes of `stream`, held once (joining chunks held every byte twice)."""
    data = bytearray()
    while len(data) < limit:
        chunk = stream.read(min(_READ_CHUNK, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return data
