"""What a pickle loader does with bytes that are not a pickle: refuse them at once, or read on.

`pickle.load`, `torch.load`'s legacy fallback, `numpy.load(allow_pickle=True)` and joblib
(for a file whose magic it does not know) unpickle whatever they are given. A compressed
stream (a `joblib.dump(..., compress=...)` file saved as `model.pkl`) is analysed by what it
decompresses to, but such a loader reads its *raw* bytes: that is safe only when the unpickler
stops at the first bytes. Some heads do not stop at once: bz2's `BZh` is `BINBYTES` with a
4-byte length (`Zh91`, about 825 MB) that, in a file that large, carries the unpickler past
the header into bytes the file's author chose; a zlib header `X` is `BINUNICODE`, `(` is `MARK`.

`raw_pickle_reading` follows CPython's unpicklers over the first opcodes, with pickletools'
opcode table for the arguments and a stack and memo model, and says the bytes *stop* only on an
error both unpicklers raise: a byte that is no opcode, an argument past the end of the data,
an unsupported protocol, a memo lookup before anything was memoised, an opcode that needs a
mark or more stack items than there are (counted over the whole stack, as the C unpickler's
`APPEND` and `SETITEM` index it, not from the last mark as the Python one does). Anything
else is assumed to succeed, so the answer errs towards "reads on". An import, a call, `STOP`
(a caller may read a second pickle), or more than `MAX_OPS` opcodes is "reads on".
`tests/scanners/test_raw_pickle.py` checks the answer against both unpicklers.
"""

from __future__ import annotations

import pickletools
from collections.abc import Callable
from dataclasses import dataclass

#: Opcodes followed before the bytes are taken to read on.
MAX_OPS = 64
#: Longest text argument (a line) looked for; a longer one is taken to read on.
MAX_LINE = 65536

_OPCODES = {ord(op.code): op for op in pickletools.opcodes}
_LENGTH_PREFIX = {
    pickletools.TAKEN_FROM_ARGUMENT1: 1,
    pickletools.TAKEN_FROM_ARGUMENT4: 4,
    pickletools.TAKEN_FROM_ARGUMENT4U: 4,
    pickletools.TAKEN_FROM_ARGUMENT8U: 8,
}
#: Opcodes that import, call, look a name up or hand back a value: reaching one is reading on.
_READS_ON = frozenset(
    {
        "GLOBAL",
        "STACK_GLOBAL",
        "INST",
        "OBJ",
        "REDUCE",
        "BUILD",
        "NEWOBJ",
        "NEWOBJ_EX",
        "EXT1",
        "EXT2",
        "EXT4",
        "PERSID",
        "BINPERSID",
        "STOP",
    }
)
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


@dataclass(frozen=True)
class RawPickleReading:
    """How an unpickler given the raw bytes ends: at once (`stops`), or reading on."""

    stops: bool
    #: What decided it, for the finding's message.
    reason: str
    #: Offset of the opcode that decided it.
    offset: int


class _Window:
    """The data read through `read_at`, one block cached; a short read means "unknown"."""

    def __init__(self, head: bytes, size: int, read_at: Callable[[int, int], bytes]) -> None:
        self.size = size
        self._read_at = read_at
        self._start = 0
        self._data = head[:size]

    def get(self, offset: int, n: int) -> bytes | None:
        """`n` bytes at `offset` (fewer only at the end of the data); None if unreadable."""
        want = max(0, min(n, self.size - offset))
        end = offset + want
        if not (self._start <= offset and end <= self._start + len(self._data)):
            self._start, self._data = offset, self._read_at(offset, max(want, 4096))
        got = self._data[offset - self._start : end - self._start]
        return got if len(got) == want else None


class StackModel:
    """Item count (over the whole stack), mark positions and whether anything was memoised.

    `apply` errs one way: it names an error only where both CPython unpicklers raise.
    """

    def __init__(self) -> None:
        self.items = 0
        self.marks: list[int] = []
        self.memoised = False

    def apply(self, op: pickletools.OpcodeInfo, arg: bytes) -> str | None:
        """Apply an opcode's stack effect; return why the unpicklers raise, or None."""
        name = op.name
        if name == "PROTO" and arg[0] > 5:
            return f"unsupported pickle protocol {arg[0]}"
        if name in _GETS and not self.memoised:
            return "a memo lookup before anything was memoised"
        if name in _PUTS:
            self.memoised = True
        if name == "MEMOIZE":
            self.memoised = True
        if name == "MARK":
            self.marks.append(self.items)
            return None
        if name == "POP":
            return self._pop()
        before = op.stack_before
        if pickletools.markobject in before:
            if not self.marks:
                return f"{name} without a MARK"
            mark = self.marks.pop()
            below = before.index(pickletools.markobject)
            if mark < below:
                return f"{name}: stack underflow"
            self.items = mark - below + len(op.stack_after)
            return None
        if self.items < len(before):
            return f"{name}: stack underflow"
        self.items += len(op.stack_after) - len(before)
        return None

    def _pop(self) -> str | None:
        # Both unpicklers: POP on an empty segment drops the last mark instead.
        if self.marks and self.marks[-1] == self.items:
            self.marks.pop()
        elif self.items:
            self.items -= 1
        else:
            return "POP: stack underflow"
        return None


def raw_pickle_reading(
    head: bytes, *, size: int, read_at: Callable[[int, int], bytes]
) -> RawPickleReading:
    """Whether CPython's unpicklers, given these bytes as a pickle, stop at once.

    Args:
        head: The data's first bytes (at least what is at hand; more is read through `read_at`).
        size: The data's full size.
        read_at: `read_at(offset, n)` returns up to `n` bytes at `offset` of the data.

    Returns:
        `stops=True` only when both unpicklers raise before any import, call or result.
    """
    data = _Window(head, size, read_at)
    stack = StackModel()
    pos = 0
    for _ in range(MAX_OPS):
        if pos >= size:
            return RawPickleReading(True, "the data ends (EOFError)", pos)
        code = data.get(pos, 1)
        if code is None:
            return RawPickleReading(False, "bytes that could not be read back", pos)
        op = _OPCODES.get(code[0])
        if op is None:
            return RawPickleReading(True, f"byte 0x{code[0]:02x} is no pickle opcode", pos)
        if op.name in _READS_ON:
            return RawPickleReading(False, f"it reaches {op.name}", pos)
        end = _argument_end(data, pos + 1, op)
        if isinstance(end, str):
            return RawPickleReading(end != _UNKNOWN, f"{op.name}: {end}", pos)
        arg = data.get(pos + 1, min(end - pos - 1, 8)) or b"\0"
        error = stack.apply(op, arg)
        if error is not None:
            return RawPickleReading(True, error, pos)
        pos = end
    return RawPickleReading(False, f"more than {MAX_OPS} opcodes are accepted", pos)


_UNKNOWN = "an argument that could not be read back"
_PAST_END = "its argument runs past the end of the data"


def _argument_end(data: _Window, at: int, op: pickletools.OpcodeInfo) -> int | str:
    """Offset just past the opcode's argument, or why the unpicklers raise (or _UNKNOWN)."""
    arg = op.arg
    if arg is None:
        return at
    if arg.n >= 0:
        return at + arg.n if at + arg.n <= data.size else _PAST_END
    prefix = _LENGTH_PREFIX.get(arg.n)
    if prefix is not None:
        raw = data.get(at, prefix)
        if raw is None:
            return _UNKNOWN
        if len(raw) < prefix:
            return _PAST_END
        length = int.from_bytes(raw, "little", signed=arg.n == pickletools.TAKEN_FROM_ARGUMENT4)
        if length < 0:
            return "a negative length"
        end = at + prefix + length
        return end if end <= data.size else _PAST_END
    end = at
    for _ in range(2 if arg.name == "stringnl_noescape_pair" else 1):
        line = data.get(end, MAX_LINE)
        if line is None:
            return _UNKNOWN
        newline = line.find(b"\n")
        if newline < 0:
            return _PAST_END if end + len(line) >= data.size else _UNKNOWN
        end += newline + 1
    return end
