"""Identify a file's format from its first bytes (magic and structure), never from its name."""

from __future__ import annotations

import codecs
import enum
import lzma
import pickletools
import struct
import zlib
from dataclasses import dataclass

from verifier.model import FileFormat
from verifier.scanners.pickle_args import (
    NUMERIC_PREFIX,
    float_argument_valid,
    int_argument,
    long_argument,
)
from verifier.scanners.pickle_globals import GlobalClass, classify
from verifier.scanners.raw_pickle import StackModel
from verifier.scanners.streams import LZMA_MEMLIMIT, memory_limited

HEAD_SIZE = 65536  # leading bytes `identify` expects (the whole file when smaller)

# A pickle walk over this many bytes decides; walking all of HEAD_SIZE costs more and tells no more.
_PICKLE_WALK_LIMIT = 8192

_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_EMPTY = b"PK\x05\x06"
_HDF5 = b"\x89HDF\r\n\x1a\n"
_HDF5_USERBLOCK_OFFSETS = (512, 1024, 2048)
_TORCH_ZIP_MARKERS = frozenset({"data.pkl", "version", "byteorder"})
_TORCH_TAR_MEMBERS = frozenset({b"storages", b"tensors", b"pickle"})

# torch.save(_use_new_zipfile_serialization=False) begins with pickle.dumps(0x1950a86a20f9469cfc6c)
# at the protocol it was given; these are those dumps for protocols 0/1, 2, 3, 4 and 5.
_TORCH_LEGACY_MAGIC = (
    b"L119547037146038801333356L\n.",
    b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.",
    b"\x80\x03\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.",
    b"\x80\x04\x95\r\x00\x00\x00\x00\x00\x00\x00\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.",
    b"\x80\x05\x95\r\x00\x00\x00\x00\x00\x00\x00\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.",
)

# Formats whose loaders do not unpickle, but which torch.load would treat as a legacy pickle:
# a file that also walks as a pickle is reported as PICKLE.
_PASSIVE_MAGIC: tuple[tuple[bytes, FileFormat], ...] = (
    (b"GGUF", FileFormat.GGUF),
    (_HDF5, FileFormat.HDF5),
    (b"\x89PNG\r\n\x1a\n", FileFormat.IMAGE),
    (b"\xff\xd8\xff", FileFormat.IMAGE),
    (b"GIF87a", FileFormat.IMAGE),
    (b"GIF89a", FileFormat.IMAGE),
)


def identify(head: bytes, size: int) -> FileFormat:
    """Identify a file's format from its content.

    When bytes admit two readings, the one a mainstream loader would act on wins, and among
    those the reading that runs a pickle: a pickle at offset 0 with a zip appended is PICKLE
    (torch.load only checks for zip magic at offset 0).

    Args:
        head: The first bytes of the file, up to HEAD_SIZE (the whole file if smaller).
        size: The full size of the file in bytes.

    Returns:
        The identified format; UNKNOWN when nothing matched.
    """
    if size == 0:
        return FileFormat.EMPTY
    if not head:
        return FileFormat.UNKNOWN
    # torch.load and numpy.load dispatch on these magics and then never unpickle the file
    # itself, so they outrank a pickle reading of the same bytes.
    if head.startswith(_ZIP_LOCAL):
        return _refine_zip(head)
    if head.startswith(_ZIP_EMPTY):
        return FileFormat.ZIP
    if head.startswith(b"\x93NUMPY"):
        return FileFormat.NUMPY
    if _is_torch_legacy_tar(head):
        return FileFormat.PYTORCH_LEGACY
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return FileFormat.PYTORCH_LEGACY
    header_end = _safetensors_header_end(head, size)
    evidence = _pickle_evidence(head, size, header_end=header_end)
    if evidence is _PickleEvidence.STRONG:
        return FileFormat.PICKLE
    if compression_kind(head) is not None:
        return FileFormat.COMPRESSED
    if archive_kind(head) is not None:
        return FileFormat.ARCHIVE
    if len(head) >= 512 and head[257:262] == b"ustar":
        return FileFormat.TAR
    for magic, fmt in _PASSIVE_MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FileFormat.IMAGE
    if header_end is not None:
        return FileFormat.SAFETENSORS
    # After safetensors: a header length of 0x5a4d starts `MZ` and NULs, like a DOS header.
    if executable_kind(head) is not None:
        return FileFormat.EXECUTABLE
    if evidence is _PickleEvidence.WEAK:
        return FileFormat.PICKLE
    if any(head[at : at + len(_HDF5)] == _HDF5 for at in _HDF5_USERBLOCK_OFFSETS):
        return FileFormat.HDF5
    if _is_savedmodel(head, size):
        return FileFormat.TF_SAVEDMODEL
    if _is_onnx(head, size):
        return FileFormat.ONNX
    if _is_sentencepiece(head):
        return FileFormat.SENTENCEPIECE
    return _identify_text(head, size)


# Native executables and libraries: ELF, Mach-O (32/64-bit, either byte order, universal).
_EXECUTABLE_MAGIC = (
    (b"\x7fELF", "ELF"),
    (b"\xfe\xed\xfa\xce", "Mach-O"),
    (b"\xfe\xed\xfa\xcf", "Mach-O"),
    (b"\xce\xfa\xed\xfe", "Mach-O"),
    (b"\xcf\xfa\xed\xfe", "Mach-O"),
    (b"\xca\xfe\xba\xbe", "Mach-O universal or Java class"),
)


def executable_kind(head: bytes) -> str | None:
    """'PE', 'ELF' or 'Mach-O' when the head opens a native executable or library.

    A PE file (Windows .exe/.dll) starts `MZ` and its DOS header points at `PE\\0\\0`; a binary
    DOS header whose PE header lies past the head counts too.
    """
    for magic, kind in _EXECUTABLE_MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"MZ") and len(head) >= 64:
        pe_at = int.from_bytes(head[60:64], "little")
        if head[pe_at : pe_at + 4] == b"PE\x00\x00":
            return "PE"
        if b"\x00" in head[2:64]:
            return "DOS or PE"  # a binary DOS header (text never holds a NUL)
    return None


_SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c"
_RAR = b"Rar!\x1a\x07"


def archive_kind(head: bytes) -> str | None:
    """'7z' (read by scanners.sevenz) or 'rar' (never opened) when the head opens one."""
    if head.startswith(_SEVEN_ZIP):
        return "7z"
    if head.startswith(_RAR):
        return "rar"
    return None


def compression_kind(head: bytes) -> str | None:
    """The compression a stream starts with: gzip, bz2, xz, lz4, lzma, zlib; None if none.

    zlib and raw lzma have no real magic (a protocol 0 pickle starting `(S` passes zlib's
    2-byte header check), so those are accepted only when the head actually decompresses.
    """
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] == b"1AY&SY":
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x04\x22\x4d\x18"):  # an lz4 frame (joblib's compress="lz4")
        return "lz4"
    if zfile_data_start(head) is not None:
        return "zfile"
    if _zlib_header(head) and _inflates(head):
        return "zlib"
    if head[:1] == b"]" and head[1:3] == b"\x00\x00" and _lzma_alone(head):
        return "lzma"
    return None


def _zlib_header(head: bytes) -> bool:
    """Deflate method, a window of 32 KiB at most, a valid check value and no preset dictionary."""
    if len(head) < 2 or head[0] & 0x0F != 8 or head[0] >> 4 > 7:
        return False
    return (head[0] << 8 | head[1]) % 31 == 0 and not head[1] & 0x20


def _inflates(head: bytes) -> bool:
    """Two bytes of output, or (a stream opening with empty stored blocks) all of the head
    decoded without error: either way zlib readers (joblib) would go on decompressing."""
    decoder = zlib.decompressobj()
    try:
        out = decoder.decompress(head, 256)
    except zlib.error:
        return False
    return len(out) >= 2 or (not decoder.unconsumed_tail and len(head) >= 64)


#: joblib's legacy z-files (before 0.9.3): b"ZF", the length in hex padded to 19 characters,
#: sometimes a space, then a zlib stream (`joblib.numpy_pickle_compat.read_zfile`).
_ZFILE_LENGTH = 19


def zfile_data_start(head: bytes) -> int | None:
    """Where the zlib data of a joblib z-file starts, or None when `head` is not one."""
    if not head.startswith(b"ZF") or len(head) < 2 + _ZFILE_LENGTH + 2:
        return None
    try:
        int(head[2 : 2 + _ZFILE_LENGTH], 16)
    except ValueError:
        return None
    start = 2 + _ZFILE_LENGTH
    if head[start : start + 1] == b" ":
        start += 1
    return start if _zlib_header(head[start:]) else None


def _lzma_alone(head: bytes) -> bool:
    decoder = lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT)
    try:
        out = decoder.decompress(head[:4096], 256)
    except lzma.LZMAError as exc:
        # A header declaring a dictionary past the cap is an lzma stream, refused as a bomb
        # when it is read (nothing is allocated here).
        return memory_limited(exc)
    return len(out) >= 2


def _identify_text(head: bytes, size: int) -> FileFormat:
    if b"\x00" in head:
        return FileFormat.UNKNOWN
    try:
        # Not final when the head is a prefix: a multi-byte character may be cut at its end.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) >= size)
    except UnicodeDecodeError:
        return FileFormat.UNKNOWN
    body = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")
    # JSON opens an object with a key or `}`, an array with a value or `]`: a BERT vocab.txt
    # opening `[PAD]` is text, as its loaders read it.
    # (Nothing after the bracket decides only when the head is cut.)
    after = body[1:].lstrip(b" \t\r\n")[:1] or (b"" if len(head) < size else b"\n")
    if body[:1] == b"{" and after in (b"", b'"', b"}"):
        return FileFormat.JSON
    if body[:1] == b"[" and after in (b"", *(bytes([c]) for c in b'{["-0123456789tfn]')):
        return FileFormat.JSON
    return FileFormat.TEXT


def _safetensors_header_end(head: bytes, size: int) -> int | None:
    """Where a plausible safetensors header ends (8 + N); None if the head is not one."""
    if len(head) < 10:
        return None
    header_len = int.from_bytes(head[:8], "little")
    if not 2 <= header_len <= size - 8:
        return None
    header = head[8 : 8 + header_len].lstrip(b" ")
    after = header[1:].lstrip(b" \t\r\n")
    return 8 + header_len if header[:1] == b"{" and after[:1] in (b"", b'"', b"}") else None


def _refine_zip(head: bytes) -> FileFormat:
    names = _zip_member_names(head)
    for name in names:
        parts = name.split("/")
        if len(parts) == 2 and parts[0] and parts[1] in _TORCH_ZIP_MARKERS:
            return FileFormat.PYTORCH_ZIP
    if names and all(name.endswith(".npy") for name in names):
        return FileFormat.NUMPY_NPZ
    return FileFormat.ZIP


def _zip_member_names(head: bytes) -> list[str]:
    """Names from the local file headers that lie within `head`, in order."""
    names: list[str] = []
    pos = 0
    while len(names) < 256 and head.startswith(_ZIP_LOCAL, pos) and pos + 30 <= len(head):
        flags, csize, usize, name_len, extra_len = struct.unpack_from("<2xH10xIIHH", head, pos + 4)
        name_at = pos + 30
        if name_at + name_len > len(head):
            break
        names.append(head[name_at : name_at + name_len].decode("utf-8", errors="replace"))
        extra = head[name_at + name_len : name_at + name_len + extra_len]
        csize = _zip64_compressed_size(extra, csize=csize, usize=usize)
        data_at = name_at + name_len + extra_len
        # With a data descriptor the sizes follow the data: look for the next local header.
        descriptor = flags & 0x08 and csize == 0
        following = head.find(_ZIP_LOCAL, data_at) if descriptor else data_at + csize
        if following <= pos:
            break
        pos = following
    return names


def _zip64_compressed_size(extra: bytes, *, csize: int, usize: int) -> int:
    if csize != 0xFFFFFFFF:
        return csize
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4 : at + 4 + length]
        if tag == 0x0001:
            skip = 8 if usize == 0xFFFFFFFF else 0
            if len(body) >= skip + 8:
                return int.from_bytes(body[skip : skip + 8], "little")
        at += 4 + length
    return csize


def _is_torch_legacy_tar(head: bytes) -> bool:
    pos = 0
    while pos + 512 <= len(head) and head[pos + 257 : pos + 262] == b"ustar":
        block = head[pos : pos + 512]
        if block[:100].split(b"\x00", 1)[0] in _TORCH_TAR_MEMBERS:
            return True
        raw_size = block[124:136].strip(b"\x00 ")
        try:
            member_size = int(raw_size, 8) if raw_size else 0
        except ValueError:
            return False
        pos += 512 + -(-member_size // 512) * 512
    return False


class _PickleEvidence(enum.Enum):
    NONE = "none"
    WEAK = "weak"  # a protocol 2+ header followed by opcodes, then nonsense
    STRONG = "strong"


class _WalkEnd(enum.Enum):
    STOP = "stop"
    RAN_OUT = "ran-out"  # well-formed as far as it was walked, and the file goes on
    ERROR = "error"


@dataclass(frozen=True)
class _Walk:
    end: _WalkEnd
    ops: int
    at: int  # offset of the opcode the walk ended on
    ran_code: bool  # an import followed by a call: an unpickler would already have run code
    #: The first module and name an unpickler would look up (`find_class`), if any.
    first_import: tuple[str, str] | None = None
    #: No opcode walked makes both unpicklers raise (raw_pickle's stack model).
    sound: bool = True


# First opcodes of real protocol 0/1 pickles; text rarely begins with these and survives a walk.
_PLAIN_STARTS = frozenset(b"(])}ciNILSVFKMJGXTUBCdlte")
# Any opcode that pushes onto an empty stack can open a pickle an unpickler accepts.
_PUSH_STARTS = _PLAIN_STARTS | frozenset(b"P\x80\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x95\x96")
_IMPORTS = frozenset({"GLOBAL", "STACK_GLOBAL", "INST"})
_CALLS = frozenset({"REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"})
_OPCODES = {ord(op.code): op for op in pickletools.opcodes}
_LENGTH_PREFIX = {
    pickletools.TAKEN_FROM_ARGUMENT1: 1,
    pickletools.TAKEN_FROM_ARGUMENT4: 4,
    pickletools.TAKEN_FROM_ARGUMENT4U: 4,
    pickletools.TAKEN_FROM_ARGUMENT8U: 8,
}


def _pickle_evidence(head: bytes, size: int, *, header_end: int | None) -> _PickleEvidence:
    """How strongly the head reads as a pickle an unpickler would start running.

    The unpickler decides nothing from a window: a head that is a valid pickle prefix as far
    as it goes (an argument, or the walk, running past its end) is at least WEAK evidence,
    so a pickle whose first argument outgrows the window is never waved through as text.
    A plausible safetensors head needs more: a call, or a pickle that outlasts the header
    (`N.` or `(.` in the length bytes would otherwise make a valid model a pickle).
    """
    walk = _walk_pickle(head, size)
    if not walk.sound and not walk.ran_code:
        # Both unpicklers raise at an opcode before anything ran (INST with no MARK, a stack
        # underflow): the bytes after it are never read, however well they walk. What such
        # bytes import on the way is reported with the text (`text_pickle_import`).
        return _PickleEvidence.NONE
    first = head[0]
    complete = walk.end is _WalkEnd.STOP and walk.ops >= 2 and walk.at >= (header_end or 0)
    if first in _PUSH_STARTS and (walk.ran_code or complete):
        return _PickleEvidence.STRONG
    if header_end is not None:
        return _PickleEvidence.NONE
    # CPython accepts PROTO 0 and 1 too (`0 <= proto <= HIGHEST_PROTOCOL`).
    protocol_header = first == 0x80 and len(head) > 1 and head[1] <= 5
    plausible = protocol_header or first in _PLAIN_STARTS
    if walk.end is _WalkEnd.RAN_OUT and first in _PUSH_STARTS:
        strong = walk.ops >= 2 and plausible
        return _PickleEvidence.STRONG if strong else _PickleEvidence.WEAK
    if protocol_header and walk.ops >= 2:
        return _PickleEvidence.WEAK
    return _PickleEvidence.NONE


def _walk_pickle(head: bytes, size: int) -> _Walk:
    """Walk opcodes with pickletools' table, checking arguments without evaluating anything.

    Arguments are checked here rather than by pickletools' readers, which call
    codecs.escape_decode and so emit DeprecationWarning on hostile bytes. The walk stops at
    the first opcode past _PICKLE_WALK_LIMIT, but that opcode's argument may use the head.
    A call counts only when raw_pickle's stack model (which names an error only where both
    unpicklers raise) finds its operands, and no opcode before it made the unpicklers stop:
    `import x` / `import y` / `import z` is three INSTs with no MARK, so no call, however
    importable the names.
    """
    pos = ops = 0
    imported = ran_code = False
    first_import: tuple[str, str] | None = None
    stack, live = StackModel(), True
    more = size > len(head)
    while True:
        if pos >= len(head) or pos >= _PICKLE_WALK_LIMIT:
            end = _WalkEnd.RAN_OUT if more or pos < len(head) else _WalkEnd.ERROR
            return _Walk(end, ops, pos, ran_code, first_import, live)
        opcode = _OPCODES.get(head[pos])
        if opcode is None:
            return _Walk(_WalkEnd.ERROR, ops, pos, ran_code, first_import, live)
        arg = opcode.arg
        after = pos + 1 if arg is None else _argument_end(head, pos + 1, opcode, size)
        if after is None or after > len(head):
            end = _WalkEnd.RAN_OUT if after is not None and more else _WalkEnd.ERROR
            return _Walk(end, ops, pos, ran_code, first_import, live)
        ops += 1
        if live and first_import is None and opcode.name in ("GLOBAL", "INST"):
            first_import = _import_names(head[pos:after])
        live = live and stack.apply(opcode, head[pos + 1 : pos + 2] or b"\0") is None
        call = live and opcode.name in _CALLS
        # Importing runs the module's code: a dangerous module is enough, with no call after.
        # INST imports and calls in one opcode: after a MARK, the call happens even when the
        # bytes that follow are no pickle (the unpicklers fail only after it).
        ran_code = ran_code or (call and (imported or opcode.name == "INST"))
        ran_code = ran_code or (opcode.name in ("GLOBAL", "INST") and _dangerous(head[pos:after]))
        imported = imported or opcode.name in _IMPORTS
        if opcode.name == "STOP":
            return _Walk(_WalkEnd.STOP, ops, pos, ran_code, first_import, live)
        pos = after


def text_pickle_import(head: bytes, size: int) -> tuple[str, str] | None:
    """The module and name an unpickler would import from bytes identified as text, if any.

    `cat` / `dog` is `GLOBAL at dog` to `pickle.load`, which imports `at` before it fails:
    harmless unless a file the import system finds by that name (`at.py`, `po#six.py`) is on
    `sys.path`. Text whose walk reaches a call is a pickle (`identify`) and never gets here.
    """
    return _walk_pickle(head, size).first_import


def _import_names(op: bytes) -> tuple[str, str]:
    """The module and name of a GLOBAL or INST opcode (with its two lines), for a report."""
    module, _, name = op[1:].partition(b"\n")
    return module.decode("utf-8", "replace"), name.removesuffix(b"\n").decode("utf-8", "replace")


def _dangerous(op: bytes) -> bool:
    """Whether a GLOBAL or INST opcode (with its two lines) names a dangerous callable.

    Only dotted identifiers can: every module and attribute the classification knows is one,
    and a line of prose (`mport numpy as np` / `from scipy.signal import x`) names no module
    that exists, whatever words it holds.
    """
    module, _, name = op[1:].partition(b"\n")
    name = name[:-1]  # its newline, or at the end of the file the byte read as one
    text = (module.decode("utf-8", "replace"), name.decode("utf-8", "replace"))
    dotted = all(part.isidentifier() for value in text for part in value.split("."))
    return dotted and classify(*text) is GlobalClass.DANGEROUS


def _argument_end(head: bytes, at: int, opcode: pickletools.OpcodeInfo, size: int) -> int | None:
    """Offset just past an argument; past len(head) if it runs off the end; None if invalid."""
    arg = opcode.arg
    assert arg is not None
    if arg.n >= 0:
        return at + arg.n
    prefix = _LENGTH_PREFIX.get(arg.n)
    if prefix is not None:
        if at + prefix > len(head):
            return at + prefix
        signed = arg.n == pickletools.TAKEN_FROM_ARGUMENT4
        length = int.from_bytes(head[at : at + prefix], "little", signed=signed)
        end = at + prefix + length
        return end if length >= 0 and end <= size else None
    end = at
    pair = arg.name == "stringnl_noescape_pair"
    for kind in _line_kinds(opcode.name) if pair else (arg.name,):
        newline = head.find(b"\n", end)
        if newline < 0 and len(head) >= size and end < len(head):
            # The last line of the file: pickle._Unpickler (joblib's) reads the rest as the
            # line and drops its last byte as if it were the newline (the C one refuses).
            # Its next readline gives b"", an empty name: the import is still made.
            return len(head) if _valid_line(kind, head[end:-1]) else None
        if newline < 0:
            # The line runs past the head: valid as far as it goes means "ran out", since an
            # unpickler reads lines of any length (64 KiB of spaces before an INT's digits).
            return len(head) + 1 if _valid_line_prefix(kind, head[end:]) else None
        if not _valid_line(kind, head[end:newline]):
            return None
        end = newline + 1
    return end


def _line_kinds(opcode: str) -> tuple[str, str]:
    """The two lines of GLOBAL (UTF-8 in both unpicklers) or INST (ASCII in both)."""
    return (f"{opcode}-module", f"{opcode}-name")


_NUMERIC_KINDS = frozenset({"decimalnl_short", "decimalnl_long", "floatnl"})


def _valid_line_prefix(kind: str, cut: bytes) -> bool:
    """Whether a line argument cut by the end of the head can still become a valid one."""
    if kind in _NUMERIC_KINDS:
        return NUMERIC_PREFIX.fullmatch(cut) is not None
    if kind == "stringnl":
        return cut[:1] in (b"'", b'"')
    if kind in _IMPORT_LINES:
        return _import_line(kind, cut, cut=True)
    if kind == "stringnl_noescape":
        return cut.isascii()
    return True  # UNICODE: raw-unicode-escape decodes almost anything


_IMPORT_LINES = frozenset({"GLOBAL-module", "GLOBAL-name", "INST-module", "INST-name"})


def _import_line(kind: str, value: bytes, *, cut: bool = False) -> bool:
    """Whether an unpickler would go on to import with this GLOBAL or INST line.

    The loader's rule, not Python's identifier rule: both unpicklers decode the lines (GLOBAL
    as UTF-8, INST as ASCII) and hand them to `__import__`, which searches `sys.path` for
    nearly any module name. A marker-only oracle (docs/scanners.md) ran `po#six.py`, `a b.py`,
    `a\\b.py`, `-dash.py`, `1num.py` for such names, `.py` for `.` and `..`, `x.py` for `.x`,
    and `a/b.py` from a zip on `sys.path` for `a/b`. Only an empty module name is refused
    before any import (`ValueError` in Python; the C unpickler wants a non-empty line). The
    name may be empty: `pickle._Unpickler` imports before `getattr` fails.
    `cut`: the line runs past the head, so a multi-byte character may be cut at its end.
    """
    encoding = "ascii" if kind.startswith("INST") else "utf-8"
    for trim in range(4 if cut and encoding == "utf-8" else 1):
        try:
            value[: len(value) - trim].decode(encoding)
        except UnicodeDecodeError:
            continue
        return cut or value != b"" or kind.endswith("-name")
    return False


def _base10(value: bytes) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _valid_line(kind: str, value: bytes) -> bool:
    """Whether a newline-terminated argument would parse, without evaluating it."""
    # Numbers as either CPython unpickler reads them (`int(x, 0)` accepts `0x1`, C stops at a
    # NUL): the sniff takes the union, since either may load the file.
    if kind == "decimalnl_short":
        # INT reads `int(x, 0)`; PUT and GET, which share the kind, read `int(x)` (base 10:
        # `0999` is a memo key, as the campaign found).
        return value != b"" and (int_argument(value) is not None or _base10(value))
    if kind == "decimalnl_long":
        return value != b"" and long_argument(value) is not None
    if kind == "floatnl":
        return value != b"" and float_argument_valid(value)
    if kind == "stringnl":
        return len(value) >= 2 and value[:1] in (b"'", b'"') and value[-1:] == value[:1]
    if kind in _IMPORT_LINES:
        return _import_line(kind, value)
    if kind == "unicodestringnl":
        try:
            value.decode("raw-unicode-escape")
        except ValueError:
            return False
        return True
    return value.isascii()


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    for index in range(pos, min(pos + 10, len(data))):
        value |= (data[index] & 0x7F) << shift
        if not data[index] & 0x80:
            return value, index + 1
        shift += 7
    return None


# ModelProto field number -> protobuf wire type.
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_ONNX_TEXT_FIELDS = frozenset({2, 3, 4})
_ONNX_WINDOW = 128


def _is_savedmodel(head: bytes, size: int) -> bool:
    """TensorFlow saved_model.pb: schema version 1, then a MetaGraphDef opening with its
    meta_info_def or graph_def (an ONNX model's field 2 is a producer name, never binary)."""
    if not head.startswith(b"\x08\x01\x12"):
        return False
    length = _read_varint(head, 3)
    if length is None or length[1] + length[0] > size:
        return False
    return head[length[1] : length[1] + 1] in (b"\x0a", b"\x12")


def _is_onnx(head: bytes, size: int) -> bool:
    if head[:1] != b"\x08":
        return False
    seen: set[int] = set()
    pos = 0
    while pos < min(len(head), _ONNX_WINDOW):
        tag = _read_varint(head, pos)
        if tag is None:
            return False
        field, wire = tag[0] >> 3, tag[0] & 7
        if _ONNX_FIELDS.get(field) != wire:
            return False
        value = _read_varint(head, tag[1])
        if value is None:
            return False
        pos = value[1]
        if field == 1 and not (pos == 2 and 1 <= value[0] <= 64):
            return False
        if wire == 2:
            end = pos + value[0]
            if end > size:
                return False
            if end <= len(head) and field in _ONNX_TEXT_FIELDS and not _is_utf8(head[pos:end]):
                return False
            pos = end
        seen.add(field)
    return bool(seen - {1})


def _length_delimited(data: bytes, pos: int) -> tuple[bytes, int] | None:
    """The payload of a length-delimited protobuf field whose length varint is at `pos`."""
    length = _read_varint(data, pos)
    if length is None or length[1] + length[0] > len(data):
        return None
    return data[length[1] : length[1] + length[0]], length[1] + length[0]


def _is_sentencepiece(head: bytes) -> bool:
    """ModelProto opening with two `pieces` entries, at least one of them scored."""
    pos, scored = 0, False
    for _ in range(2):
        field = _length_delimited(head, pos + 1) if head[pos : pos + 1] == b"\x0a" else None
        piece = None if field is None else _sentencepiece_entry(field[0])
        if field is None or piece is None:
            return False
        scored, pos = scored or piece, field[1]
    return scored


def _sentencepiece_entry(entry: bytes) -> bool | None:
    """Whether a SentencePiece entry (piece, score, type) has a score; None if it is not one."""
    pos = 0
    has_piece = has_score = False
    while pos < len(entry):
        tag = entry[pos]
        if tag == 0x0A and (piece := _length_delimited(entry, pos + 1)) is not None:
            if not _is_utf8(piece[0]):
                return None
            has_piece, pos = True, piece[1]
        elif tag == 0x15 and pos + 5 <= len(entry):
            has_score, pos = True, pos + 5
        elif tag == 0x18 and (kind := _read_varint(entry, pos + 1)) is not None:
            pos = kind[1]
        else:
            return None
    return has_score if has_piece else None
