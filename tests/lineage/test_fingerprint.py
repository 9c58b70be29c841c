"""Weight fingerprints: derivatives (even permuted) match their base, independent bases do not."""

from __future__ import annotations

import json
import statistics
import struct
from pathlib import Path

import pytest
import torch

from benchmarks import lineage_models as lm
from tests.lineage.conftest import ARCH, KEY
from verifier.lineage.compare import compare
from verifier.lineage.fingerprint import (
    Fingerprint,
    FingerprintError,
    LineageKey,
    fingerprint_safetensors,
)


def test_permuted_model_computes_the_same_function() -> None:
    state = lm.base(ARCH, seed=9)
    ids = lm.corpus(ARCH, 9, batch=2, length=8)
    original = lm.load(ARCH, state)(ids)
    permuted = lm.load(ARCH, lm.permute(ARCH, state, seed=1, residual=True))(ids)
    assert torch.allclose(original, permuted, atol=1e-4)


@pytest.mark.parametrize("name", ["tuned", "permuted", "int8", "resized", "bf16", "merged"])
def test_derivatives_are_attributed_to_their_base(
    family: dict[str, Fingerprint], name: str
) -> None:
    match = compare(family[name], family["one"])
    assert match.comparable
    assert match.derived, match


def test_independent_bases_are_not_attributed(family: dict[str, Fingerprint]) -> None:
    for name in ("one", "tuned", "permuted", "int8"):
        match = compare(family[name], family["two"])
        assert match.comparable
        assert not match.derived, (name, match)
    assert compare(family["merged"], family["two"]).derived


def test_the_null_is_calibrated_on_unrelated_weights(family: dict[str, Fingerprint]) -> None:
    # One draw's z has heavy tails (its spread is estimated from the shuffles of that draw:
    # about 1 unrelated draw in 250 reached |z| >= 5 with this pair), so the null is judged
    # over 40 fixed draws, as 40 scans would draw them: centred, and rarely far out.
    draws = [compare(family["one"], family["two"], seed=seed) for seed in range(40)]
    assert abs(statistics.median(d.z for d in draws)) < 1.5
    assert sum(abs(d.z) >= 4 for d in draws) <= 2
    assert statistics.median(d.p_value for d in draws) > 0.05
    assert not any(d.derived for d in draws)
    assert compare(family["permuted"], family["one"], seed=0).p_value < 1e-9


def test_serialisation_round_trips(family: dict[str, Fingerprint]) -> None:
    again = Fingerprint.from_bytes(family["one"].to_bytes())
    assert again.anchor_ids == family["one"].anchor_ids
    assert [m.name for m in again.matrices] == [m.name for m in family["one"].matrices]
    assert compare(again, family["one"]).derived


def test_unreadable_fingerprint_bytes_are_refused() -> None:
    with pytest.raises(FingerprintError):
        Fingerprint.from_bytes(b"not a fingerprint")


def test_anchor_ids_survive_small_vocabulary_resizes() -> None:
    assert KEY.anchor_ids(32_000) == KEY.anchor_ids(32_100)
    assert len(KEY.anchor_ids(32_000)) == 64
    assert all(3 <= i < 256 for i in KEY.anchor_ids(300))


def test_anchor_ids_are_nested_across_powers_of_two() -> None:
    small, large = set(KEY.anchor_ids(16_384)), set(KEY.anchor_ids(32_768))
    # The large vocabulary's anchors below the small bound are anchors of the small one.
    assert {i for i in large if i < 16_384} <= small
    assert len(small & large) >= 16  # enough to compare (MIN_SHARED_ANCHORS)


def test_anchors_and_kept_matrices_depend_on_the_key() -> None:
    other = LineageKey(bytes(range(1, 33)))
    assert len(set(KEY.anchor_ids(32_000)) & set(other.anchor_ids(32_000))) < 16
    assert KEY.key_id != other.key_id
    assert KEY.matrix_class("blk.0.attn_q.weight") != other.matrix_class("blk.0.attn_q.weight")
    assert "secret" not in repr(KEY) and KEY.secret.hex() not in repr(KEY)


def test_fingerprints_made_with_different_keys_never_compare(
    family: dict[str, Fingerprint], tmp_path: Path
) -> None:
    folder = lm.save(lm.base(ARCH, seed=1), tmp_path / "one")
    other = fingerprint_safetensors(
        [folder / "model.safetensors"], key=LineageKey(bytes(range(1, 33)))
    )
    match = compare(other, family["one"])
    assert not match.comparable and "keys" in match.reason


def _write(path: Path, header: dict[str, object], data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_files_without_an_embedding_are_not_comparable(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    with pytest.raises(FingerprintError, match="embedding"):
        fingerprint_safetensors([_write(tmp_path / "m.safetensors", header, bytes(16))], key=KEY)


@pytest.mark.parametrize(
    "header",
    [
        {"embed_tokens.weight": {"dtype": "F32", "shape": [8, 2], "data_offsets": [0, 999]}},
        {"embed_tokens.weight": {"dtype": "F32", "shape": [8, 2], "data_offsets": [0, 16]}},
        {"embed_tokens.weight": {"dtype": "F32", "shape": "x", "data_offsets": [0, 64]}},
    ],
)
def test_malformed_files_raise_a_fingerprint_error(
    tmp_path: Path, header: dict[str, object]
) -> None:
    with pytest.raises(FingerprintError):
        fingerprint_safetensors([_write(tmp_path / "m.safetensors", header, bytes(64))], key=KEY)


def test_truncated_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 10_000) + b"{}")
    with pytest.raises(FingerprintError):
        fingerprint_safetensors([path], key=KEY)


# -- the fingerprint's own reader and the real loader read the same bytes -------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64, torch.bfloat16])
def test_tensor_reader_reads_what_safetensors_loads(tmp_path: Path, dtype: torch.dtype) -> None:
    """Differential: every tensor SafetensorsWeights maps holds exactly the values (bit for bit)
    that `safetensors.torch.load_file` returns, across two shards and padded headers."""
    from safetensors.torch import load_file, save_file

    from verifier.lineage.weights import SafetensorsWeights, stored

    generator = torch.Generator().manual_seed(5)
    shards = []
    for shard in range(2):
        tensors = {
            f"layer.{shard}.{i}.weight": torch.randn(3 + i, 7, generator=generator).to(dtype)
            for i in range(3)
        }
        path = tmp_path / f"model-0000{shard + 1}-of-00002.safetensors"
        save_file(tensors, str(path), metadata={"format": "pt"})
        shards.append(path)
    loaded = {k: v for path in shards for k, v in load_file(str(path)).items()}
    with SafetensorsWeights(shards) as weights:
        assert set(weights.tensors) == set(loaded)
        for name, tensor in weights.tensors.items():
            expected = loaded[name]
            assert tensor.shape == tuple(expected.shape)
            bits = expected.view(torch.int16) if dtype == torch.bfloat16 else expected
            assert stored(tensor).tobytes() == bits.numpy().tobytes(), name


def test_tensor_reader_refuses_what_safetensors_refuses(tmp_path: Path) -> None:
    """A header whose offsets run past the data: the loader refuses, and so does the reader."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from verifier.lineage.weights import SafetensorsWeights

    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 32]}})
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + bytes(16))
    with pytest.raises(SafetensorError):
        load_file(str(path))
    with pytest.raises(FingerprintError, match="outside the file"):
        SafetensorsWeights([path])


def test_a_corrupt_stored_fingerprint_is_an_error_not_a_crash(
    family: dict[str, Fingerprint],
) -> None:
    """A fingerprint row damaged in the database is refused with a FingerprintError, in the
    current framing and in the stored zlib stream earlier records used."""
    import zlib

    good = family["one"].to_bytes()
    magic, raw = good[:4], good[4:]
    assert magic == b"VFPR"
    earlier = zlib.compress(raw, 0)
    assert compare(Fingerprint.from_bytes(earlier), family["one"], seed=1).derived
    (size,) = struct.unpack_from("<I", raw, 0)
    header = json.loads(raw[4 : 4 + size])
    newer = json.dumps({**header, "version": header["version"] + 1}).encode()
    bodies = {
        "truncated data": raw[:-2],
        "trailing bytes": raw + b"\x00\x00",
        "header not JSON": raw[:4] + b"{" * size + raw[4 + size :],
        "header length past the end": struct.pack("<I", 1 << 30) + raw[4:],
        "newer version": struct.pack("<I", len(newer)) + newer + raw[4 + size :],
    }
    damaged = {"empty": b"", "neither framing": b"not a fingerprint at all", "magic only": magic}
    for label, body in bodies.items():
        damaged[label] = magic + body
        damaged[label + " (zlib)"] = zlib.compress(body)
    assert Fingerprint.from_bytes(good).matrices
    for label, blob in damaged.items():
        with pytest.raises(FingerprintError):
            Fingerprint.from_bytes(blob)
            pytest.fail(label)


@pytest.mark.parametrize("dtype", ["F16", "BF16", "F32", "F64"])
def test_blocks_that_choose_units_hold_the_exact_values(dtype: str) -> None:
    """Differential: the blocks the unit choice reads, in cache-sized pieces, are the values
    `widen` decodes from the whole matrix (zeros and float16 subnormals included)."""
    import numpy as np

    from verifier.lineage.weights import StoredTensor, decoded_chunks, stored, widen

    rng = np.random.default_rng(3)
    values = rng.standard_normal((4000, 70)) * 10.0 ** rng.integers(-4, 3, (4000, 70))
    values[0, :5] = [0.0, -0.0, 1e-6, -3e-7, 6e-5]  # zeros and float16 subnormals
    code = {"F16": "<f2", "BF16": "<f4", "F32": "<f4", "F64": "<f8"}[dtype]
    raw = values.astype(code)
    if dtype == "BF16":
        raw = (raw.view("<u4") >> 16).astype("<u2")
    data = memoryview(raw.tobytes())
    tensor = StoredTensor("w", dtype, raw.shape, data, 0, len(data))
    exact = widen(stored(tensor), dtype)
    # A block is valid until the next one: kept as copies.
    chunks = [(start, block.copy()) for start, block in decoded_chunks(tensor)]
    # The test covers the seams between blocks; float32 is one block, a view on the bytes.
    assert len(chunks) == 1 if dtype == "F32" else len(chunks) > 1
    assert [start for start, _ in chunks] == sorted({start for start, _ in chunks})
    joined = np.concatenate([block for _, block in chunks])
    assert joined.dtype == np.float32 and np.array_equal(joined, exact)


@pytest.mark.parametrize("dtype", ["F16", "BF16", "F32"])
def test_units_holding_values_that_are_not_finite_score_first(dtype: str) -> None:
    """An infinity or NaN in the file makes its unit score infinity (float16's decoding by bits
    turns it into a large finite number, whose square is past `NOT_FINITE_ENERGY`), so the unit
    is chosen, its profile read exactly, and the fingerprint refused; a large finite float16
    value and zeros do not (a unit of several such values would be chosen first too, which is
    harmless: its profile is finite)."""
    import numpy as np

    from verifier.lineage.fingerprint import _unit_scores
    from verifier.lineage.weights import StoredTensor

    values = np.random.default_rng(5).standard_normal((3000, 100)).astype(np.float32)
    values[2900, 4], values[10, 7], values[11, 8] = np.inf, -np.inf, np.nan
    values[12, :2] = [-60000.0, 0.0]  # a large finite float16 value, and zero
    values[13] = 0.0  # a pruned unit
    raw = values.astype({"F16": "<f2", "BF16": "<f4", "F32": "<f4"}[dtype])
    if dtype == "BF16":
        raw = (raw.view("<u4") >> 16).astype("<u2")
    data = memoryview(raw.tobytes())
    tensor = StoredTensor("w", dtype, raw.shape, data, 0, len(data))
    selectors = np.random.default_rng(6).standard_normal((100, 1)).astype(np.float32)
    rows, columns = _unit_scores(tensor, selectors, of_rows=True, of_columns=False)
    assert rows is not None and columns is None
    assert set(np.flatnonzero(np.isinf(rows))) == {10, 11, 2900}
    assert np.isfinite(rows[12]) and rows[13] == 0.0


def test_unit_choice_is_blind_to_scale_and_order_but_not_to_direction() -> None:
    """A unit's score (`_unit_scores`) does not move when the unit is rescaled or when units
    are reordered, the two changes an author can make without changing the function; its
    weight norm, the rule of fingerprint version 2, moves with the scale."""
    import numpy as np

    from verifier.lineage.fingerprint import _unit_scores
    from verifier.lineage.weights import StoredTensor

    rng = np.random.default_rng(4)
    selectors = rng.standard_normal((48, 8)).astype(np.float32)

    def scores(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = memoryview(np.ascontiguousarray(matrix, dtype="<f4").tobytes())
        tensor = StoredTensor("w", "F32", matrix.shape, data, 0, len(data))
        row, column = _unit_scores(tensor, selectors, of_rows=True, of_columns=True)
        assert row is not None and column is not None
        return row, column

    square = rng.standard_normal((48, 48))
    row, column = scores(square)
    scale = np.exp(rng.uniform(-5, 5, 48))  # factors from 1/150 to 150
    order = rng.permutation(48)
    assert np.allclose(scores(square * scale[:, None])[0], row, rtol=1e-4)
    assert np.allclose(scores(square * scale[None, :])[1], column, rtol=1e-4)
    assert np.allclose(scores(square[order])[0], row[order], rtol=1e-4)
    assert np.allclose(scores(square[:, order])[1], column[order], rtol=1e-4)
    norms = np.square(square).sum(axis=1)
    assert not np.allclose(np.square(square * scale[:, None]).sum(axis=1), norms, rtol=0.5)
    turned = square + rng.standard_normal((48, 48))  # new directions: other scores
    assert not np.allclose(scores(turned)[0], row, rtol=0.1)
    zero = square.copy()
    zero[5] = 0.0  # a pruned unit scores 0, never NaN
    assert scores(zero)[0][5] == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_a_unit_holding_a_value_that_is_not_finite_is_refused(
    tmp_path: Path, bad: float, dtype: torch.dtype
) -> None:
    """A unit whose score is not finite is chosen first, so its profile carries the value into
    the fingerprint, which is refused, whatever that unit's direction."""
    wide = lm.Arch(vocab=320, hidden=32, layers=1, heads=2, ffn=512)  # more units than kept
    state = lm.base(wide, seed=9)
    state["layers.0.up_proj.weight"][7, 3] = bad
    path = lm.save(state, tmp_path, dtype=dtype) / "model.safetensors"
    with pytest.raises(FingerprintError, match="not finite"):
        fingerprint_safetensors([path], key=KEY)


def test_profiles_leave_out_the_direction_that_chose_their_units() -> None:
    """Units are chosen by their component along the selectors; seen through the anchors, that
    component is one direction, shared by every model of a store, so `_normalise` removes it:
    stored profiles are centred, of unit length and orthogonal to it."""
    import numpy as np

    from verifier.lineage.fingerprint import _normalise

    rng = np.random.default_rng(6)
    image = rng.standard_normal((64, 1))
    blind = np.linalg.qr(image - image.mean(axis=0))[0].astype(np.float32)
    profiles = (rng.standard_normal((64, 40)) + 5.0 * image).astype(np.float32)
    out = _normalise(profiles, blind)
    assert np.allclose(out.mean(axis=0), 0.0, atol=1e-6)
    assert np.allclose(np.linalg.norm(out, axis=0), 1.0, atol=1e-5)
    assert np.allclose(blind.T @ out, 0.0, atol=1e-5)
