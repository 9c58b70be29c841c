"""A forward-only protobuf wire reader over a scan stream: fields in, payloads skipped, not kept."""

from __future__ import annotations

from collections.abc import Iterator

from verifier.scanners.interface import ScanStream

#: Deepest nesting of messages followed (ONNX subgraphs, TensorFlow functions).
MAX_DEPTH = 64
_SKIP_CHUNK = 1 << 22
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class ProtobufError(Exception):
    """The bytes are not a well-formed protobuf message."""


class WireReader:
    """Reads tags and values in order; a field's payload is read, descended into, or skipped."""

    def __init__(self, stream: ScanStream) -> None:
        self._stream = stream

    def tell(self) -> int:
        return self._stream.tell()

    def _byte(self) -> int:
        data = self._stream.read(1)
        if not data:
            raise ProtobufError(f"truncated at offset {self.tell()}")
        return data[0]

    def varint(self) -> int:
        value = shift = 0
        for _ in range(10):
            byte = self._byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise ProtobufError(f"varint longer than 10 bytes at offset {self.tell()}")

    def skip(self, n: int) -> None:
        while n > 0:
            step = self._stream.skip(min(n, _SKIP_CHUNK))
            if step == 0:
                raise ProtobufError(f"truncated at offset {self.tell()}")
            n -= step

    def read(self, n: int) -> bytes:
        data = self._stream.read(n)
        if len(data) != n:
            raise ProtobufError(f"truncated at offset {self.tell()}")
        return data

    def fields(self, end: int) -> Iterator[tuple[int, int, int]]:
        """(field number, wire type, value) up to `end`; for LENGTH fields the value is the length.

        A LENGTH field's payload starts at `tell()` when it is yielded; whatever the caller does
        not consume is skipped before the next field.
        """
        while self.tell() < end:
            tag = self.varint()
            field, wire = tag >> 3, tag & 7
            if field == 0:
                raise ProtobufError(f"field number 0 at offset {self.tell()}")
            if wire == VARINT:
                yield field, wire, self.varint()
            elif wire == FIXED64:
                self.skip(8)
                yield field, wire, 0
            elif wire == FIXED32:
                self.skip(4)
                yield field, wire, 0
            elif wire == LENGTH:
                length = self.varint()
                start = self.tell()
                if start + length > end:
                    raise ProtobufError(f"field {field} runs past its message at offset {start}")
                yield field, wire, length
                consumed = self.tell() - start
                if consumed < length:
                    self.skip(length - consumed)
            else:
                raise ProtobufError(f"wire type {wire} at offset {self.tell()}")
            if self.tell() > end:
                raise ProtobufError(f"field {field} runs past its message")

    def string(self, length: int, *, limit: int = 1 << 16) -> str:
        """A string field's payload (longer ones are cut to `limit` after reading past them)."""
        data = self.read(min(length, limit))
        if length > limit:
            self.skip(length - limit)
        return data.decode("utf-8", "replace")
