"""Weight fingerprints: anchored-token profiles of every matrix, invariant to unit permutation.

A model's weights carry the random draw of the base they started from; fine-tuning, dtype changes,
quantisation and pruning move them only a little. What an adversary can change for free is the
*order* of hidden units (and of the residual dimensions): the model computes the same function.
The fingerprint therefore indexes nothing by unit position:

- Anchor tokens: a set of token ids (rows of the input embedding `E`). Token ids cannot be
  permuted without changing the tokenizer, so they are the one index both models share. Which
  ids are anchors is drawn with the store's secret `LineageKey`, so a model's author cannot
  know them when preparing the weights (nor, past `ELEMENT_FLOOR`, which matrices are kept).
- Centring: each anchor row has its mean over the hidden dimensions taken out, `E_S (I - J)`
  (`J = 11^T / d`), before anything below. A LayerNorm takes the same mean out, so an author can
  add `a_t 1` to every embedding row at no cost to the function; the centred rows are unchanged.
  A permutation of the residual fixes the all-ones vector, so it still cancels exactly.
- Embedding Gram: `E_S E_S^T` over the anchors, invariant to any permutation (and, up to the
  centring's rank-one term, any rotation) of the residual dimensions.
- Unit profiles: for every other matrix with a dimension equal to the hidden size `d`, the anchors
  are pushed through it along that dimension, `P = E_S W^T`: one column per output unit, one row
  per anchor token. A residual permutation cancels in the product; a permutation of the matrix's
  own units only reorders the columns, which the comparison matches (see `compare.py`). At most
  `UNITS` units are kept per matrix: those whose weights lie closest to a few secret directions
  drawn through the anchors (`_unit_scores`), a choice blind to the order of units and to their
  scale, which an author can change without changing the function.

Tensors are read from safetensors or GGUF files through a read-only memory map (`weights.py`),
one matrix at a time in row chunks, so memory stays flat whatever the model size; each matrix
profiled is read once, and past `ELEMENT_FLOOR` only a share of the matrices is.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.lineage.weights import (
    DECODED_DTYPES,
    NOT_FINITE_ENERGY,
    FingerprintError,
    GgufWeights,
    MappedWeights,
    SafetensorsWeights,
    StoredTensor,
    columns,
    decoded_chunks,
    rows,
    stored,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "ANCHORS",
    "ELEMENT_FLOOR",
    "ELEMENT_SHARE",
    "FINGERPRINT_VERSION",
    "MAX_MATRICES",
    "MAX_VOCABULARY",
    "UNITS",
    "Fingerprint",
    "FingerprintError",
    "LineageKey",
    "UnitProfile",
    "canonical_name",
    "fingerprint_gguf",
    "fingerprint_safetensors",
    "fingerprint_weights",
]

FINGERPRINT_VERSION = 4
"""Bumped whenever the computation changes; fingerprints of different versions never compare.

Version 2: anchors and kept matrices drawn with the store's `LineageKey` (version 1 chose them
by a public rule, which a model's author could aim at: docs/lineage.md). Version 3: units kept
by their alignment with keyed directions, not by their norm (an author could rescale units to
move the norm choice without changing the function: docs/lineage.md). Version 4: the anchors
centred over the hidden dimensions for the profiles and the unit choice too, not only for the
Gram (an author could add a multiple of the all-ones vector to each embedding row, which no
LayerNorm model sees, and move every profile: docs/lineage.md)."""

ANCHORS = 64
"""Anchor tokens per model."""

UNITS = 128
"""Units (output rows or columns) profiled per matrix (`_unit_scores` chooses them)."""

SELECTORS = 1
"""Secret directions that choose a matrix's units (`LineageKey.selectors`).

A unit's score is the share of its weights' energy along them, which no rescaling of the unit
changes. Choosing units by a direction `u` widens the chosen units' profiles along `E_S u`
(their component along `u`, seen through the anchors), alike in unrelated models of one store;
that component is taken out of every profile (`_normalise`), so what is compared is blind to
the choice. One direction: a product with one vector runs at the speed of memory, where eight
took three times as long as the rest of the pass (docs/lineage.md)."""

MAX_MATRICES = 512
"""Matrices profiled per model; the rest are left out (and counted)."""

ELEMENT_FLOOR = 1 << 22
"""Matrix weights always profiled, about (4.2 million values: every matrix of a small model).

It was 33.5 million while the kept matrices were chosen by a public rule, so that an author
could not aim at them on any model that size; with the choice made by the store's secret key
(`LineageKey`) the floor is only a cost, and a model such as MiniLM (22 million matrix weights)
is now sampled too (docs/lineage.md gives the cost and the attribution measured with it)."""

ELEMENT_SHARE = 32
"""Beyond the floor, about one matrix weight in this many is profiled.

Each profiled matrix is read whole (every unit is scored to choose the kept ones), which costs
about what SHA-256 costs for the same bytes (numpy 2.4, this machine), so profiling every
matrix read a model a second time; one in 32 is a few percent of the hash pass.
Which matrices are kept depends only
on each one's name and the store's secret key (a keyed hash modulo a power of two), so models of
one architecture keep the same ones in one store, a model with an added matrix keeps the rest,
the choices are nested (a model just over a power of two shares half its profiled matrices with
one just under it), and nobody without the key knows which ones they are.
"""

_RAW_MAGIC = b"VFPR"
"""First bytes of a serialised fingerprint (`Fingerprint.to_bytes`)."""

MIN_SAMPLED = 8
"""Matrices kept at least when sampling (a selection is never thinned below this)."""

KEY_BYTES = 32
"""Length of a lineage key's secret."""

MAX_VOCABULARY = 1 << 24
"""Embedding rows fingerprinted at most (16.8 million tokens; real vocabularies hold up to about
a million). Choosing the anchors draws 4 bytes per id below the vocabulary's power of two
(`LineageKey.anchor_ids`): a header declaring 2^40 rows of nothing had the reader allocate
terabytes and the scan killed for lack of memory."""


@dataclass(frozen=True)
class LineageKey:
    """The secret that chooses a fingerprint's anchor tokens and, past the floor, its matrices.

    A public rule (evenly spaced anchors, matrices by the CRC-32 of their names, as in
    fingerprint version 1) tells a model's author exactly which 64 embedding rows every profile
    is taken through and which matrices are read: re-initialising just those hides a base. A
    fingerprint can only compare with one that chose the same rows and matrices, so the choice
    cannot be a fresh secret per scan (as the comparisons' samples are); it is a secret per
    store (`Store.lineage_key`), made on first use and never shown, so every fingerprint one
    organisation records compares with every other, and an author publishing weights cannot
    know which rows and matrices will be looked at. `key_id` (recorded in each fingerprint)
    tells fingerprints made under different keys apart: they never compare.

    Attributes:
        secret: `KEY_BYTES` random bytes.
    """

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise ValueError(f"a lineage key is {KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> LineageKey:
        """A fresh random key (a store makes one on first use)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    def _derive(self, purpose: bytes) -> bytes:
        return hmac.digest(self.secret, b"verifier-lineage/" + purpose, "sha256")

    @functools.cached_property
    def key_id(self) -> str:
        """A public name of the key (16 hex digits), which reveals nothing of what it chooses."""
        return self._derive(b"key-id")[:8].hex()

    def anchor_ids(self, vocab_size: int) -> tuple[int, ...]:
        """Anchor token ids for a vocabulary, stable when a few rows are added or removed.

        Every id from 3 (the first few are often special tokens) below the largest power of two
        not above the vocabulary size gets a secret score, a prefix of one keyed SHAKE-128
        stream; the `ANCHORS` lowest are the anchors. Resizing the embedding within the same
        power of two keeps them, and the choice is nested: the anchors of a vocabulary twice as
        large that fall below the smaller bound are anchors of the smaller one (about half).
        Computed once per key and bound in a process (a long-running service fingerprints
        many models with one key).
        """
        return _anchor_ids(self, 1 << (max(vocab_size, 2).bit_length() - 1))

    def _anchor_ids(self, bound: int) -> tuple[int, ...]:
        import numpy as np

        stream = hashlib.shake_128(self._derive(b"anchors")).digest(4 * bound)
        # Score and id in one 64-bit number: no ties, so a partial sort picks the same ids
        # whatever the vocabulary's size within the bound.
        ranked = np.frombuffer(stream, dtype="<u4").astype(np.uint64) << np.uint64(32)
        ranked |= np.arange(bound, dtype=np.uint64)
        ranked = ranked[3:]  # the first few ids are often special tokens: never anchors
        count = min(ANCHORS, ranked.shape[0])
        if count < ranked.shape[0]:
            ranked = np.partition(ranked, count)[:count]
        return tuple(sorted(int(v & 0xFFFFFFFF) for v in ranked))

    def selectors(self, anchors: int) -> NDArray[np.float32]:
        """`SELECTORS` secret weightings of the anchors (anchors x `SELECTORS`), each summing to
        zero: the directions `E_S^T K` that choose units (`_unit_scores`) are then unchanged
        when a vector is added to every anchor's embedding. Computed once per key and count in
        a process, and read-only (shared by every fingerprint made with the key)."""
        return _selectors(self, anchors)

    def _selectors(self, anchors: int) -> NDArray[np.float32]:
        import numpy as np

        seed = int.from_bytes(self._derive(b"unit-selectors")[:16], "little")
        weights = np.random.default_rng(seed).standard_normal((anchors, SELECTORS))
        weights -= weights.mean(axis=0, keepdims=True)
        found = weights.astype(np.float32)
        found.flags.writeable = False
        return found

    @functools.cached_property
    def _matrix_key(self) -> bytes:
        return self._derive(b"matrices")

    def matrix_class(self, name: str) -> int:
        """A secret 64-bit hash of a matrix's (canonical) name, for the kept-matrix classes."""
        digest = hashlib.blake2b(name.encode(), key=self._matrix_key, digest_size=8).digest()
        return int.from_bytes(digest, "little")


@functools.lru_cache(maxsize=16)
def _anchor_ids(key: LineageKey, bound: int) -> tuple[int, ...]:
    return key._anchor_ids(bound)


@functools.lru_cache(maxsize=16)
def _selectors(key: LineageKey, anchors: int) -> NDArray[np.float32]:
    return key._selectors(anchors)


_EMBEDDING_NAME = re.compile(
    r"(embed_tokens|word_embeddings|wte|tok_embeddings|token_embd|embed_in)"
)
_OUTPUT_EMBEDDING_NAME = re.compile(r"(lm_head|embed_out|output\.weight$)")


@dataclass(frozen=True)
class UnitProfile:
    """Anchored profiles of one matrix's units.

    Attributes:
        name: Tensor name, with `@in`/`@out` for the orientation of a square matrix.
        profiles: Array (anchors x units), each column centred and of unit norm: float32 when
            computed, float16 (as stored, and read-only) when read back with
            `Fingerprint.from_bytes`.
    """

    name: str
    profiles: NDArray[np.floating[Any]]


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
        key_id: `LineageKey.key_id` of the key that chose the anchors and matrices.
    """

    version: int
    hidden_size: int
    anchor_ids: tuple[int, ...]
    gram: NDArray[np.float32]
    matrices: tuple[UnitProfile, ...]
    skipped: tuple[str, ...] = ()
    key_id: str = ""

    @functools.cached_property
    def by_canonical_name(self) -> dict[str, UnitProfile]:
        """The profiles by `canonical_name`, computed once per fingerprint (a regular expression
        per name per reference was a tenth of a comparison's time)."""
        return {canonical_name(m.name): m for m in self.matrices}

    def to_bytes(self) -> bytes:
        """Serialise to a compact, self-describing byte string (`_RAW_MAGIC`, JSON header,
        float16 data)."""
        import numpy as np

        header = {
            "version": self.version,
            "hidden_size": self.hidden_size,
            "anchor_ids": list(self.anchor_ids),
            "gram": list(self.gram.shape),
            "matrices": [[m.name, *m.profiles.shape] for m in self.matrices],
            "skipped": list(self.skipped),
            "key_id": self.key_id,
        }
        head = json.dumps(header, separators=(",", ":")).encode()
        parts = [struct.pack("<I", len(head)), head, self.gram.astype("<f2").tobytes()]
        parts += [np.ascontiguousarray(m.profiles).astype("<f2").tobytes() for m in self.matrices]
        # Not deflated: float16 profiles shrink by 7%, and compressing and inflating them cost
        # more than the rest of a comparison (40 ms a scan, 6 ms a reference); nor wrapped in a
        # stored zlib stream (as before), whose check and copy took a millisecond a reference.
        return b"".join([_RAW_MAGIC, *parts])

    @classmethod
    def from_bytes(cls, blob: bytes) -> Fingerprint:
        """Parse what `to_bytes` wrote.

        Raises:
            FingerprintError: The bytes are not a fingerprint of this version.
        """
        import numpy as np

        try:
            # Earlier fingerprints were a stored zlib stream (first byte 0x78), still read.
            raw = (
                memoryview(blob)[len(_RAW_MAGIC) :]
                if blob[: len(_RAW_MAGIC)] == _RAW_MAGIC
                else memoryview(zlib.decompress(blob))
            )
            (size,) = struct.unpack_from("<I", raw, 0)
            header = json.loads(bytes(raw[4 : 4 + size]))
            if header["version"] != FINGERPRINT_VERSION:
                raise FingerprintError(f"fingerprint version {header['version']} is not supported")
            offset = 4 + size

            def take(rows: int, cols: int) -> NDArray[np.floating[Any]]:
                nonlocal offset
                count = rows * cols
                array = np.frombuffer(raw, dtype="<f2", count=count, offset=offset)
                offset += 2 * count
                # Left float16: a comparison converts only the matrices it samples.
                array = array.reshape(rows, cols)
                array.flags.writeable = False
                return array

            # Read-only, as the profiles are (views over the record's bytes): a store keeps
            # decoded references between scans (`store.fingerprint_cache`), and a comparison
            # that wrote into one would change what every later scan compares with.
            gram = take(*header["gram"]).astype(np.float32)
            gram.flags.writeable = False
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
                key_id=str(header["key_id"]),
            )
        except FingerprintError:
            raise
        except (zlib.error, struct.error, ValueError, KeyError, TypeError) as exc:
            raise FingerprintError(f"unreadable fingerprint: {exc}") from exc


#: Hugging Face (Llama-style) tensor names and what llama.cpp's converter names them in GGUF,
#: so a GGUF copy of a model compares with its safetensors original, matrix by matrix.
_GGUF_NAMES = (
    (
        re.compile(r"^model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.weight"),
        r"blk.\1.attn_\2.weight",
    ),
    (re.compile(r"^model\.layers\.(\d+)\.self_attn\.o_proj\.weight"), r"blk.\1.attn_output.weight"),
    (
        re.compile(r"^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight"),
        r"blk.\1.ffn_\2.weight",
    ),
)


@functools.lru_cache(maxsize=1 << 14)
def canonical_name(name: str) -> str:
    """The name two fingerprints' matrices are paired by: GGUF's, for a Llama-style name.

    Kept for the names seen (every reference of one architecture holds the same ones: three
    regular expressions per name per reference were a millisecond of a scan)."""
    for pattern, replacement in _GGUF_NAMES:
        renamed, count = pattern.subn(replacement, name)
        if count:
            return renamed
    return name


def _embedding(weights: MappedWeights) -> StoredTensor:
    candidates = [
        t
        for t in weights.tensors.values()
        if len(t.shape) == 2 and _EMBEDDING_NAME.search(t.name) and t.shape[0] > t.shape[1]
    ]
    if not candidates:
        raise FingerprintError("no input embedding found (architecture not comparable)")
    return max(candidates, key=lambda t: (t.shape[0], t.name))


def _unit_scores(
    tensor: StoredTensor, selectors: NDArray[np.float32], *, of_rows: bool, of_columns: bool
) -> tuple[NDArray[np.float32] | None, NDArray[np.float32] | None]:
    """How closely each row and/or column lies to the selector directions, in one pass.

    A unit's score is `|U^T w|^2 / |w|^2`: the share of its weights' energy along the columns
    of `U = E_S^T K` (`selectors`, d x `SELECTORS`). It is blind to a unit's scale (a query row
    grown by `a` against its key row shrunk by `a`, say, changes no output and no score), to
    the order of units, and to a permutation of the residual dimensions (which permutes `U`
    with them); `K` is secret, so an author cannot aim at it. Units' weight norms, the rule
    before, an author could move at will (docs/lineage.md).
    """
    import numpy as np

    count, width = tensor.shape
    row_along = np.empty(count, dtype=np.float32)
    row_energy = np.empty(count, dtype=np.float32)
    column_along = np.zeros((selectors.shape[1], width if of_columns else 0), dtype=np.float32)
    column_energy = np.zeros(width if of_columns else 0, dtype=np.float32)
    # Values that are not finite (or overflow) make scores that are not: computed quietly,
    # and then chosen first, so they reach the profiles and the fingerprint is refused.
    with np.errstate(all="ignore"):
        for start, block in decoded_chunks(tensor):
            stop = start + block.shape[0]
            if of_rows:
                row_along[start:stop] = np.square(block @ selectors).sum(axis=1)
                row_energy[start:stop] = np.einsum("ij,ij->i", block, block)
            if of_columns:
                column_along += selectors[start:stop].T @ block
                column_energy += np.einsum("ij,ij->j", block, block)
        return (
            _ratio(row_along, row_energy) if of_rows else None,
            _ratio(np.square(column_along).sum(axis=0), column_energy) if of_columns else None,
        )


def _ratio(along: NDArray[np.float32], energy: NDArray[np.float32]) -> NDArray[np.float32]:
    """along / energy; 0 for a unit of zeros (a pruned one), infinity where either is not
    finite or the energy reaches `NOT_FINITE_ENERGY` (chosen first, then refused if a value
    really is not finite)."""
    import numpy as np

    scores = along / np.where(energy == 0, 1.0, energy)
    scores[energy == 0] = 0.0
    scores[~(np.isfinite(scores) & (energy < NOT_FINITE_ENERGY))] = np.inf
    return np.asarray(scores, dtype=np.float32)


def _normalise(profiles: NDArray[np.float32], blind: NDArray[np.float32]) -> NDArray[np.float32]:
    """Each profile centred over the anchors, its component along `blind` (orthonormal
    columns: the selectors' image through the anchors) taken out, and scaled to unit length."""
    import numpy as np

    centred = profiles - profiles.mean(axis=0, keepdims=True)
    centred -= blind @ (blind.T @ centred)
    norms = np.linalg.norm(centred, axis=0, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(centred / norms, dtype=np.float32)


def _top_units(scores: NDArray[np.float32]) -> NDArray[np.int64]:
    import numpy as np

    if scores.shape[0] <= UNITS:
        return np.arange(scores.shape[0], dtype=np.int64)
    # Content-based: the highest scores, in ascending index order for reading.
    chosen = np.argpartition(-scores, UNITS - 1)[:UNITS]
    return np.sort(chosen).astype(np.int64)


def _profiles(
    tensor: StoredTensor,
    anchors: NDArray[np.float32],
    selectors: NDArray[np.float32],
    blind: NDArray[np.float32],
    d: int,
) -> list[UnitProfile]:
    """A matrix's unit profiles: `@in` when its columns read the residual (P = E_S W_sel^T),
    `@out` when its rows write it (P = E_S W[:, sel]); a square matrix gives both."""
    count, width = tensor.shape
    row_scores, column_scores = _unit_scores(
        tensor, selectors, of_rows=width == d, of_columns=count == d
    )
    found = []
    if row_scores is not None:
        selected = rows(tensor, _top_units(row_scores))
        found.append(UnitProfile(tensor.name + "@in", _normalise(anchors @ selected.T, blind)))
    if column_scores is not None:
        selected = columns(tensor, _top_units(column_scores))
        found.append(UnitProfile(tensor.name + "@out", _normalise(anchors @ selected, blind)))
    return found


def _matrices(weights: MappedWeights, embedding: StoredTensor) -> Iterator[StoredTensor]:
    d = embedding.shape[1]
    for name in sorted(weights.tensors):
        tensor = weights.tensors[name]
        if tensor is embedding or len(tensor.shape) != 2 or d not in tensor.shape:
            continue
        yield tensor


def _within_budget(matrices: list[StoredTensor], key: LineageKey) -> list[StoredTensor]:
    """The matrices to profile: all, or those whose name's keyed hash falls in one of 2**k
    classes."""

    def elements(chosen: list[StoredTensor]) -> int:
        return sum(t.shape[0] * t.shape[1] for t in chosen)

    budget = max(ELEMENT_FLOOR, elements(matrices) // ELEMENT_SHARE)
    chosen = matrices
    if elements(chosen) <= budget:
        return chosen
    hashes = {t.name: key.matrix_class(canonical_name(t.name)) for t in matrices}
    classes = 1
    while elements(chosen) > budget and classes < 1 << 16:
        classes *= 2
        thinner = [t for t in matrices if hashes[t.name] % classes == 0]
        if len(thinner) < MIN_SAMPLED:
            break
        chosen = thinner
    return chosen


def fingerprint_weights(weights: MappedWeights, *, key: LineageKey) -> Fingerprint:
    """Fingerprint the tensors of one model (every file of it, mapped together), with the
    anchors and matrices `key` chooses.

    Raises:
        FingerprintError: No embedding, or nothing comparable in the files.
    """
    import numpy as np

    # Hostile or broken weights may hold NaN, infinities or values whose squares overflow:
    # computed quietly, then refused below if any of it reached the fingerprint.
    with np.errstate(all="ignore"):
        fingerprint = _fingerprint(weights, key)
    arrays = [fingerprint.gram, *(m.profiles for m in fingerprint.matrices)]
    if not all(np.isfinite(a).all() for a in arrays):
        raise FingerprintError("the weights hold values that are not finite numbers")
    return fingerprint


def _fingerprint(weights: MappedWeights, key: LineageKey) -> Fingerprint:
    import numpy as np

    embedding = _embedding(weights)
    if embedding.dtype not in DECODED_DTYPES:
        raise FingerprintError(f"embedding dtype {embedding.dtype} is not fingerprinted")
    vocabulary, width = embedding.shape
    if width == 0 or vocabulary > MAX_VOCABULARY:
        raise FingerprintError(
            f"{embedding.name}: {vocabulary} x {width} is not an embedding this method reads"
        )
    stored(embedding)  # its bytes match its shape before the shape sizes anything
    ids = key.anchor_ids(vocabulary)
    anchors = rows(embedding, np.array(ids, dtype=np.int64)).astype(np.float64)
    d = embedding.shape[1]
    # Each anchor row centred over the hidden dimensions, for the Gram and every profile: a
    # LayerNorm removes that mean, so adding a multiple of the all-ones vector to each row
    # changes nothing a LayerNorm model computes, and nothing here (docs/lineage.md).
    centred = anchors - anchors.mean(axis=1, keepdims=True)
    gram = (centred @ centred.T).astype(np.float32)
    anchors32 = centred.astype(np.float32)
    # d x SELECTORS: the directions that choose each matrix's units (`_unit_scores`), and
    # their image through the anchors (centred, orthonormal), which the profiles leave out.
    selectors = np.ascontiguousarray(anchors32.T @ key.selectors(len(ids)))
    image = anchors32 @ selectors
    blind = np.linalg.qr(image - image.mean(axis=0, keepdims=True))[0].astype(np.float32)
    matrices: list[UnitProfile] = []
    skipped = [t.name for t in _matrices(weights, embedding) if t.dtype not in DECODED_DTYPES]
    readable = [
        t
        for t in _matrices(weights, embedding)
        if t.dtype in DECODED_DTYPES
        # an output embedding (often tied): anchored like the input one
        and not (_OUTPUT_EMBEDDING_NAME.search(t.name) and t.shape[0] > t.shape[1])
    ]
    for tensor in _within_budget(readable, key):
        if len(matrices) >= MAX_MATRICES:
            skipped.append(tensor.name)
            continue
        matrices.extend(_profiles(tensor, anchors32, selectors, blind, d))
    if not matrices:
        raise FingerprintError("no matrix shares the embedding width (nothing to compare)")
    return Fingerprint(
        version=FINGERPRINT_VERSION,
        hidden_size=d,
        anchor_ids=ids,
        gram=gram,
        matrices=tuple(matrices),
        skipped=tuple(skipped),
        key_id=key.key_id,
    )


def fingerprint_safetensors(paths: Iterable[Path], *, key: LineageKey) -> Fingerprint:
    """Fingerprint the weights held in one model's safetensors files (all shards together).

    Raises:
        FingerprintError: A malformed file, no embedding, or nothing comparable in the files.
    """
    with SafetensorsWeights(paths) as weights:
        return fingerprint_weights(weights, key=key)


def fingerprint_gguf(paths: Iterable[Path], *, key: LineageKey) -> Fingerprint:
    """Fingerprint one model's GGUF files (one file, or the shards of a split) from their F32,
    F16, BF16, F64 and Q8_0 tensors; tensors of other types are listed as skipped.

    Raises:
        FingerprintError: A malformed file, no embedding, or nothing comparable in them.
    """
    with GgufWeights(paths) as weights:
        return fingerprint_weights(weights, key=key)
