"""The pickle opcode walk: every opcode read once, a symbolic stack and memo, nothing executed."""

from __future__ import annotations

# CPython's own table of Python 2 names, which its unpicklers apply to imports in
# protocols 0 to 2 (`fix_imports`); the walk must read a name as the loader will.
import _compat_pickle
import codecs
import contextlib
import math
import pickletools
import re
import struct
import warnings
from dataclasses import dataclass, field

from verifier.scanners import pickle_holding as holding
from verifier.scanners.interface import ScanStream
from verifier.scanners.pickle_args import int_argument, long_argument
from verifier.scanners.pickle_calls import CallModel, model_call
from verifier.scanners.pickle_dtype import DtypeStates, is_dtype_call, ndarray_call_problem
from verifier.scanners.pickle_state import build_problem, call_problem, lookup_problem
from verifier.scanners.pickle_values import (
    MARK,
    OTHER,
    Bytes,
    Called,
    Dict,
    Global,
    List,
    Str,
)

#: Longest string or bytes argument kept for name resolution; longer ones are skipped unread.
MAX_KEPT_STRING = 1 << 16
#: Longest newline-terminated argument (protocol 0 text opcodes).
MAX_LINE = 1 << 16
#: Deepest stack the walk tracks before it reports a bomb.
MAX_STACK = 1 << 20
#: Most memo entries tracked.
MAX_MEMO = 1 << 22
#: Deepest nesting of pickles inside pickles (pickle.loads of embedded bytes, object arrays).
MAX_NESTING = 8
#: Imports (GLOBAL, STACK_GLOBAL, INST, OBJ) walked per pickle; real checkpoints make dozens.
MAX_IMPORTS = 10_000
#: Highest protocol an unpickler accepts.
HIGHEST_PROTOCOL = 5

#: Classes whose BUILD makes joblib's unpickler read raw array data from the stream.
JOBLIB_WRAPPERS = frozenset({"joblib.numpy_pickle.NumpyArrayWrapper"})
#: How a pickled dtype is rebuilt: `numpy.dtype(name, align, copy)` then its state, or (for
#: NumPy 2's variable-width strings, which hold objects) StringDType from its keywords.
DTYPE_CONSTRUCTORS = frozenset({"numpy.dtype"})
STRING_DTYPE_CONSTRUCTORS = frozenset(
    {
        "numpy._core._internal._convert_to_stringdtype_kwargs",
        "numpy.core._internal._convert_to_stringdtype_kwargs",
        "numpy.dtypes.StringDType",
    }
)
#: Callables that unpickle bytes given to them: embedded pickles are analysed too.
NESTED_LOADERS = frozenset(
    {
        "pickle.loads",
        "_pickle.loads",
        "pickle.load",
        "_pickle.load",
        "dill.loads",
        "cloudpickle.loads",
        "torch.load",
        "joblib.load",
        "numpy.load",
        "pickle._loads",
        "torch.storage._load_from_bytes",
    }
)
#: Deepest chain of calls made through such reconstructors that is followed.
MAX_INNER_CALLS = 8
#: Largest embedded blob kept to scan (bytes given to a nested loader); larger ones are reported.
MAX_NESTED_BYTES = 64 << 20
#: Total embedded bytes kept per pickle.
MAX_NESTED_TOTAL = 256 << 20


class PickleFormatError(Exception):
    """The opcode stream is malformed, truncated or past the walk's limits."""


@dataclass
class PickleAnalysis:
    """What one walk over a pickle stream saw."""

    imports: list[tuple[str, str, int]] = field(default_factory=list)
    unresolved: list[int] = field(default_factory=list)
    ext_codes: list[int] = field(default_factory=list)
    nested: list[int] = field(default_factory=list)  # offsets of calls that load embedded pickles
    # (offset, bytes) given to a nested loader: scanned by content by the caller.
    blobs: list[tuple[int, bytes]] = field(default_factory=list)
    # offsets of nested loader calls whose input could not be kept (too large, or computed).
    opaque_nested: list[int] = field(default_factory=list)
    # (callee, why, offset): calls that hand arguments to a callable the walk cannot read.
    argument_problems: list[tuple[str, str, int]] = field(default_factory=list)
    # (why, offset): BUILD, APPEND(S), ADDITEMS or a call that may call a value of the pickle
    # through an attribute it gave an object (pickle_state.py).
    state_calls: list[tuple[str, int]] = field(default_factory=list)
    # (why, offset): a numpy dtype state NumPy never writes (pickle_dtype.py).
    numpy_memory: list[tuple[str, int]] = field(default_factory=list)
    joblib_arrays: int = 0
    error: str | None = None
    error_offset: int | None = None
    protocol: int = 0
    opcodes: int = 0
    stopped: bool = False


class BytesStream:
    """A ScanStream over bytes already in memory (an embedded pickle)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def size(self) -> int:
        return len(self._data)

    def tell(self) -> int:
        return self._pos

    def read(self, n: int) -> bytes:
        out = self._data[self._pos : self._pos + max(0, n)]
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        step = max(0, min(n, len(self._data) - self._pos))
        self._pos += step
        return step

    def read_at(self, offset: int, n: int) -> bytes:
        return self._data[offset : offset + n] if offset >= 0 else b""


_STR_OPS = frozenset(
    {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE"}
) | {"BINUNICODE8"}
_BYTES_OPS = frozenset({"BINBYTES", "SHORT_BINBYTES", "BINBYTES8"})
_INT_OPS = frozenset({"BININT", "BININT1", "BININT2", "LONG1", "INT", "LONG"})
_PUSH_OTHER = frozenset({"FLOAT", "BINFLOAT", "LONG4", "BYTEARRAY8", "NEXT_BUFFER", "PERSID"})
_CONSTANTS: dict[str, object] = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_TUPLE_N = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
_CODE2OP = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
_DTYPE_NAME = re.compile(r"^[<>|=]?([a-zA-Z])(\d*)$")
_LENGTH_FORMATS = {
    pickletools.TAKEN_FROM_ARGUMENT1: "<B",
    pickletools.TAKEN_FROM_ARGUMENT4: "<i",
    pickletools.TAKEN_FROM_ARGUMENT4U: "<I",
    pickletools.TAKEN_FROM_ARGUMENT8U: "<Q",
}


class Walker:
    """One pass over a stream from its position to STOP; raises PickleFormatError."""

    def __init__(
        self,
        stream: ScanStream,
        analysis: PickleAnalysis,
        *,
        limit: int | None = None,
        joblib: bool = True,
        depth: int = 0,
    ) -> None:
        self.stream = stream
        self.analysis = analysis
        self.limit = limit  # bytes this pickle may use (a zip member's size), None for no limit
        self.joblib = joblib  # whether joblib's unpickler (which reads array data) may load it
        self.depth = depth
        self.start = stream.tell()
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}
        self._kept = 0
        self.proto = 0  # the unpickler's current protocol: fix_imports applies below 3
        self.dtypes = DtypeStates()

    # --- reading ---------------------------------------------------------------------------

    def _need(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) < n:
            raise PickleFormatError("truncated pickle stream")
        return data

    def _line(self) -> bytes:
        out = bytearray()
        while True:
            ch = self.stream.read(1)
            if not ch and out:
                # pickle._Unpickler (joblib's) takes the file's last bytes as a line and drops
                # the last one as if it were the newline; what it names is then imported.
                return bytes(out[:-1])
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
        if n > self.stream.size - self.stream.tell():
            raise PickleFormatError(f"argument of {n} bytes runs past the end of the file")
        if keep and n <= MAX_KEPT_STRING:
            return self._need(n)
        if self.stream.skip(n) < n:
            raise PickleFormatError("truncated pickle stream in a binary argument")
        return None

    def _arg(self, op: pickletools.OpcodeInfo) -> object:
        """Read the opcode's argument; return what name resolution may need."""
        arg = op.arg
        if arg is None:
            return None
        if op.name in ("GLOBAL", "INST"):
            return (self._line(), self._line())
        if arg.n == pickletools.UP_TO_NEWLINE:
            return self._line()
        if arg.n >= 0:
            return self._need(arg.n)
        fmt = _LENGTH_FORMATS.get(arg.n)
        if fmt is None:
            raise PickleFormatError(f"opcode {op.name} has an argument the scanner cannot read")
        (length,) = struct.unpack(fmt, self._need(struct.calcsize(fmt)))
        keep = op.name in _STR_OPS or op.name in _BYTES_OPS or op.name == "LONG1"
        # Bytes about to be given to a nested loader are kept (bounded) to be scanned.
        large = keep and length > MAX_KEPT_STRING and op.name != "LONG1"
        room = length <= MAX_NESTED_BYTES and self._kept + length <= MAX_NESTED_TOTAL
        if large and room and self._loader_pending():
            self._kept += length
            return self._counted_keep_large(length)
        return self._counted(length, keep=keep)

    def _loader_pending(self) -> bool:
        return any(
            isinstance(item, Global) and item.full in NESTED_LOADERS for item in self.stack[-6:]
        )

    def _counted_keep_large(self, n: int) -> bytes:
        if self.limit is not None and self.stream.tell() - self.start + n > self.limit:
            raise PickleFormatError("argument length runs past the end of the pickle")
        return self._need(n)

    # --- the stack -------------------------------------------------------------------------

    def _pop(self) -> object:
        if not self.stack:
            raise PickleFormatError("stack underflow")
        return self.stack.pop()

    def _pop_to_mark(self) -> list[object]:
        items: list[object] = []
        while True:
            item = self._pop()
            if item is MARK:
                items.reverse()
                return items
            items.append(item)

    def _push(self, value: object) -> None:
        if len(self.stack) >= MAX_STACK:
            raise PickleFormatError("stack deeper than the scanner's limit (a pickle bomb?)")
        self.stack.append(value)

    def _top(self) -> object:
        if not self.stack:
            raise PickleFormatError("stack underflow")
        return self.stack[-1]

    # --- the walk --------------------------------------------------------------------------

    def run(self) -> None:
        """Walk until STOP."""
        while True:
            offset = self.stream.tell()
            code = self.stream.read(1)
            if not code:
                raise PickleFormatError("pickle stream ends before STOP")
            op = _CODE2OP.get(code)
            if op is None:
                raise PickleFormatError(f"unknown opcode 0x{code[0]:02x}")
            arg = self._arg(op)
            self.analysis.opcodes += 1
            if op.name == "STOP":
                self._pop()
                self.analysis.stopped = True
                return
            self._apply(op.name, arg, offset)

    def _apply(self, name: str, arg: object, offset: int) -> None:
        if name in _STR_OPS:
            self._push(_string_value(name, arg))
        elif name in _BYTES_OPS:
            self._push(Bytes(arg) if isinstance(arg, bytes) else OTHER)
        elif name in _INT_OPS:
            self._push(_int_value(name, arg))
        elif name in _CONSTANTS:
            self._push(_CONSTANTS[name])
        elif name in _PUSH_OTHER:
            self._push(OTHER)
        elif name in ("EMPTY_LIST", "EMPTY_SET"):
            self._push(List())
        elif name == "MARK":
            self._push(MARK)
        elif name in ("PROTO", "FRAME", "READONLY_BUFFER"):
            self._meta(name, arg)
        elif name in _MEMO_PUT:
            self._memo_put(name, arg)
        elif name in _MEMO_GET:
            index = self._memo_index(name, arg)
            if index not in self.memo:
                raise PickleFormatError(f"memo key {index} read before it was written")
            self.dtypes.handed_out(self.memo[index])
            self._push(self.memo[index])
        else:
            self._apply_structure(name, arg, offset)

    def _meta(self, name: str, arg: object) -> None:
        if name == "PROTO" and isinstance(arg, bytes):
            if arg[0] > HIGHEST_PROTOCOL:
                raise PickleFormatError(f"unsupported pickle protocol {arg[0]}")
            self.analysis.protocol = max(self.analysis.protocol, arg[0])
            self.proto = arg[0]

    def _apply_structure(self, name: str, arg: object, offset: int) -> None:
        if name in ("GLOBAL", "INST"):
            assert isinstance(arg, tuple)
            module, attr = (part.decode("utf-8", "replace") for part in arg)
            ref = self._record_global(module, attr, offset)
            if name == "INST":
                self._push(self._call(ref, tuple(self._pop_to_mark()), offset))
            else:
                self._push(ref)
        elif name == "STACK_GLOBAL":
            attr_v, module_v = self._pop(), self._pop()
            if isinstance(module_v, Str) and isinstance(attr_v, Str):
                self._push(self._record_global(module_v.value, attr_v.value, offset))
            else:
                self.analysis.unresolved.append(offset)
                self._push(OTHER)
        elif name in ("REDUCE", "NEWOBJ"):
            args = self._pop()
            self._push(self._call(self._pop(), args, offset))
        elif name == "NEWOBJ_EX":
            kwargs = self._pop()
            args = self._pop()
            self._state_call(holding.keywords_problem(kwargs), offset)
            self._push(self._call(self._pop(), args, offset, keywords=kwargs))
        elif name == "OBJ":
            items = self._pop_to_mark()
            if not items:
                raise PickleFormatError("OBJ without a class")
            self._push(self._call(items[0], tuple(items[1:]), offset))
        elif name == "BUILD":
            self._build(self._pop(), offset)
        else:
            self._apply_container(name, offset)

    def _apply_container(self, name: str, offset: int) -> None:
        if name in _TUPLE_N:
            items = [self._pop() for _ in range(_TUPLE_N[name])]
            holding.seal_all(items)
            self._push(tuple(reversed(items)))
        elif name == "TUPLE":
            items = self._pop_to_mark()
            holding.seal_all(items)
            self._push(tuple(items))
        elif name == "DICT":
            items = self._pop_to_mark()
            built = Dict()
            for key, value in zip(items[::2], items[1::2], strict=False):
                built.set(key, value)
            holding.filled(built, items)
            self._push(built)
        elif name == "EMPTY_DICT":
            self._push(Dict())
        elif name in ("LIST", "FROZENSET"):
            self._push(holding.made(self._pop_to_mark()))
        elif name in ("APPENDS", "ADDITEMS"):
            items = self._pop_to_mark()
            self._state_call(holding.put(self._top(), items, name), offset)
            self._state_call(lookup_problem(self._top(), name), offset)
        elif name == "POP_MARK":
            self._pop_to_mark()
        elif name == "SETITEMS":
            items = self._pop_to_mark()
            target = self._top()
            self._state_call(holding.put(target, items, name), offset)
            if isinstance(target, Dict):
                for key, value in zip(items[::2], items[1::2], strict=False):
                    target.set(key, value)
        elif name == "SETITEM":
            value, key = self._pop(), self._pop()
            target = self._top()
            self._state_call(holding.put(target, [key, value], name), offset)
            if isinstance(target, Dict):
                target.set(key, value)
        elif name == "APPEND":
            item = self._pop()
            self._state_call(holding.put(self._top(), [item], name), offset)
            self._state_call(lookup_problem(self._top(), name), offset)
        elif name == "POP":
            self._pop()
        elif name == "DUP":
            self.dtypes.handed_out(self._top())
            self._push(self._top())
        elif name == "BINPERSID":
            self._pop()
            self._push(OTHER)
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.analysis.ext_codes.append(offset)
            self._push(OTHER)
        else:
            raise PickleFormatError(f"opcode {name} is not handled")

    def _record_global(self, module: str, name: str, offset: int) -> Global:
        if len(self.analysis.imports) >= MAX_IMPORTS:  # a pickle of 200,000 imports is an attack
            raise PickleFormatError(f"more than {MAX_IMPORTS} imports: the walk stops here")
        if self.proto < 3:
            module, name = _python2_name(module, name)
        self.analysis.imports.append((module, name, offset))
        return Global(module, name)

    def _state_call(self, problem: str | None, offset: int) -> None:
        if problem is not None:
            self.analysis.state_calls.append((problem, offset))

    def _call(
        self, callee: object, args: object, offset: int, *, depth: int = 0, keywords: object = None
    ) -> object:
        """`callee(*args, **keywords)`; `keywords` only from NEWOBJ_EX (`cls.__new__`)."""
        self._state_call(call_problem(callee, args), offset)
        memory = ndarray_call_problem(callee, args, keywords=keywords is not None)
        if memory is not None:
            self.analysis.numpy_memory.append((memory, offset))
        if isinstance(callee, Global) and callee.full in NESTED_LOADERS:
            self._nested(args, offset)
        if isinstance(callee, Global):
            model = model_call(callee, args)
            if model is not None:
                self._follow(callee, model, offset, depth=depth)
        if isinstance(callee, Global) and callee.full == "_codecs.encode":
            # How protocols 0 to 2 pickle bytes: encode(text, 'latin1') gives the bytes back.
            parts = _as_tuple(args)
            text = parts[0] if len(parts) == 2 and isinstance(parts[0], Str) else None
            codec = parts[1] if len(parts) == 2 and isinstance(parts[1], Str) else None
            if text is not None and codec is not None and _is_latin1(codec.value):
                with contextlib.suppress(UnicodeEncodeError):
                    return Bytes(text.value.encode("latin-1"))
        return Called(callee, args, holds=holding.holds(args))

    def _follow(self, callee: Global, model: CallModel, offset: int, *, depth: int) -> None:
        """What a reconstructor does with its arguments: the calls it makes are calls too
        (their bytes scanned, their arguments checked); what cannot be read is reported."""
        if model.problem is not None:
            self.analysis.argument_problems.append((callee.full, model.problem, offset))
        if model.calls and depth >= MAX_INNER_CALLS:
            raise PickleFormatError("reconstructors nested deeper than the scanner's limit")
        for inner, inner_args in model.calls:
            self._call(inner, inner_args, offset, depth=depth + 1)

    def _nested(self, args: object, offset: int) -> None:
        """Keep the bytes a nested loader is given, to be scanned by content by the caller."""
        candidates = list(args) if isinstance(args, tuple) else []
        candidates += [a for c in candidates if isinstance(c, Called) for a in _as_tuple(c.args)]
        blobs = [value.value for value in candidates if isinstance(value, Bytes)]
        self.analysis.nested.append(offset)
        if not blobs:
            self.analysis.opaque_nested.append(offset)
        for blob in blobs:
            self.analysis.blobs.append((offset, blob))

    def _build(self, state: object, offset: int) -> None:
        target = self._top()
        self._state_call(build_problem(target, state), offset)
        holding.seal(state)
        if not isinstance(target, Called):
            return
        if is_dtype_call(target) and not target.built:
            problem = self.dtypes.build(target, state)
            if problem is not None:
                self.analysis.numpy_memory.append((problem, offset))
        target.state = state
        target.built = True
        if self.joblib and _is_joblib_wrapper(target):
            self._joblib_array(state)

    def _joblib_array(self, state: object) -> None:
        """Skip (or analyse) the array data joblib writes right after a wrapper's BUILD."""
        fields = state.items if isinstance(state, Dict) else {}
        shape = fields.get("shape")
        dtype = fields.get("dtype")
        if not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise PickleFormatError("joblib array wrapper without a readable shape")
        itemsize, has_object = _dtype_size(dtype)
        self.analysis.joblib_arrays += 1
        if has_object:
            # joblib pickles object arrays with pickle.dump right here: a pickle in the pickle.
            if self.depth + 1 > MAX_NESTING:
                raise PickleFormatError("pickles nested deeper than the scanner's limit")
            Walker(self.stream, self.analysis, joblib=False, depth=self.depth + 1).run()
            return
        if isinstance(state, Dict) and state.partial:
            raise PickleFormatError("joblib array wrapper state has keys the scanner cannot read")
        # joblib's NumpyArrayWrapper.read_array: when the attribute is present and not None
        # (0 included), one byte gives the padding length, then that many bytes are skipped.
        if fields.get("numpy_array_alignment_bytes") is not None:
            self._counted(self._need(1)[0], keep=False)
        self._counted(math.prod(shape) * itemsize, keep=False)

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


def _python2_name(module: str, name: str) -> tuple[str, str]:
    """The name CPython's unpicklers import for `module.name` in protocols 0 to 2."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _is_latin1(codec: str) -> bool:
    return codec.replace("-", "").replace("_", "").lower() in ("latin1", "iso88591")


def _as_tuple(value: object) -> tuple[object, ...]:
    return value if isinstance(value, tuple) else ()


def _string_value(name: str, arg: object) -> object:
    if not isinstance(arg, bytes):
        return OTHER  # too long to be a name: it was skipped
    if name == "STRING":
        raw = arg.strip()
        if len(raw) >= 2 and raw[:1] == raw[-1:] and raw[:1] in (b"'", b'"'):
            raw = raw[1:-1]
        else:
            raise PickleFormatError("STRING argument is not quoted")
        if b"\\" not in raw:
            return Str(raw.decode("latin-1"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                return Str(codecs.escape_decode(raw)[0].decode("latin-1"))
            except ValueError:
                raise PickleFormatError("STRING argument has an invalid escape") from None
    if name in ("BINSTRING", "SHORT_BINSTRING"):
        return Str(arg.decode("latin-1"))
    if name == "UNICODE":
        return Str(arg.decode("raw-unicode-escape"))
    try:
        return Str(arg.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        raise PickleFormatError("string argument is not valid UTF-8") from None


def _int_value(name: str, arg: object) -> object:
    if not isinstance(arg, bytes):
        return OTHER
    if name in ("INT", "LONG"):
        # As CPython's unpicklers read them: `int(x, 0)`, C's strtol, a NUL ending the line.
        value = int_argument(arg) if name == "INT" else long_argument(arg)
        if value is None:
            raise PickleFormatError(f"{name} argument is not a number")
        return (arg == b"01") if arg in (b"00", b"01") else value
    if name == "LONG1":
        return int.from_bytes(arg, "little", signed=True)
    fmt = {"BININT": "<i", "BININT1": "<B", "BININT2": "<H"}.get(name)
    if fmt is None:
        return OTHER
    return int(struct.unpack(fmt, arg)[0])


def _is_joblib_wrapper(obj: Called) -> bool:
    callee = obj.callee
    if isinstance(callee, Global) and callee.full == "copyreg._reconstructor":
        args = _as_tuple(obj.args)
        callee = args[0] if args else None
    return isinstance(callee, Global) and callee.full in JOBLIB_WRAPPERS


def _dtype_size(dtype: object) -> tuple[int, bool]:
    """Item size and whether the dtype holds objects, from a pickled `numpy.dtype(...)` call.

    Raises:
        PickleFormatError: the dtype is not one the scanner can size.
    """
    if not isinstance(dtype, Called) or not isinstance(dtype.callee, Global):
        raise PickleFormatError("joblib array wrapper without a readable dtype")
    if dtype.callee.full in STRING_DTYPE_CONSTRUCTORS:
        return 0, True  # StringDType holds Python objects: joblib pickles the array inline
    if dtype.callee.full not in DTYPE_CONSTRUCTORS:
        raise PickleFormatError(f"joblib array's dtype is built by {dtype.callee.full}")
    args = _as_tuple(dtype.args)
    name = args[0].value if args and isinstance(args[0], Str) else ""
    state = _as_tuple(dtype.state)
    elsize = state[5] if len(state) > 5 and isinstance(state[5], int) else -1
    flags = state[7] if len(state) > 7 and isinstance(state[7], int) else 0
    match = _DTYPE_NAME.match(name)
    if match is None:
        raise PickleFormatError(f"joblib array has a dtype the scanner cannot size: {name!r}")
    kind, digits = match.groups()
    has_object = kind == "O" or bool(flags & 1)
    if elsize > 0:
        return elsize, has_object
    if not digits:
        raise PickleFormatError(f"joblib array has a dtype the scanner cannot size: {name!r}")
    return int(digits), has_object


def analyse_pickle(stream: ScanStream, *, limit: int | None = None) -> PickleAnalysis:
    """Walk one pickle from the stream's position to its STOP opcode, executing nothing.

    Errors in the stream are recorded in the analysis, after everything seen before them.
    """
    analysis = PickleAnalysis()
    try:
        Walker(stream, analysis, limit=limit).run()
    except PickleFormatError as exc:
        analysis.error = str(exc)
        analysis.error_offset = stream.tell()
    except RecursionError:
        analysis.error = "structure nested deeper than the scanner's limit"
        analysis.error_offset = stream.tell()
    return analysis
