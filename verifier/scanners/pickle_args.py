"""Newline-terminated pickle arguments (INT, LONG, FLOAT) read the way CPython's unpicklers do.

Two unpicklers load pickles: the C one (`Modules/_pickle.c`, what `pickle.load` uses) and the
Python one (`Lib/pickle.py`, `pickle._Unpickler`, which some tools subclass). They disagree:

- INT: C calls `strtol(s, &end, 0)` (leading whitespace, a sign, `0x` hex, a leading `0` for
  octal) and accepts it when it stops at the newline or at a NUL; otherwise (overflow, or
  Python syntax such as `0o7` or `1_000`) it falls back to `int(s, 0)` on the NUL-terminated
  buffer. Python calls `int(line, 0)`. Both treat exactly `00` and `01` as False and True.
- LONG: one trailing `L` is dropped, then `int(s, 0)` (C stops at a NUL).
- FLOAT: C's `PyOS_string_to_double` must stop at the newline or a NUL; Python calls
  `float(line)` (whitespace and underscores allowed).

The scanner takes the union: a spelling either unpickler accepts is a number.
"""

from __future__ import annotations

import re

# strtol(s, &end, 0) as C reads it, then the newline or a NUL (after which C reads nothing).
_C_INT = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))(?:\x00.*)?", re.S
)


def _python_int(text: bytes) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def _python_float(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def int_argument(value: bytes) -> int | None:
    """The value of an INT argument (the line without its newline); None if neither parses."""
    if value in (b"00", b"01"):
        return int(value == b"01")
    match = _C_INT.fullmatch(value)
    if match is not None:
        sign, hex_digits, octal, decimal = match.groups()
        if hex_digits is not None:
            number = int(hex_digits, 16)
        elif octal is not None:
            number = int(octal, 8)
        else:
            number = int(decimal)
        return -number if sign == b"-" else number
    c_string = value.split(b"\x00", 1)[0]
    python = _python_int(value)
    return python if python is not None else _python_int(c_string)


def long_argument(value: bytes) -> int | None:
    """The value of a LONG argument (the line without its newline); None if neither parses."""
    for text in (value, value.split(b"\x00", 1)[0]):
        number = _python_int(text.removesuffix(b"L"))
        if number is not None:
            return number
    return None


def float_argument_valid(value: bytes) -> bool:
    """Whether either unpickler parses a FLOAT argument (the line without its newline)."""
    return _python_float(value) or _python_float(value.split(b"\x00", 1)[0])


#: A number's line cut short by the end of a window, as either unpickler could still accept it:
#: whitespace, one token of digits, signs, radix prefixes, underscores, exponents, inf/nan or
#: an `L`, whitespace, and after a NUL anything at all (the C unpickler stops reading there).
NUMERIC_PREFIX = re.compile(rb"[ \t\n\v\f\r]*[0-9A-Za-z_.+\-]*[ \t\n\v\f\r]*(?:\x00.*)?", re.S)
