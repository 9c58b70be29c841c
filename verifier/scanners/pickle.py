"""Pickle analysis without execution: a streaming opcode walk with a symbolic stack and memo."""

from __future__ import annotations

import codecs
import pickletools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.pickle_globals import GlobalClass, classify

#: Longest string argument kept for name resolution; longer ones are skipped unread.
MAX_KEPT_STRING = 1 << 16
#: Longest newline-terminated argument (protocol 0 text opcodes).
MAX_LINE = 1 << 16
#: Deepest stack the walk tracks before it reports a bomb.
MAX_STACK = 1 << 20
#: Most memo entries tracked.
MAX_MEMO = 1 << 22


class PickleFormatError(Exception):
    """The opcode stream is malformed or truncated."""


@dataclass(frozen=True)
class _Str:
    value: str


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


@dataclass(frozen=True)
class _Called:
    callee: object


class _Mark:
    pass


_MARK = _Mark()
_OTHER = object()

_STR_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE"}
_STR_OPS |= {"SHORT_BINUNICODE", "BINUNICODE8"}
_PUSH_OTHER = {
    "INT",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG",
    "LONG1",
    "LONG4",
    "FLOAT",
    "BINFLOAT",
    "NONE",
    "NEWTRUE",
    "NEWFALSE",
    "EMPTY_LIST",
    "EMPTY_DICT",
    "EMPTY_TUPLE",
    "EMPTY_SET",
    "BINBYTES",
    "SHORT_BINBYTES",
    "BINBYTES8",
    "BYTEARRAY8",
    "NEXT_BUFFER",
    "PERSID",
}
_POP_TO_MARK_PUSH = {"LIST", "TUPLE", "DICT", "FROZENSET"}
_POP_TO_MARK = {"APPENDS", "SETITEMS", "ADDITEMS", "POP_MARK"}
_TUPLE_N = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_NO_EFFECT = {"PROTO", "FRAME", "READONLY_BUFFER"}
_EXT = {"EXT1", "EXT2", "EXT4"}
_CODE2OP = {op.code: op for op in pickletools.opcodes}


@dataclass
class PickleAnalysis:
    """What one walk over a pickle stream saw."""

    imports: list[tuple[str, str, int]] = field(default_factory=list)
    unresolved: list[int] = field(default_factory=list)
    ext_codes: list[int] = field(default_factory=list)
    error: str | None = None
    error_offset: int | None = None
    protocol: int = 0
    opcodes: int = 0
    stopped: bool = False


class _Walker:
    """One pass over a stream: reads each opcode and its argument, tracks names only."""

    def __init__(self, stream: ScanStream, analysis: PickleAnalysis, limit: int | None) -> None:
        self.stream = stream
        self.analysis = analysis
        self.limit = limit  # bytes this pickle may use (a zip member's size), None for no limit
        self.start = stream.tell()
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}

    def _need(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) < n:
            raise PickleFormatError("truncated pickle stream")
        return data

    def _line(self) -> bytes:
        out = bytearray()
        while True:
            ch = self.stream.read(1)
            if not ch:
                raise PickleFormatError("truncated pickle stream in a text argument")
            if ch == b"\n":
                return bytes(out)
            out += ch
            if len(out) > MAX_LINE:
                raise PickleFormatError("text argument longer than the scanner's limit")

    def _counted(self, n: int, *, keep: bool) -> bytes | None:
        if n < 0:
            raise PickleFormatError("negative length argument")
        if self.limit is not None and self.stream.tell() - self.start + n > self.limit:
            raise PickleFormatError("argument length runs past the end of the pickle")
        if keep and n <= MAX_KEPT_STRING:
            return self._need(n)
        if self.stream.skip(n) < n:
            raise PickleFormatError("truncated pickle stream in a binary argument")
        return None

    def _pop(self) -> object:
        if not self.stack:
            raise PickleFormatError("stack underflow")
        return self.stack.pop()

    def _pop_to_mark(self) -> list[object]:
        items: list[object] = []
        while True:
            item = self._pop()
            if item is _MARK:
                items.reverse()
                return items
            items.append(item)

    def _push(self, value: object) -> None:
        if len(self.stack) >= MAX_STACK:
            raise PickleFormatError("stack deeper than the scanner's limit (a pickle bomb?)")
        self.stack.append(value)

    def _arg(self, op: pickletools.OpcodeInfo) -> object:
        """Read the opcode's argument; return what name resolution may need."""
        arg = op.arg
        if arg is None:
            return None
        if op.name in ("GLOBAL", "INST"):
            return (self._line(), self._line())
        n = arg.n
        if n == pickletools.UP_TO_NEWLINE:
            return self._line()
        if n >= 0:
            return self._need(n)
        keep = op.name in _STR_OPS
        if n == pickletools.TAKEN_FROM_ARGUMENT1:
            return self._counted(self._need(1)[0], keep=keep)
        if n == pickletools.TAKEN_FROM_ARGUMENT4:
            return self._counted(struct.unpack("<i", self._need(4))[0], keep=keep)
        if n == pickletools.TAKEN_FROM_ARGUMENT4U:
            return self._counted(struct.unpack("<I", self._need(4))[0], keep=keep)
        if n == pickletools.TAKEN_FROM_ARGUMENT8U:
            return self._counted(struct.unpack("<Q", self._need(8))[0], keep=keep)
        raise PickleFormatError(f"opcode {op.name} has an argument the scanner cannot read")

    def run(self) -> None:
        """Walk until STOP; raise PickleFormatError on malformed input."""
        while True:
            offset = self.stream.tell()
            code = self.stream.read(1)
            if not code:
                raise PickleFormatError("pickle stream ends before STOP")
            try:
                op = _CODE2OP[code.decode("latin-1")]
            except KeyError:
                raise PickleFormatError(f"unknown opcode 0x{code[0]:02x}") from None
            arg = self._arg(op)
            self.analysis.opcodes += 1
            if op.name == "STOP":
                self._pop()
                self.analysis.stopped = True
                return
            self._apply(op.name, arg, offset)

    def _string_value(self, name: str, arg: object) -> object:
        if not isinstance(arg, bytes):
            return _OTHER  # too long to be a name: it was skipped
        if name in ("STRING",):
            raw = arg.strip()
            if len(raw) >= 2 and raw[:1] == raw[-1:] and raw[:1] in (b"'", b'"'):
                raw = raw[1:-1]
            return _Str(codecs.escape_decode(raw)[0].decode("latin-1"))
        if name in ("BINSTRING", "SHORT_BINSTRING"):
            return _Str(arg.decode("latin-1"))
        if name == "UNICODE":
            return _Str(arg.decode("raw-unicode-escape"))
        try:
            return _Str(arg.decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            raise PickleFormatError("string argument is not valid UTF-8") from None

    def _record_global(self, module: str, name: str, offset: int) -> _Global:
        self.analysis.imports.append((module, name, offset))
        return _Global(module, name)

    def _apply(self, name: str, arg: object, offset: int) -> None:
        if name in _STR_OPS:
            self._push(self._string_value(name, arg))
        elif name in _PUSH_OTHER:
            self._push(_OTHER)
        elif name == "MARK":
            self._push(_MARK)
        elif name in _NO_EFFECT:
            if name == "PROTO" and isinstance(arg, bytes):
                self.analysis.protocol = arg[0]
        elif name in ("GLOBAL", "INST"):
            assert isinstance(arg, tuple)
            module, attr = (part.decode("utf-8", "replace") for part in arg)
            ref = self._record_global(module, attr, offset)
            if name == "INST":
                self._pop_to_mark()
                self._push(_Called(ref))
            else:
                self._push(ref)
        elif name == "STACK_GLOBAL":
            attr_v, module_v = self._pop(), self._pop()
            if isinstance(module_v, _Str) and isinstance(attr_v, _Str):
                self._push(self._record_global(module_v.value, attr_v.value, offset))
            else:
                self.analysis.unresolved.append(offset)
                self._push(_OTHER)
        elif name == "REDUCE" or name == "NEWOBJ":
            self._pop()
            self._push(_Called(self._pop()))
        elif name == "NEWOBJ_EX":
            self._pop()
            self._pop()
            self._push(_Called(self._pop()))
        elif name == "OBJ":
            items = self._pop_to_mark()
            if not items:
                raise PickleFormatError("OBJ without a class")
            self._push(_Called(items[0]))
        elif name == "BUILD":
            self._pop()
            if not self.stack:
                raise PickleFormatError("stack underflow")
        elif name in _POP_TO_MARK_PUSH:
            self._pop_to_mark()
            self._push(_OTHER)
        elif name in _POP_TO_MARK:
            self._pop_to_mark()
        elif name in _TUPLE_N:
            for _ in range(_TUPLE_N[name]):
                self._pop()
            self._push(_OTHER)
        elif name == "APPEND":
            self._pop()
        elif name == "SETITEM":
            self._pop()
            self._pop()
        elif name == "POP":
            self._pop()
        elif name == "DUP":
            top = self._pop()
            self._push(top)
            self._push(top)
        elif name == "BINPERSID":
            self._pop()
            self._push(_OTHER)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            self._memo_put(name, arg)
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            index = self._memo_index(name, arg)
            if index not in self.memo:
                raise PickleFormatError(f"memo key {index} read before it was written")
            self._push(self.memo[index])
        elif name in _EXT:
            self.analysis.ext_codes.append(offset)
            self._push(_OTHER)
        else:
            raise PickleFormatError(f"opcode {name} is not handled")

    def _memo_index(self, name: str, arg: object) -> int:
        assert isinstance(arg, bytes)
        if name in ("PUT", "GET"):
            try:
                return int(arg)
            except ValueError:
                raise PickleFormatError("memo key is not a number") from None
        if name in ("BINPUT", "BINGET"):
            return arg[0]
        return int(struct.unpack("<I", arg)[0])

    def _memo_put(self, name: str, arg: object) -> None:
        if not self.stack:
            raise PickleFormatError("memo write with an empty stack")
        index = len(self.memo) if name == "MEMOIZE" else self._memo_index(name, arg)
        if len(self.memo) >= MAX_MEMO:
            raise PickleFormatError("memo larger than the scanner's limit")
        self.memo[index] = self.stack[-1]


def analyse_pickle(stream: ScanStream, *, limit: int | None = None) -> PickleAnalysis:
    """Walk one pickle from the stream's position to its STOP opcode, executing nothing.

    Errors in the stream are recorded in the analysis, after everything seen before them.
    """
    analysis = PickleAnalysis()
    walker = _Walker(stream, analysis, limit)
    try:
        walker.run()
    except PickleFormatError as exc:
        analysis.error = str(exc)
        analysis.error_offset = stream.tell()
    return analysis


def pickle_findings(
    analysis: PickleAnalysis, ctx: ScanContext, *, member: str | None = None
) -> Iterator[Finding]:
    """Turn an analysis into findings: imports by class, then unresolved names, then errors."""
    seen: dict[tuple[str, str], int] = {}
    safe: list[str] = []
    for module, name, offset in analysis.imports:
        full = f"{module}.{name}"
        verdict = classify(module, name)
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
            yield ctx.finding(
                "PICKLE-UNKNOWN-GLOBAL",
                Severity.HIGH,
                f"pickle imports {full}, which is not on the allowlist of checkpoint callables",
                member=member,
                offset=offset,
                evidence=full,
            )
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
    if safe:
        yield ctx.finding(
            "PICKLE-IMPORTS",
            Severity.INFO,
            f"pickle (protocol {analysis.protocol}) imports only allowlisted callables",
            member=member,
            evidence=", ".join(safe),
        )


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
