"""HDF5 root-group attributes, read by offsets without h5py: enough to find a Keras model config.

Only the structures h5py and Keras write for root attributes are read: superblock versions 0 to
3, object headers 1 and 2 with their continuation blocks, compact attribute messages (1 to 3),
fixed-length and variable-length strings (the latter from the global heap). Anything else that
stands between the root group and its attributes (dense attribute storage, shared messages) is
an `Hdf5Error`: the caller fails closed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Where a superblock may start (after a user block of these sizes).
SUPERBLOCK_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
#: Largest object header chunk, global heap collection or attribute read.
MAX_BLOCK = 64 << 20
#: Most header messages and continuation blocks followed.
MAX_MESSAGES = 1 << 16
MAX_CONTINUATIONS = 1024

_MSG_CONTINUATION = 0x10
_MSG_ATTRIBUTE = 0x0C
_MSG_ATTRIBUTE_INFO = 0x15
_SHARED = 0x02
_CLASS_STRING = 3
_CLASS_VLEN = 9

ReadAt = Callable[[int, int], bytes]


class Hdf5Error(Exception):
    """The file's structure is not one this reader understands (or is corrupt)."""


@dataclass(frozen=True)
class Attribute:
    """A root attribute: its name and, for scalar strings, its value."""

    name: str
    value: bytes | None


@dataclass(frozen=True)
class _Layout:
    base: int
    offset_size: int
    length_size: int


class _File:
    def __init__(self, read_at: ReadAt, size: int) -> None:
        self._read_at = read_at
        self.size = size

    def read(self, at: int, n: int, what: str) -> bytes:
        if at < 0 or n < 0 or n > MAX_BLOCK or at + n > self.size:
            raise Hdf5Error(f"{what} at {at} ({n} bytes) lies outside the file")
        data = self._read_at(at, n)
        if len(data) != n:
            raise Hdf5Error(f"{what} at {at} could not be read")
        return data


def _uint(data: bytes, at: int, size: int, what: str) -> int:
    if size not in (1, 2, 4, 8) or at + size > len(data):
        raise Hdf5Error(f"{what} is truncated")
    return int.from_bytes(data[at : at + size], "little")


def root_attributes(read_at: ReadAt, size: int) -> list[Attribute]:
    """The root group's attributes, in header order.

    Raises:
        Hdf5Error: no superblock, or a structure outside what this reader understands.
    """
    file = _File(read_at, size)
    try:
        layout, root = _superblock(file)
        return list(_attributes(file, layout, root))
    except (IndexError, struct.error) as exc:
        # Hostile lengths that slice past a block: a corrupt structure, never a crash.
        raise Hdf5Error(f"structure is truncated or corrupt ({exc})") from None


def _superblock(file: _File) -> tuple[_Layout, int]:
    for at in SUPERBLOCK_OFFSETS:
        if at + 8 <= file.size and file.read(at, 8, "signature") == SIGNATURE:
            break
    else:
        raise Hdf5Error("no HDF5 superblock")
    head = file.read(at, min(file.size - at, 200), "superblock")
    if len(head) < 48:
        raise Hdf5Error("superblock is truncated")
    version = head[8]
    if version in (0, 1):
        offset_size, length_size = head[13], head[14]
        pos = 24 if version == 0 else 28
    elif version in (2, 3):
        offset_size, length_size = head[9], head[10]
        pos = 12
    else:
        raise Hdf5Error(f"superblock version {version} is not supported")
    if offset_size not in (4, 8) or length_size not in (4, 8):
        raise Hdf5Error(f"offset size {offset_size} / length size {length_size} not supported")
    base = _uint(head, pos, offset_size, "base address")
    if version in (0, 1):
        # base, free space, end of file, driver info, then the root symbol table entry:
        # link name offset, object header address.
        root = _uint(head, pos + 5 * offset_size, offset_size, "root group address")
    else:
        # base, superblock extension, end of file, root object header.
        root = _uint(head, pos + 3 * offset_size, offset_size, "root group address")
    return _Layout(base, offset_size, length_size), base + root


def _messages(file: _File, layout: _Layout, address: int) -> Iterator[tuple[int, int, bytes]]:
    """(type, flags, data) of every message in an object header, continuations included."""
    if file.read(address, 4, "object header") == b"OHDR":
        yield from _messages_v2(file, layout, address)
    else:
        yield from _messages_v1(file, layout, address)


def _messages_v1(file: _File, layout: _Layout, address: int) -> Iterator[tuple[int, int, bytes]]:
    prefix = file.read(address, 16, "object header")
    if prefix[0] != 1:
        raise Hdf5Error(f"object header version {prefix[0]} is not supported")
    count = _uint(prefix, 2, 2, "message count")
    blocks = [(address + 16, _uint(prefix, 8, 4, "header size"))]
    seen = 0
    while blocks:
        if len(blocks) > MAX_CONTINUATIONS:
            raise Hdf5Error("too many object header continuations")
        start, length = blocks.pop(0)
        data = file.read(start, length, "object header block")
        pos = 0
        while pos + 8 <= len(data) and seen < count:
            kind, size, flags = struct.unpack_from("<HHB", data, pos)
            body = data[pos + 8 : pos + 8 + size]
            if len(body) != size:
                raise Hdf5Error("header message runs past its block")
            seen += 1
            if kind == _MSG_CONTINUATION:
                blocks.append(_continuation(body, layout))
            yield kind, flags, body
            pos += 8 + size


def _messages_v2(file: _File, layout: _Layout, address: int) -> Iterator[tuple[int, int, bytes]]:
    head = file.read(address, 6, "object header")
    if head[4] != 2:
        raise Hdf5Error(f"object header version {head[4]} is not supported")
    flags = head[5]
    pos = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 0x03)
    length = _uint(file.read(address + pos, width, "chunk size"), 0, width, "chunk size")
    blocks = [(address + pos + width, length)]
    order = 2 if flags & 0x04 else 0
    total = 0
    first = True
    while blocks:
        if len(blocks) > MAX_CONTINUATIONS:
            raise Hdf5Error("too many object header continuations")
        start, size = blocks.pop(0)
        if not first:  # a continuation block: "OCHK", messages, checksum
            if file.read(start, 4, "continuation block") != b"OCHK":
                raise Hdf5Error("continuation block without its signature")
            start, size = start + 4, size - 8
        first = False
        data = file.read(start, size, "object header chunk")
        pos = 0
        while pos + 4 + order <= len(data):
            kind, msize, mflags = struct.unpack_from("<BHB", data, pos)
            body = data[pos + 4 + order : pos + 4 + order + msize]
            if len(body) != msize:
                raise Hdf5Error("header message runs past its chunk")
            total += 1
            if total > MAX_MESSAGES:
                raise Hdf5Error("too many header messages")
            if kind == _MSG_CONTINUATION:
                blocks.append(_continuation(body, layout))
            yield kind, mflags, body
            pos += 4 + order + msize


def _continuation(body: bytes, layout: _Layout) -> tuple[int, int]:
    offset = _uint(body, 0, layout.offset_size, "continuation offset")
    length = _uint(body, layout.offset_size, layout.length_size, "continuation length")
    return layout.base + offset, length


def _attributes(file: _File, layout: _Layout, address: int) -> Iterator[Attribute]:
    undefined = (1 << (8 * layout.offset_size)) - 1
    for kind, flags, body in _messages(file, layout, address):
        if kind == _MSG_ATTRIBUTE_INFO:
            pos = 2 + (2 if body[1:2] and body[1] & 0x01 else 0)
            heap = _uint(body, pos, layout.offset_size, "attribute heap address")
            if heap != undefined:
                raise Hdf5Error("attributes are stored densely (fractal heap), not supported")
        elif kind == _MSG_ATTRIBUTE:
            if flags & _SHARED:
                raise Hdf5Error("shared attribute messages are not supported")
            yield _attribute(file, layout, body)


def _attribute(file: _File, layout: _Layout, body: bytes) -> Attribute:
    if len(body) < 8:
        raise Hdf5Error("attribute message is truncated")
    version = body[0]
    name_size, type_size, space_size = struct.unpack_from("<HHH", body, 2)
    if version == 1:
        pos = 8

        def padded(n: int) -> int:
            return (n + 7) & ~7
    elif version in (2, 3):
        if body[1] & 0x03:
            raise Hdf5Error("attribute with a shared datatype or dataspace is not supported")
        pos = 8 if version == 2 else 9

        def padded(n: int) -> int:
            return n
    else:
        raise Hdf5Error(f"attribute message version {version} is not supported")
    raw_name = body[pos : pos + name_size]
    name = raw_name.split(b"\x00", 1)[0].decode("utf-8", "replace")
    pos += padded(name_size)
    datatype = body[pos : pos + type_size]
    pos += padded(type_size)
    dataspace = body[pos : pos + space_size]
    pos += padded(space_size)
    if len(datatype) != type_size or len(dataspace) != space_size:
        raise Hdf5Error(f"attribute {name!r} is truncated")
    return Attribute(name, _string_value(file, layout, datatype, dataspace, body[pos:]))


def _elements(dataspace: bytes, layout: _Layout) -> int:
    if len(dataspace) < 4:
        raise Hdf5Error("dataspace is truncated")
    version, rank, flags = dataspace[0], dataspace[1], dataspace[2]
    if version == 1:
        pos = 8
    elif version == 2:
        if dataspace[3] == 2:
            return 0
        pos = 4
    else:
        raise Hdf5Error(f"dataspace version {version} is not supported")
    count = 1
    for i in range(rank):
        count *= _uint(dataspace, pos + i * layout.length_size, layout.length_size, "dimension")
    del flags
    return count


def _string_value(
    file: _File, layout: _Layout, datatype: bytes, dataspace: bytes, data: bytes
) -> bytes | None:
    """A scalar (or one-element) string's bytes; None for any other type or shape."""
    if len(datatype) < 8:
        raise Hdf5Error("datatype is truncated")
    kind = datatype[0] & 0x0F
    size = _uint(datatype, 4, 4, "datatype size")
    if kind not in (_CLASS_STRING, _CLASS_VLEN) or _elements(dataspace, layout) != 1:
        return None
    if kind == _CLASS_STRING:
        if len(data) < size:
            raise Hdf5Error("string attribute is truncated")
        return data[:size].rstrip(b"\x00" if datatype[1] & 0x0F != 2 else b" ")
    if datatype[1] & 0x0F != 1:  # a vlen sequence, not a string
        return None
    length = _uint(data, 0, 4, "string length")
    collection = _uint(data, 4, layout.offset_size, "global heap address")
    index = _uint(data, 4 + layout.offset_size, 4, "global heap index")
    return _global_heap_object(file, layout, layout.base + collection, index)[:length]


def _global_heap_object(file: _File, layout: _Layout, address: int, index: int) -> bytes:
    header = file.read(address, 8 + layout.length_size, "global heap")
    if header[:4] != b"GCOL" or header[4] != 1:
        raise Hdf5Error("global heap collection without its signature")
    size = _uint(header, 8, layout.length_size, "global heap size")
    data = file.read(address, size, "global heap collection")
    pos = 8 + layout.length_size
    while pos + 8 + layout.length_size <= len(data):
        obj_index = _uint(data, pos, 2, "heap object index")
        obj_size = _uint(data, pos + 8, layout.length_size, "heap object size")
        start = pos + 8 + layout.length_size
        if obj_index == 0:
            break
        if obj_index == index:
            if start + obj_size > len(data):
                raise Hdf5Error("global heap object runs past its collection")
            return data[start : start + obj_size]
        pos = start + ((obj_size + 7) & ~7)
    raise Hdf5Error(f"global heap object {index} not found")
