"""The tensors a fingerprint reads: safetensors and GGUF files, memory-mapped, decoded by rows.

Both readers map their files read-only and hand out `StoredTensor`s: a name, a dtype, a shape
(rows, columns as numpy orders them) and where the bytes lie. Nothing is copied until a block of
rows (or a few rows, or a few columns) is decoded to float32, so memory stays flat whatever the
model size. Every offset, size and shape is checked against the file before a view is made: a
malformed file is a `FingerprintError`, never a read outside the map.

Decoded: F32, F16, BF16 and F64, and GGUF's Q8_0 (blocks of 32 int8 values sharing one float16
scale, as ggml dequantises them). Other dtypes are listed as skipped by the fingerprint.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from verifier.bounded_json import JsonLimitError, check_shape
from verifier.scanners.safetensors import HEADER_CAP, HEADER_SHAPE

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_PLAIN = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2"}
_BLOCKS = {"Q8_0": (32, 34)}
DECODED_DTYPES = frozenset(_PLAIN) | frozenset(_BLOCKS)
"""Dtypes the fingerprint reads."""

CHUNK_ELEMENTS = 1 << 18
"""Values decoded at a time when a whole matrix is read (a megabyte of float32: the block is
projected and squared while it is in the processor's cache)."""


NOT_FINITE_ENERGY = 2.0**32
"""A unit's sum of squares at or past which it is treated as holding a value that is not
finite: a float16 infinity or NaN decoded by `decoded_chunks` lands at 2**16 or more."""


class FingerprintError(Exception):
    """The weights cannot be fingerprinted (format, dtype or architecture not comparable)."""


class StoredTensor(NamedTuple):
    """One tensor's place in a mapped file: `nbytes` bytes of `data` from `offset`.

    A tuple, not a frozen dataclass: a header may list a hundred thousand tensors.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    data: memoryview
    offset: int
    nbytes: int


class MappedWeights:
    """Tensors of one model's files, memory-mapped read-only (a context manager)."""

    def __init__(self) -> None:
        self._maps: list[mmap.mmap] = []
        self._views: list[memoryview] = []
        self.tensors: dict[str, StoredTensor] = {}

    def _map(self, path: Path) -> tuple[memoryview, int]:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size == 0:
                raise FingerprintError(f"{path.name}: empty file")
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._maps.append(mapped)
        view = memoryview(mapped)
        self._views.append(view)
        return view, len(mapped)

    def _add(self, tensor: StoredTensor, *, path: Path) -> None:
        if tensor.name in self.tensors:
            raise FingerprintError(f"{path.name}: tensor {tensor.name!r} appears twice")
        self.tensors[tensor.name] = tensor

    def close(self) -> None:
        """Release the memory maps."""
        self.tensors.clear()
        for view in self._views:
            view.release()
        self._views.clear()
        for mapped in self._maps:
            # An array may still refer to the map: the collector unmaps it later.
            with contextlib.suppress(BufferError):
                mapped.close()
        self._maps.clear()

    def __enter__(self) -> MappedWeights:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SafetensorsWeights(MappedWeights):
    """Tensors of one or more safetensors files (the shards of one model)."""

    def __init__(self, paths: Iterable[Path]) -> None:
        super().__init__()
        try:
            for path in sorted(paths):
                self._open(path)
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path) -> None:
        data, size = self._map(path)
        if size < 8:
            raise FingerprintError(f"{path.name}: not a safetensors file")
        (header_size,) = struct.unpack_from("<Q", data, 0)
        if header_size > min(size - 8, HEADER_CAP):
            raise FingerprintError(f"{path.name}: header runs past the end of the file or cap")
        raw = bytes(data[8 : 8 + header_size])
        try:
            check_shape(raw, HEADER_SHAPE)
            header = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # JsonLimitError is a ValueError
            kind = "past the JSON caps" if isinstance(exc, JsonLimitError) else "not JSON"
            raise FingerprintError(f"{path.name}: header is {kind}") from exc
        if not isinstance(header, dict):
            raise FingerprintError(f"{path.name}: header is not a JSON object")
        base = 8 + header_size
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, end, shape, dtype = _entry(entry, name=name, path=path)
            if not start <= end <= size - base:
                raise FingerprintError(f"{path.name}: tensor {name!r} lies outside the file")
            self._add(StoredTensor(name, dtype, shape, data, base + start, end - start), path=path)


def _entry(entry: object, *, name: str, path: Path) -> tuple[int, int, tuple[int, ...], str]:
    """(start, end, shape, dtype) of one header entry, every field checked for its type."""
    if not isinstance(entry, dict):
        raise FingerprintError(f"{path.name}: tensor {name!r} is malformed")
    offsets, shape, dtype = entry.get("data_offsets"), entry.get("shape"), entry.get("dtype")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and isinstance(shape, list)
        and isinstance(dtype, str)
        and all(type(v) is int and v >= 0 for v in (*offsets, *shape))
    ):
        raise FingerprintError(f"{path.name}: tensor {name!r} is malformed")
    return offsets[0], offsets[1], tuple(shape), dtype


class _MappedStream:
    """A `ScanStream` over a memory map, so the scanner's own GGUF table parser reads it."""

    def __init__(self, data: memoryview, size: int) -> None:
        self._data, self._size, self._pos = data, size, 0

    @property
    def size(self) -> int:
        return self._size

    def read(self, n: int) -> bytes:
        chunk = bytes(self._data[self._pos : self._pos + max(0, n)])
        self._pos += len(chunk)
        return chunk

    def skip(self, n: int) -> int:
        step = max(0, min(n, self._size - self._pos))
        self._pos += step
        return step

    def tell(self) -> int:
        return self._pos

    def read_at(self, offset: int, n: int) -> bytes:
        return bytes(self._data[offset : offset + n]) if offset >= 0 and n > 0 else b""


class GgufWeights(MappedWeights):
    """Tensors of one model's GGUF files (one, or a split's shards), with the table the GGUF
    scanner parses and checks.

    ggml lists dimensions fastest first: a matrix `[ne0, ne1]` is `ne1` rows of `ne0` values,
    the layout PyTorch's (rows, columns) has, so `token_embd.weight` is (vocabulary, hidden).
    """

    def __init__(self, paths: Iterable[Path]) -> None:
        super().__init__()
        try:
            for path in sorted(paths):
                self._open(path)
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path) -> None:
        # The GGUF scanner's table reader, loaded only for GGUF weights.
        from verifier.scanners.gguf import GgufFormatError, read_tensor_table

        data, size = self._map(path)
        try:
            table = read_tensor_table(_MappedStream(data, size))
        except GgufFormatError as exc:
            raise FingerprintError(f"{path.name}: {exc}") from exc
        for entry in table.tensors:
            start = table.data_start + entry.offset
            if not 0 <= start <= start + entry.nbytes <= size:
                raise FingerprintError(f"{path.name}: tensor {entry.name!r} lies outside the file")
            shape = tuple(reversed(entry.dims))
            self._add(
                StoredTensor(entry.name, entry.type_name, shape, data, start, entry.nbytes),
                path=path,
            )


def stored(tensor: StoredTensor) -> NDArray[Any]:
    """The 2-D tensor as stored, a view on the map: (rows, columns) of its dtype, or for a
    block type (rows, blocks per row, bytes per block) of uint8.

    Raises:
        FingerprintError: The dtype is not decoded, or the bytes do not match the shape.
    """
    import numpy as np

    if len(tensor.shape) != 2:
        raise FingerprintError(f"{tensor.name}: not a matrix")
    rows, cols = tensor.shape
    if tensor.dtype in _PLAIN:
        code = _PLAIN[tensor.dtype]
        if tensor.nbytes != rows * cols * np.dtype(code).itemsize:
            raise FingerprintError(f"{tensor.name}: data size does not match its shape")
        array = np.frombuffer(tensor.data, dtype=code, count=rows * cols, offset=tensor.offset)
        return array.reshape(rows, cols)
    if tensor.dtype in _BLOCKS:
        block, block_bytes = _BLOCKS[tensor.dtype]
        if cols % block or tensor.nbytes != rows * (cols // block) * block_bytes:
            raise FingerprintError(f"{tensor.name}: data size does not match its shape")
        array = np.frombuffer(
            tensor.data, dtype=np.uint8, count=tensor.nbytes, offset=tensor.offset
        )
        return array.reshape(rows, cols // block, block_bytes)
    raise FingerprintError(f"{tensor.name}: dtype {tensor.dtype} is not fingerprinted")


def widen(block: NDArray[Any], dtype: str) -> NDArray[np.float32]:
    """Stored rows (a slice of `stored`) as float32 (n, columns)."""
    import numpy as np

    if dtype == "BF16":
        return (block.astype(np.uint32) << 16).view(np.float32)
    if dtype == "Q8_0":
        # ggml: value = scale (float16, the block's first two bytes) x int8 quant.
        scales = np.ascontiguousarray(block[..., :2]).view("<f2").astype(np.float32)
        quants = np.ascontiguousarray(block[..., 2:]).view(np.int8).astype(np.float32)
        return (scales * quants).reshape(block.shape[0], -1)
    return block.astype(np.float32, copy=False)  # rows and columns are gathered copies already


def decoded_chunks(tensor: StoredTensor) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """(first row, the rows as float32) in blocks of about `CHUNK_ELEMENTS` values.

    For choosing units, not for their profiles: a float32 matrix is one block, a view on the
    map (no copy); other dtypes are decoded a block at a time, so each block is projected and
    squared while it is in the processor's cache. A block is only valid until the next one is
    asked for: float16 and bfloat16 are decoded into buffers reused for every block (allocating
    a megabyte per block, and numpy's float16 conversion, made this pass five times slower).

    float16 is decoded by moving its bits into a float32 and scaling by 2**112, exact for every
    finite value (zeros and subnormals included); an infinity or NaN comes out as a finite value
    of at least 2**16 (finite float16 values are below 65504), whose square alone reaches
    `NOT_FINITE_ENERGY`: the unit holding it is chosen first (`fingerprint._unit_scores`), its
    profile read again exactly (`rows`, `columns`), and the fingerprint refused.
    """
    import numpy as np

    raw = stored(tensor)
    if tensor.dtype == "F32":
        # Nothing to decode and no copy: one block, so each product is one call.
        yield 0, raw
        return
    step = max(1, CHUNK_ELEMENTS // max(1, tensor.shape[1]))
    if tensor.dtype not in ("F16", "BF16"):
        for start in range(0, raw.shape[0], step):
            yield start, widen(raw[start : start + step], tensor.dtype)
        return
    buffer = np.empty(step * tensor.shape[1], dtype=np.int32)
    for start in range(0, raw.shape[0], step):
        stored_bits = raw[start : start + step].view(np.int16)
        block = buffer[: stored_bits.size].reshape(stored_bits.shape)
        np.copyto(block, stored_bits, casting="unsafe")  # sign-extended
        if tensor.dtype == "BF16":
            block <<= 16  # bfloat16 is the top half of a float32
            yield start, block.view(np.float32)
            continue
        # Sign-extended, shifted by 13: the magnitude lands in bits 13 to 27, the sign in bits
        # 28 to 31; clearing bits 28 to 30 leaves a float32 with float16's exponent unbiased.
        block <<= 13
        block &= np.int32(-0x70000001)  # 0x8FFFFFFF
        values = block.view(np.float32)
        values *= np.float32(2.0**112)
        yield start, values


def rows(tensor: StoredTensor, ids: NDArray[np.int64]) -> NDArray[np.float32]:
    """Selected rows (only their pages are touched)."""
    return widen(stored(tensor)[ids], tensor.dtype)


def columns(tensor: StoredTensor, ids: NDArray[np.int64]) -> NDArray[np.float32]:
    """Selected columns of every row, gathered without decoding the rest of the matrix.

    Gathered with `np.take` along the columns, which copies each row's picks in one loop:
    the same values as indexing `raw[:, ids]`, in about 40% of its time (numpy 2.4).
    """
    import numpy as np

    raw = stored(tensor)
    if tensor.dtype not in _BLOCKS:
        return widen(np.take(raw, ids, axis=1), tensor.dtype)
    block = _BLOCKS[tensor.dtype][0]
    needed, where = np.unique(ids // block, return_inverse=True)
    gathered = np.take(raw, needed, axis=1)
    decoded = widen(gathered, tensor.dtype).reshape(raw.shape[0], len(needed), block)
    return np.ascontiguousarray(decoded[:, where, ids % block])
