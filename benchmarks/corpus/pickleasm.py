"""A tiny pickle assembler for hand-made samples: opcodes as bytes, no pickling of objects."""

from __future__ import annotations

import struct
from pathlib import Path

from benchmarks.corpus import MARKER_NAME

MARK = b"("
STOP = b"."
REDUCE = b"R"
BUILD = b"b"
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
EMPTY_TUPLE = b")"
EMPTY_DICT = b"}"
EMPTY_LIST = b"]"
STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"
NEWOBJ = b"\x81"
POP = b"0"
SETITEM = b"s"
APPEND = b"a"


def marker(marker_dir: Path) -> Path:
    """Where a payload would write its marker."""
    return marker_dir / MARKER_NAME


def shell(marker_dir: Path) -> str:
    """A harmless shell command: create the marker file."""
    return f"touch {marker(marker_dir)}"


def python_code(marker_dir: Path) -> str:
    """Harmless Python source: create the marker file."""
    return f"open({str(marker(marker_dir))!r}, 'w').close()"


def proto(n: int) -> bytes:
    """PROTO n."""
    return b"\x80" + bytes([n])


def uni(text: str) -> bytes:
    """BINUNICODE (or SHORT_BINUNICODE when short)."""
    raw = text.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def string0(text: str) -> bytes:
    """Protocol 0 STRING with a quoted repr."""
    return b"S" + repr(text).encode() + b"\n"


def binint(n: int) -> bytes:
    """BININT (signed 4 bytes)."""
    return b"J" + struct.pack("<i", n)


def binbytes(data: bytes) -> bytes:
    """BINBYTES."""
    return b"B" + struct.pack("<I", len(data)) + data


def glob(module: str, name: str) -> bytes:
    """GLOBAL (text, every protocol)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sglob(module: str, name: str) -> bytes:
    """STACK_GLOBAL with both names pushed as strings (protocol 4)."""
    return uni(module) + uni(name) + STACK_GLOBAL


def call(func: bytes, *args: bytes) -> bytes:
    """func(*args) via MARK ... TUPLE REDUCE; `func` and args are opcode sequences."""
    return func + MARK + b"".join(args) + TUPLE + REDUCE


def program(*parts: bytes, protocol: int = 2) -> bytes:
    """A whole pickle: PROTO, the parts, STOP (no PROTO for protocol 0/1)."""
    head = proto(protocol) if protocol >= 2 else b""
    return head + b"".join(parts) + STOP


def shell_call(module: str, name: str, marker_dir: Path, *, protocol: int = 2) -> bytes:
    """`module.name("touch marker")` via GLOBAL + REDUCE."""
    return program(call(glob(module, name), uni(shell(marker_dir))), protocol=protocol)


def code_call(module: str, name: str, marker_dir: Path, *, protocol: int = 2) -> bytes:
    """`module.name("<python source>")` via GLOBAL + REDUCE."""
    return program(call(glob(module, name), uni(python_code(marker_dir))), protocol=protocol)
