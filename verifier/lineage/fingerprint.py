"""Weight fingerprints: anchored-token profiles of every matrix, invariant to unit permutation.

A model's weights carry the random draw of the base they started from; fine-tuning, dtype changes,
quantisation and pruning move them only a little. What an adversary can change for free is the
*order* of hidden units (and of the residual dimensions): the model computes the same function.
The fingerprint therefore indexes nothing by unit position:

- Anchor tokens: a fixed set of token ids (rows of the input embedding `E`). Token ids cannot be
  permuted without changing the tokenizer, so they are the one index both models share.
- Embedding Gram: `E_S E_S^T` over the anchors, invariant to any permutation (indeed any rotation)
  of the residual dimensions.
- Unit profiles: for every other matrix with a dimension equal to the hidden size `d`, the anchors
  are pushed through it along that dimension, `P = E_S W^T`: one column per output unit, one row
  per anchor token. A residual permutation cancels in the product; a permutation of the matrix's
  own units only reorders the columns, which the comparison matches (see `compare.py`). At most
  `UNITS` units are kept per matrix, chosen by their weight norm (a content-based choice, so a
  permuted copy keeps the same units).

Tensors are read from safetensors files through a read-only memory map, one matrix at a time in
row chunks, so memory stays flat whatever the model size.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

FINGERPRINT_VERSION = 1
"""Bumped whenever the computation changes; fingerprints of different versions never compare."""

ANCHORS = 64
"""Anchor tokens per model."""

UNITS = 128
"""Units (output rows or columns) profiled per matrix, chosen by weight norm."""

MAX_MATRICES = 512
"""Matrices profiled per model; the rest are left out (and counted)."""

_CHUNK_ELEMENTS = 1 << 22
_EMBEDDING_NAME = re.compile(
    r"(embed_tokens|word_embeddings|wte|tok_embeddings|token_embd|embed_in)"
)
_OUTPUT_EMBEDDING_NAME = re.compile(r"(lm_head|embed_out|output\.weight$)")
_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2"}


class FingerprintError(Exception):
    """The weights cannot be fingerprinted (format, dtype or architecture not comparable)."""


@dataclass(frozen=True)
class UnitProfile:
    """Anchored profiles of one matrix's units.

    Attributes:
        name: Tensor name, with `@in`/`@out` for the orientation of a square matrix.
        profiles: float32 array (anchors x units), each column centred and of unit norm.
    """

    name: str
    profiles: NDArray[np.float32]


@dataclass(frozen=True)
class Fingerprint:
    """A model's weight fingerprint.

    Attributes:
        version: `FINGERPRINT_VERSION` it was computed with.
        hidden_size: The residual width `d`.
        anchor_ids: Token ids of the anchors, ascending.
        gram: Embedding Gram matrix over the anchors (anchors x anchors), float32.
        matrices: Unit profiles, one per profiled matrix.
        skipped: Names of 2-D tensors that could not be profiled (dtype or shape).
    """

    version: int
    hidden_size: int
    anchor_ids: tuple[int, ...]
    gram: NDArray[np.float32]
    matrices: tuple[UnitProfile, ...]
    skipped: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        """Serialise to a compact, self-describing byte string (JSON header, float16 data, zlib)."""
        import numpy as np

        header = {
            "version": self.version,
            "hidden_size": self.hidden_size,
            "anchor_ids": list(self.anchor_ids),
            "gram": list(self.gram.shape),
            "matrices": [[m.name, *m.profiles.shape] for m in self.matrices],
            "skipped": list(self.skipped),
        }
        head = json.dumps(header, separators=(",", ":")).encode()
        parts = [struct.pack("<I", len(head)), head, self.gram.astype("<f2").tobytes()]
        parts += [np.ascontiguousarray(m.profiles).astype("<f2").tobytes() for m in self.matrices]
        return zlib.compress(b"".join(parts), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> Fingerprint:
        """Parse what `to_bytes` wrote.

        Raises:
            FingerprintError: The bytes are not a fingerprint of this version.
        """
        import numpy as np

        try:
            raw = zlib.decompress(blob)
            (size,) = struct.unpack_from("<I", raw, 0)
            header = json.loads(raw[4 : 4 + size])
            if header["version"] != FINGERPRINT_VERSION:
                raise FingerprintError(f"fingerprint version {header['version']} is not supported")
            offset = 4 + size

            def take(rows: int, cols: int) -> NDArray[np.float32]:
                nonlocal offset
                count = rows * cols
                array = np.frombuffer(raw, dtype="<f2", count=count, offset=offset)
                offset += 2 * count
                return array.astype(np.float32).reshape(rows, cols)

            gram = take(*header["gram"])
            matrices = tuple(
                UnitProfile(name=str(name), profiles=take(int(rows), int(cols)))
                for name, rows, cols in header["matrices"]
            )
            if offset != len(raw):
                raise FingerprintError("fingerprint has trailing bytes")
            return cls(
                version=int(header["version"]),
                hidden_size=int(header["hidden_size"]),
                anchor_ids=tuple(int(i) for i in header["anchor_ids"]),
                gram=gram,
                matrices=matrices,
                skipped=tuple(str(s) for s in header["skipped"]),
            )
        except FingerprintError:
            raise
        except (zlib.error, struct.error, ValueError, KeyError, TypeError) as exc:
            raise FingerprintError(f"unreadable fingerprint: {exc}") from exc


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    view: memoryview


class SafetensorsWeights:
    """Tensors of one or more safetensors files, memory-mapped read-only."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self._maps: list[mmap.mmap] = []
        self._views: list[memoryview] = []
        self.tensors: dict[str, _Tensor] = {}
        for path in sorted(paths):
            self._open(path)

    def _open(self, path: Path) -> None:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if size < 8:
                raise FingerprintError(f"{path.name}: not a safetensors file")
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._maps.append(mapped)
        (header_size,) = struct.unpack_from("<Q", mapped, 0)
        if header_size > size - 8:
            raise FingerprintError(f"{path.name}: header runs past the end of the file")
        try:
            header = json.loads(mapped[8 : 8 + header_size])
        except ValueError as exc:
            raise FingerprintError(f"{path.name}: header is not JSON") from exc
        base = 8 + header_size
        data = memoryview(mapped)
        self._views.append(data)
        for name, entry in header.items():
            if name == "__metadata__" or not isinstance(entry, dict):
                continue
            try:
                start, end = (int(v) for v in entry["data_offsets"])
                shape = tuple(int(v) for v in entry["shape"])
                dtype = str(entry["dtype"])
            except (KeyError, TypeError, ValueError) as exc:
                raise FingerprintError(f"{path.name}: tensor {name!r} is malformed") from exc
            if not 0 <= start <= end <= size - base:
                raise FingerprintError(f"{path.name}: tensor {name!r} lies outside the file")
            self.tensors[str(name)] = _Tensor(
                str(name), dtype, shape, data[base + start : base + end]
            )

    def close(self) -> None:
        """Release the memory maps."""
        for tensor in self.tensors.values():
            tensor.view.release()
        self.tensors.clear()
        for view in self._views:
            view.release()
        self._views.clear()
        for mapped in self._maps:
            # An array may still refer to the map: the collector unmaps it later.
            with contextlib.suppress(BufferError):
                mapped.close()
        self._maps.clear()

    def __enter__(self) -> SafetensorsWeights:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raw(tensor: _Tensor) -> NDArray[Any]:
    """The stored 2-D array, a view on the memory map (nothing is copied)."""
    import numpy as np

    code = _DTYPES.get(tensor.dtype)
    if code is None:
        raise FingerprintError(f"{tensor.name}: dtype {tensor.dtype} is not fingerprinted")
    rows, cols = tensor.shape
    if len(tensor.view) != rows * cols * np.dtype(code).itemsize:
        raise FingerprintError(f"{tensor.name}: data size does not match its shape")
    return np.frombuffer(tensor.view, dtype=code).reshape(rows, cols)


def _widen(block: NDArray[Any], dtype: str) -> NDArray[np.float32]:
    """A block of stored values as float32 (bf16 widened by a 16-bit shift)."""
    import numpy as np

    if dtype == "BF16":
        return (block.astype(np.uint32) << 16).view(np.float32)
    return block.astype(np.float32)


def _chunks(tensor: _Tensor) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """(first row, float32 rows) in blocks of about `_CHUNK_ELEMENTS` values: flat memory."""
    raw = _raw(tensor)
    step = max(1, _CHUNK_ELEMENTS // max(1, raw.shape[1]))
    for start in range(0, raw.shape[0], step):
        yield start, _widen(raw[start : start + step], tensor.dtype)


def _rows(tensor: _Tensor, ids: Iterable[int]) -> NDArray[np.float32]:
    """Selected rows of a 2-D tensor (only their pages are touched)."""
    import numpy as np

    return _widen(_raw(tensor)[np.fromiter(ids, dtype=np.int64)], tensor.dtype)


def anchor_ids(vocab_size: int) -> tuple[int, ...]:
    """Anchor token ids for a vocabulary, stable when a few rows are added or removed.

    The stride comes from the largest power of two not above the vocabulary size, so resizing the
    embedding by less than that keeps the same anchors; ids start after the first few (often
    special) tokens.
    """
    floor = 1 << (max(vocab_size, 2).bit_length() - 1)
    stride = max(1, floor // (ANCHORS + 1))
    return tuple(i for i in (3 + stride * n for n in range(ANCHORS)) if i < vocab_size)


def _embedding(weights: SafetensorsWeights) -> _Tensor:
    candidates = [
        t
        for t in weights.tensors.values()
        if len(t.shape) == 2 and _EMBEDDING_NAME.search(t.name) and t.shape[0] > t.shape[1]
    ]
    if not candidates:
        raise FingerprintError("no input embedding found (architecture not comparable)")
    return max(candidates, key=lambda t: (t.shape[0], t.name))


def _column_norms(tensor: _Tensor) -> NDArray[np.float64]:
    import numpy as np

    total = np.zeros(tensor.shape[1], dtype=np.float64)
    for _, chunk in _chunks(tensor):
        total += np.einsum("ij,ij->j", chunk, chunk, dtype=np.float64)
    return total


def _row_norms(tensor: _Tensor) -> NDArray[np.float64]:
    import numpy as np

    parts = [np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64) for _, chunk in _chunks(tensor)]
    return np.concatenate(parts)


def _normalise(profiles: NDArray[np.float32]) -> NDArray[np.float32]:
    import numpy as np

    centred = profiles - profiles.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centred, axis=0, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(centred / norms, dtype=np.float32)


def _top_units(norms: NDArray[np.float64]) -> NDArray[np.int64]:
    import numpy as np

    count = min(UNITS, norms.shape[0])
    # Stable, content-based choice: the largest norms, in ascending index order for reading.
    chosen = np.argsort(-norms, kind="stable")[:count]
    return np.sort(chosen)


def _profile_rows(tensor: _Tensor, anchors: NDArray[np.float32]) -> UnitProfile:
    """Units are rows (the matrix reads the residual along its columns): P = E_S W_sel^T."""
    import numpy as np

    chosen = _top_units(_row_norms(tensor))
    selected = _rows(tensor, (int(i) for i in chosen))
    profiles = anchors @ selected.T
    return UnitProfile(tensor.name + "@in", _normalise(np.asarray(profiles, dtype=np.float32)))


def _profile_columns(tensor: _Tensor, anchors: NDArray[np.float32]) -> UnitProfile:
    """Units are columns (the matrix writes the residual along its rows): P = E_S W[:, sel]."""
    import numpy as np

    chosen = _top_units(_column_norms(tensor))
    profiles = np.zeros((anchors.shape[0], chosen.shape[0]), dtype=np.float32)
    for start, chunk in _chunks(tensor):
        profiles += anchors[:, start : start + chunk.shape[0]] @ chunk[:, chosen]
    return UnitProfile(tensor.name + "@out", _normalise(profiles))


def _matrices(weights: SafetensorsWeights, embedding: _Tensor) -> Iterator[_Tensor]:
    d = embedding.shape[1]
    for name in sorted(weights.tensors):
        tensor = weights.tensors[name]
        if tensor is embedding or len(tensor.shape) != 2 or d not in tensor.shape:
            continue
        yield tensor


def fingerprint_safetensors(paths: Iterable[Path]) -> Fingerprint:
    """Fingerprint the weights held in one model's safetensors files (all shards together).

    Raises:
        FingerprintError: No embedding, or nothing comparable in the files.
    """
    import numpy as np

    with SafetensorsWeights(paths) as weights:
        embedding = _embedding(weights)
        if embedding.dtype not in _DTYPES:
            raise FingerprintError(f"embedding dtype {embedding.dtype} is not fingerprinted")
        ids = anchor_ids(embedding.shape[0])
        anchors = _rows(embedding, ids).astype(np.float64)
        d = embedding.shape[1]
        centred = anchors - anchors.mean(axis=1, keepdims=True)
        gram = (centred @ centred.T).astype(np.float32)
        anchors32 = anchors.astype(np.float32)
        matrices: list[UnitProfile] = []
        skipped: list[str] = []
        for tensor in _matrices(weights, embedding):
            if len(matrices) >= MAX_MATRICES or tensor.dtype not in _DTYPES:
                skipped.append(tensor.name)
                continue
            rows, cols = tensor.shape
            if _OUTPUT_EMBEDDING_NAME.search(tensor.name) and rows > cols:
                continue  # an output embedding (often tied): anchored like the input one
            if cols == d:
                matrices.append(_profile_rows(tensor, anchors32))
            if rows == d:
                matrices.append(_profile_columns(tensor, anchors32))
        if not matrices:
            raise FingerprintError("no matrix shares the embedding width (nothing to compare)")
        return Fingerprint(
            version=FINGERPRINT_VERSION,
            hidden_size=d,
            anchor_ids=ids,
            gram=gram,
            matrices=tuple(matrices),
            skipped=tuple(skipped),
        )
