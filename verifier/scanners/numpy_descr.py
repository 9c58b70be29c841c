"""A `.npy` header's `descr`, interpreted as `numpy.lib.format` would, without importing numpy.

numpy reads the header dictionary with `ast.literal_eval` and turns `descr` into a dtype with
`descr_to_dtype`: a string goes to `numpy.dtype(str)`, a tuple is `(base, shape)`, anything
else is iterated as fields `(name, descr)` or `(name, descr, shape)`. When the dtype holds
Python objects anywhere (`dtype.hasobject`), `numpy.load` unpickles the array's data. This
module answers the same question structurally: OBJECT, PLAIN, or UNKNOWN when the scanner
cannot tell (a spelling it does not know, a shape that is not a shape, a dict), which the
scanner refuses rather than guesses.
"""

from __future__ import annotations

import enum
import re


class DescrKind(enum.Enum):
    """What an array with this descr holds."""

    PLAIN = "plain"  # numbers, strings, bytes, dates: numpy reads the data as raw bytes
    OBJECT = "object"  # Python objects somewhere: numpy.load unpickles the data
    UNKNOWN = "unknown"  # the scanner cannot tell


#: Deepest nesting of sub-arrays and structured fields interpreted.
MAX_DEPTH = 32

# One type in a numpy type string: optional byte order, then a character code with an
# optional size and optional datetime unit ('<f4', '|S10', '<M8[ns]', 'O8'), or a type name.
_CODE = re.compile(r"[<>|=]?([A-Za-z?])(\d*)(\[\d*[A-Za-z]+\])?")
_PLAIN_CODES = frozenset("?bBhHiIlLqQpPnNueEfdgFDGSaUVmMc")
_OBJECT_CODES = frozenset("OT")  # object, and NumPy 2's StringDType (which also pickles)
_PLAIN_NAMES = frozenset(
    {
        "bool", "bool_", "bool8", "byte", "bytes", "bytes_", "bytes0", "cdouble", "cfloat",
        "clongdouble", "clongfloat", "complex", "complex_", "complex64", "complex128",
        "complex192", "complex256", "csingle", "datetime64", "double", "float", "float_",
        "float16", "float32", "float64", "float96", "float128", "half", "int", "int_", "int0",
        "int8", "int16", "int32", "int64", "intc", "intp", "long", "longcomplex",
        "longdouble", "longfloat", "longlong", "short", "single", "singlecomplex", "str",
        "str_", "str0", "string_", "timedelta64", "ubyte", "uint", "uint0", "uint8", "uint16",
        "uint32", "uint64", "uintc", "uintp", "ulong", "ulonglong", "unicode", "unicode_",
        "ushort", "void", "void0",
    }
)  # fmt: skip
# A sub-array shape written before a type in a comma string: '(2,3)O', '2O'.
_SHAPE_PREFIX = re.compile(r"\s*(\(\s*(?:\d+\s*(?:,\s*\d+\s*)*,?)?\s*\)|\d+)?\s*(.*?)\s*", re.S)


def _combine(kinds: list[DescrKind]) -> DescrKind:
    if DescrKind.OBJECT in kinds:
        return DescrKind.OBJECT
    if DescrKind.UNKNOWN in kinds:
        return DescrKind.UNKNOWN
    return DescrKind.PLAIN


def _one_type(text: str) -> DescrKind:
    """One type, no commas: a character code or a name."""
    if "obj" in text.lower():
        return DescrKind.OBJECT  # 'object', 'object_', 'Object0', 'object0' in any numpy
    match = _CODE.fullmatch(text)
    if match is not None:
        code = match.group(1)
        if code in _OBJECT_CODES:
            return DescrKind.OBJECT
        if code in _PLAIN_CODES:
            return DescrKind.PLAIN
        return DescrKind.UNKNOWN
    name = re.fullmatch(r"([a-z_0-9]+)(\[\d*[A-Za-z]+\])?", text)
    if name is not None and name.group(1) in _PLAIN_NAMES:
        return DescrKind.PLAIN
    return DescrKind.UNKNOWN


def _split_commas(text: str) -> list[str] | None:
    """A comma string's parts, commas inside a shape's parentheses kept; None if unbalanced."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return None
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth:
        return None
    parts.append(text[start:])
    return parts


def type_string_kind(text: str) -> DescrKind:
    """What `numpy.dtype(text)` holds, for a type string ('<f4', '|O', 'i4,(2,)O', 'object')."""
    if "," not in text and "(" not in text and not text[:1].isdigit():
        return _one_type(text)
    parts = _split_commas(text)
    if parts is None:
        return DescrKind.UNKNOWN
    if len(parts) > 1 and parts[-1].strip() == "":
        parts = parts[:-1]  # numpy allows one trailing comma
    kinds = []
    for part in parts:
        match = _SHAPE_PREFIX.fullmatch(part)
        if match is None or not match.group(2):
            return DescrKind.UNKNOWN
        kinds.append(_one_type(match.group(2)))
    return _combine(kinds)


def _is_shape(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, tuple) and all(
        isinstance(d, int) and not isinstance(d, bool) for d in value
    )


def descr_kind(descr: object, *, depth: int = 0) -> DescrKind:
    """What an array whose header gives `descr` holds, following numpy's `descr_to_dtype`."""
    if depth > MAX_DEPTH:
        return DescrKind.UNKNOWN
    if isinstance(descr, str):
        return type_string_kind(descr)
    if isinstance(descr, tuple):
        # (base, shape): numpy reads descr[0] and descr[1] and ignores the rest.
        if len(descr) < 2 or not _is_shape(descr[1]):
            return DescrKind.UNKNOWN
        return descr_kind(descr[0], depth=depth + 1)
    if not isinstance(descr, list) or not descr:
        return DescrKind.UNKNOWN  # numpy iterates a dict's keys; no saver writes one
    kinds = []
    for field in descr:
        # numpy unpacks each field by length: a 2- or 3-character string unpacks too.
        if not isinstance(field, list | tuple | str) or len(field) not in (2, 3):
            return DescrKind.UNKNOWN
        name, sub = field[0], field[1]
        if not isinstance(name, str | tuple):
            return DescrKind.UNKNOWN
        if len(field) == 3 and not _is_shape(field[2]):
            return DescrKind.UNKNOWN
        kinds.append(descr_kind(sub, depth=depth + 1))
    return _combine(kinds)
