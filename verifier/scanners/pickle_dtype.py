"""NumPy memory layouts in pickles: dtype states as NumPy writes them, no array over raw bytes.

A pickled dtype is `numpy.dtype(name, align, copy)` followed by a BUILD whose state NumPy's
`dtype.__setstate__` copies into the descriptor: the byte order, a sub-array `(base, shape)`,
the field names and the fields dictionary `{name: (dtype, offset[, title])}`, the item size,
the alignment and the **flags**. For structured dtypes NumPy 2 takes those fields and flags as
written, without checking them against each other. The flags say whether the dtype holds
Python objects (`NPY_ITEM_REFCOUNT`, `NPY_LIST_PICKLE`, `NPY_NEEDS_INIT`): a state that clears
them on a dtype with an object field makes NumPy read raw bytes of the file as `PyObject *`
pointers (`numpy.core.numeric._frombuffer`, array states, scalars), and a field whose offset
runs past the item size reads past each element. Both crash the loading process at best; a
crafted pointer is a known path to code execution. Every name such a pickle imports is
allowlisted, so only the state tells.

So a dtype's state is accepted only when it is one NumPy writes, checked structurally and
nothing executed: a known version and length, a simple type name, sizes that agree with the
name, fields whose dtypes were themselves accepted and which lie inside the item, and flags
that say "holds objects" exactly when some field or base does. A dtype built after the pickle
already handed it out (read back from the memo before its BUILD) is refused too: an array
made with it would see its descriptor change under it.

The other way to the same place is `numpy.ndarray(shape, dtype, buffer)`: NumPy builds an
array over the buffer's bytes even for a dtype that holds objects (`frombuffer` refuses that;
the constructor does not). NumPy's pickles never call `numpy.ndarray` (arrays are rebuilt with
`_reconstruct(ndarray, ...)` and a state, or `_frombuffer`), so a call with a buffer, or with
keywords the walk does not read, is refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from verifier.scanners.pickle_values import Called, Dict, Global, Str

#: The constructor NumPy's `dtype.__reduce__` names.
DTYPE_CONSTRUCTOR = "numpy.dtype"
#: NumPy's dtype classes (`numpy.dtypes.Float64DType`, ...): allowlisted, and a BUILD on an
#: instance reaches the same `__setstate__`. No saver writes one; it is refused.
DTYPE_CLASS_PREFIX = "numpy.dtypes."

# NumPy's descriptor flags (numpy/_core/include/numpy/ndarraytypes.h).
ITEM_REFCOUNT = 0x01
LIST_PICKLE = 0x02
ITEM_IS_POINTER = 0x04
NEEDS_INIT = 0x08
NEEDS_PYAPI = 0x10
#: What NumPy sets on every dtype that holds objects (a field or a base of type object).
OBJECT_FLAGS = ITEM_REFCOUNT | LIST_PICKLE | NEEDS_INIT | NEEDS_PYAPI
#: What must be clear on a dtype that holds none (NumPy would treat bytes as pointers).
POINTER_FLAGS = ITEM_REFCOUNT | LIST_PICKLE | ITEM_IS_POINTER
#: Every flag NumPy defines; anything above is not a NumPy state.
KNOWN_FLAGS = 0xFF
#: The array class: pickles name it (as `_reconstruct`'s argument), calling it with a buffer
#: makes an array over the file's bytes.
NDARRAY = "numpy.ndarray"
#: Positional arguments of `numpy.ndarray(shape, dtype, buffer, offset, strides, order)` before
#: the buffer.
NDARRAY_UNBUFFERED = 2
#: Largest item size accepted (NumPy's own limit is the C int).
MAX_ITEMSIZE = (1 << 31) - 1
#: Deepest dtype-inside-dtype nesting followed.
MAX_DEPTH = 32

_NAME = re.compile(r"^([a-zA-Z])(\d+)$")
_BUILTIN_KINDS = frozenset("biufcmMO")
_FLEXIBLE_KINDS = frozenset("SUV")
_BYTE_ORDERS = frozenset({"<", ">", "|", "="})


@dataclass(frozen=True)
class DtypeFacts:
    """What the walk knows of an accepted dtype."""

    itemsize: int
    has_object: bool


class DtypeProblem(Exception):
    """A dtype state NumPy does not write (the message says which part)."""


def is_dtype_call(value: object) -> bool:
    """Whether `value` is a dtype a call made (`numpy.dtype(...)` or a `numpy.dtypes` class)."""
    if not isinstance(value, Called) or not isinstance(value.callee, Global):
        return False
    full = value.callee.full
    return full == DTYPE_CONSTRUCTOR or (
        full.startswith(DTYPE_CLASS_PREFIX) and full.endswith("DType")
    )


class DtypeStates:
    """The dtypes one pickle builds: each state checked at its BUILD, facts kept for reuse."""

    def __init__(self) -> None:
        # id -> (the object, kept alive so the id stays unique; its facts)
        self._facts: dict[int, tuple[Called, DtypeFacts]] = {}
        self._handed_out: set[int] = set()

    def handed_out(self, value: object) -> None:
        """Record that `value` was read back (memo, DUP) before any BUILD on it."""
        if is_dtype_call(value) and isinstance(value, Called) and not value.built:
            self._handed_out.add(id(value))

    def build(self, target: Called, state: object) -> str | None:
        """Check a BUILD of `state` on the dtype `target`; why NumPy never writes it, or None."""
        try:
            if id(target) in self._handed_out:
                raise DtypeProblem("the dtype was used before its state was set")
            facts = self._from_state(target, state, depth=0)
        except DtypeProblem as exc:
            return f"a dtype state NumPy never writes: {exc}"
        self._facts[id(target)] = (target, facts)
        return None

    def facts(self, value: object, depth: int = 0) -> DtypeFacts:
        """Facts of a dtype used inside another one.

        Raises:
            DtypeProblem: it is not a dtype whose layout the walk can tell.
        """
        if depth > MAX_DEPTH:
            raise DtypeProblem("dtypes nested deeper than the scanner's limit")
        if not is_dtype_call(value) or not isinstance(value, Called):
            raise DtypeProblem("a field or base is not a numpy.dtype(...) call")
        kept = self._facts.get(id(value))
        if kept is not None:
            return kept[1]
        if value.built:
            raise DtypeProblem("a field or base is a dtype whose state was refused")
        kind, size = _name(value)
        if kind not in _BUILTIN_KINDS and kind not in _FLEXIBLE_KINDS:
            raise DtypeProblem(f"a field or base has a type the scanner cannot size: {kind!r}")
        itemsize = size * 4 if kind == "U" else size
        # Read back from the memo later, then built: the facts here would go stale.
        self._handed_out.add(id(value))
        return DtypeFacts(itemsize, kind == "O")

    def _from_state(self, target: Called, state: object, *, depth: int) -> DtypeFacts:
        kind, size = _name(target)
        if not isinstance(state, tuple) or not state:
            raise DtypeProblem("the state is not a tuple")
        version = state[0]
        if not (version == 3 and len(state) == 8) and not (version == 4 and len(state) == 9):
            raise DtypeProblem("not a version 3 or 4 state of 8 or 9 items")
        order, sub, names, fields, elsize, alignment, flags = state[1:8]
        if not isinstance(order, Str) or order.value not in _BYTE_ORDERS:
            raise DtypeProblem("the byte order is not one of < > | =")
        if not _is_int(elsize) or not _is_int(alignment) or not _is_int(flags):
            raise DtypeProblem("item size, alignment or flags is not an integer")
        assert isinstance(elsize, int) and isinstance(alignment, int) and isinstance(flags, int)
        if flags < 0 or flags & ~KNOWN_FLAGS:
            raise DtypeProblem(f"flags {flags} are not NumPy's")
        if len(state) == 9 and not (state[8] is None or isinstance(state[8], (tuple, Dict))):
            raise DtypeProblem("the metadata is not a dictionary or a datetime unit")
        if kind in _BUILTIN_KINDS:
            if sub is not None or names is not None or fields is not None:
                raise DtypeProblem(f"a {kind!r} dtype with fields or a sub-array")
            if elsize != -1 or alignment != -1:
                raise DtypeProblem("a built-in type with an item size or alignment of its own")
            facts = DtypeFacts(size, kind == "O")
        elif kind in _FLEXIBLE_KINDS:
            facts = self._flexible(kind, size, state, depth=depth)
        else:
            raise DtypeProblem(f"type {kind!r} is not one NumPy pickles this way")
        if alignment != -1 and (alignment < 1 or alignment > 64 or alignment & (alignment - 1)):
            raise DtypeProblem(f"alignment {alignment} is not a power of two up to 64")
        if facts.has_object and flags & OBJECT_FLAGS != OBJECT_FLAGS:
            raise DtypeProblem(f"flags {flags} deny the objects the dtype holds")
        if not facts.has_object and flags & POINTER_FLAGS:
            raise DtypeProblem(f"flags {flags} claim objects in a dtype that holds none")
        return facts

    def _flexible(
        self, kind: str, size: int, state: tuple[object, ...], *, depth: int
    ) -> DtypeFacts:
        sub, names, fields, elsize = state[2], state[3], state[4], state[5]
        assert isinstance(elsize, int)
        itemsize = size * 4 if kind == "U" else size
        if elsize != itemsize:
            raise DtypeProblem(f"item size {elsize} disagrees with the type name {kind}{size}")
        if kind != "V":
            if sub is not None or names is not None or fields is not None:
                raise DtypeProblem(f"a {kind!r} dtype with fields or a sub-array")
            return DtypeFacts(itemsize, False)
        if sub is not None and (names is not None or fields is not None):
            raise DtypeProblem("both a sub-array and fields")
        if sub is not None:
            return self._subarray(sub, itemsize, depth=depth)
        if names is None and fields is None:
            return DtypeFacts(itemsize, False)
        return self._fields(names, fields, itemsize, depth=depth)

    def _subarray(self, sub: object, itemsize: int, *, depth: int) -> DtypeFacts:
        if not isinstance(sub, tuple) or len(sub) != 2:
            raise DtypeProblem("the sub-array is not (base, shape)")
        base = self.facts(sub[0], depth + 1)
        shape = sub[1] if isinstance(sub[1], tuple) else (sub[1],)
        if not shape or not all(_is_int(d) and isinstance(d, int) and d >= 0 for d in shape):
            raise DtypeProblem("the sub-array shape is not a tuple of sizes")
        count = math.prod(d for d in shape if isinstance(d, int))
        if count > MAX_ITEMSIZE or base.itemsize * count != itemsize:
            raise DtypeProblem("the sub-array does not fill the item exactly")
        return DtypeFacts(itemsize, base.has_object)

    def _fields(self, names: object, fields: object, itemsize: int, *, depth: int) -> DtypeFacts:
        if not isinstance(names, tuple) or not names:
            raise DtypeProblem("the field names are not a tuple of strings")
        if not all(isinstance(n, Str) for n in names):
            raise DtypeProblem("the field names are not a tuple of strings")
        if len({n.value for n in names if isinstance(n, Str)}) != len(names):
            raise DtypeProblem("a field name is repeated")
        if not isinstance(fields, Dict) or fields.partial:
            raise DtypeProblem("the fields are not a dictionary the scanner can read whole")
        declared = {n.value for n in names if isinstance(n, Str)}
        if not declared <= fields.items.keys():
            raise DtypeProblem("a named field is missing from the fields")
        has_object = False
        # Every entry is checked, titles included: NumPy answers `a[title]` from this dict.
        for key, entry in fields.items.items():
            if not isinstance(entry, tuple) or len(entry) not in (2, 3):
                raise DtypeProblem(f"field {key!r} is not (dtype, offset[, title])")
            offset = entry[1]
            if not _is_int(offset) or not isinstance(offset, int) or offset < 0:
                raise DtypeProblem(f"field {key!r} has no offset")
            if len(entry) == 3 and not (entry[2] is None or isinstance(entry[2], Str)):
                raise DtypeProblem(f"field {key!r} has a title that is not a string")
            inner = self.facts(entry[0], depth + 1)
            if offset + inner.itemsize > itemsize:
                raise DtypeProblem(f"field {key!r} runs past the end of the item")
            has_object = has_object or inner.has_object
        return DtypeFacts(itemsize, has_object)


def ndarray_call_problem(callee: object, args: object, *, keywords: bool) -> str | None:
    """Why a call of `numpy.ndarray` would make an array over the pickle's bytes; None if not."""
    if not isinstance(callee, Global) or callee.full != NDARRAY:
        return None
    if keywords:
        return "numpy.ndarray is called with keywords (a buffer among them, unseen)"
    if not isinstance(args, tuple) or len(args) > NDARRAY_UNBUFFERED:
        return "numpy.ndarray is called with a buffer: an array over the file's own bytes"
    return None


def _name(target: Called) -> tuple[str, int]:
    """The type character and size of `numpy.dtype(name, align, copy)` as NumPy pickles it."""
    if not isinstance(target.callee, Global) or target.callee.full != DTYPE_CONSTRUCTOR:
        raise DtypeProblem("the dtype is not made by numpy.dtype (no saver writes this)")
    args = target.args if isinstance(target.args, tuple) else ()
    if len(args) != 3 or not isinstance(args[0], Str):
        raise DtypeProblem("numpy.dtype is not called with (name, align, copy)")
    if args[1] not in (False, 0) or args[2] not in (True, 1):
        raise DtypeProblem("numpy.dtype is not called with align=False, copy=True")
    match = _NAME.match(args[0].value)
    if match is None:
        raise DtypeProblem(f"type name {args[0].value!r} is not one NumPy pickles")
    size = int(match.group(2))
    if size > MAX_ITEMSIZE:
        raise DtypeProblem("the item size is larger than NumPy allows")
    return match.group(1), size


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
