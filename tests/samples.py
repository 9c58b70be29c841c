"""Builds the binary samples the tests scan: real checkpoints and hand-made malicious pickles.

Every payload is harmless if ever run: it would only create a marker file. Nothing here is
ever unpickled; the tests assert that the marker never appears.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

MARKER_NAME = "verifier-payload-ran"


def _marker_command(marker_dir: Path) -> str:
    return f"touch {marker_dir / MARKER_NAME}"


def global_call(module: str, name: str, arg: str, *, protocol: int = 2) -> bytes:
    """A pickle that imports `module.name` with GLOBAL and calls it with one string."""
    body = b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    body += b"(" + b"X" + struct.pack("<I", len(arg.encode())) + arg.encode() + b"tR."
    if protocol >= 2:
        return b"\x80" + bytes([protocol]) + body
    return body


def os_system(marker_dir: Path, *, protocol: int = 2) -> bytes:
    """The classic payload: `os.system(cmd)` through GLOBAL + REDUCE."""
    return global_call("os", "system", _marker_command(marker_dir), protocol=protocol)


def builtins_eval(marker_dir: Path) -> bytes:
    """`builtins.eval` of an expression that would import os."""
    expr = f"__import__('os').system({_marker_command(marker_dir)!r})"
    return global_call("builtins", "eval", expr)


def os_system_protocol0(marker_dir: Path) -> bytes:
    """Protocol 0, text opcodes only: `cos\\nsystem\\n(S'...'\\ntR.`."""
    cmd = _marker_command(marker_dir)
    return b"cos\nsystem\n(S'" + cmd.encode() + b"'\ntR."


def stack_global_via_memo(marker_dir: Path) -> bytes:
    """Protocol 4: module and name strings stored in the memo, then fetched for STACK_GLOBAL."""
    cmd = _marker_command(marker_dir).encode()
    out = b"\x80\x04"
    out += b"\x8c\x02os\x94"  # SHORT_BINUNICODE 'os', MEMOIZE -> memo 0
    out += b"\x8c\x06system\x94"  # memo 1
    out += b"0"  # POP: stack now holds 'os'
    out += b"0"  # POP: empty
    out += b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
    out += b"\x8c" + bytes([len(cmd)]) + cmd + b"\x85R."  # arg, TUPLE1, REDUCE, STOP
    return out


def dotted_stack_global(marker_dir: Path) -> bytes:
    """STACK_GLOBAL with module `shlex` and name `os.system`: attribute traversal."""
    cmd = _marker_command(marker_dir).encode()
    out = b"\x80\x04\x8c\x05shlex\x8c\x09os.system\x93"
    out += b"\x8c" + bytes([len(cmd)]) + cmd + b"\x85R."
    return out


def truncated(payload: bytes) -> bytes:
    """The payload without its last bytes (no STOP)."""
    return payload[: len(payload) // 2]


def payload_then_broken(marker_dir: Path) -> bytes:
    """A REDUCE that runs, then garbage: the unpickler runs the call before it fails."""
    return os_system(marker_dir)[:-1] + b"\xff\xfe"


def benign_vocabulary() -> bytes:
    """A pickled dict whose strings mention `os.system` and `eval`: data, not imports."""
    vocab = {"os.system": 1, "builtins.eval": 2, "subprocess.Popen": 3, "hello": 4}
    return pickle.dumps(vocab, protocol=4)


def torch_zip_with_pickle(data_pkl: bytes, *, folder: str = "archive") -> bytes:
    """A PyTorch-style zip archive whose `data.pkl` is replaced by `data_pkl`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{folder}/data.pkl", data_pkl)
        archive.writestr(f"{folder}/byteorder", "little")
        archive.writestr(f"{folder}/data/0", b"\x00" * 64)
        archive.writestr(f"{folder}/version", "3\n")
    return buffer.getvalue()


def safetensors_bytes(header: bytes | dict[str, object], data: bytes = b"") -> bytes:
    """A safetensors file from a header (dict or raw bytes) and a data section."""
    import json

    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def safetensors_huge_length() -> bytes:
    """A safetensors file whose header length claims 2**63 bytes."""
    return struct.pack("<Q", 2**63) + b'{"a":1}'
