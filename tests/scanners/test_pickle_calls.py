"""Reconstructors that call their arguments: what savers write passes, what else they would
run is followed or reported; imports read with Python 2's names as the unpickler reads them."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import samples
from tests.scanners.streams_for_tests import reader_for
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext
from verifier.scanners.pickle import PickleScanner
from verifier.scanners.pickle_calls import MODELLED

LOAD_FROM_BYTES = ("torch.storage", "_load_from_bytes")
NUMPY_PICKLE = "numpy.random._pickle"


def _scan(tmp_path: Path, data: bytes) -> list[Finding]:
    path = tmp_path / "sample.pkl"
    path.write_bytes(data)
    with reader_for(path, chunk_size=7) as reader:
        return list(PickleScanner().scan(reader, ScanContext("sample.pkl", FileFormat.PICKLE)))


def _serious(findings: list[Finding]) -> list[tuple[str, str | None]]:
    return [(f.code, f.evidence) for f in findings if f.severity.at_least(Severity.MEDIUM)]


# A tiny assembler for protocol 3 pickles: values are opcode bytes.
def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    return b"X" + struct.pack("<I", len(text.encode())) + text.encode()


def _bytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def _call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


def _pickle(body: bytes) -> bytes:
    return b"\x80\x03" + body + b"."


def _payload(marker_dir: Path) -> bytes:
    return samples.os_system(marker_dir)


@pytest.mark.parametrize("ctor", ["__generator_ctor", "__randomstate_ctor"])
def test_generator_ctor_handing_bytes_to_a_nested_loader_is_followed(
    tmp_path: Path, marker_dir: Path, ctor: str
) -> None:
    # ctor(x) with ctor = torch.storage._load_from_bytes: torch.load(weights_only=False) on x.
    data = _pickle(
        _call(_global(NUMPY_PICKLE, ctor), _bytes(_payload(marker_dir)), _global(*LOAD_FROM_BYTES))
    )
    nested = [f for f in _scan(tmp_path, data) if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert [f.evidence for f in nested] == ["os.system"]
    assert (nested[0].member or "").startswith("nested@")


def test_rebuild_from_type_calls_its_function_and_that_call_is_followed(
    tmp_path: Path, marker_dir: Path
) -> None:
    data = _pickle(
        _call(
            _global("torch._tensor", "_rebuild_from_type_v2"),
            _global(*LOAD_FROM_BYTES),
            _global("torch", "Tensor"),
            b"(" + _bytes(_payload(marker_dir)) + b"t",
            b"}",
        )
    )
    findings = _scan(tmp_path, data)
    assert ("PICKLE-DANGEROUS-GLOBAL", "os.system") in _serious(findings)


def test_rebuild_from_type_with_unreadable_arguments_for_a_loader_is_unscanned(
    tmp_path: Path,
) -> None:
    data = _pickle(
        _call(
            _global("torch._tensor", "_rebuild_from_type_v2"),
            _global(*LOAD_FROM_BYTES),
            _global("torch", "Tensor"),
            b"]",  # a list: the walk keeps lists opaque
            b"}",
        )
    )
    assert "PICKLE-NESTED-UNSCANNED" in {code for code, _ in _serious(_scan(tmp_path, data))}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            _call(_global(NUMPY_PICKLE, "__bit_generator_ctor"), _call(_global("builtins", "set"))),
            "the result of builtins.set",
        ),
        (
            _call(
                _global(NUMPY_PICKLE, "__generator_ctor"),
                _str("MT19937"),
                _call(_global("collections", "OrderedDict")),
            ),
            "the result of collections.OrderedDict",
        ),
        (
            _call(
                _global("torch._tensor", "_rebuild_from_type_v2"),
                _call(_global("collections", "OrderedDict")),
                _global("torch", "Tensor"),
                b")",
                b"}",
            ),
            "the result of collections.OrderedDict",
        ),
        (_global(NUMPY_PICKLE, "__generator_ctor") + b"]R", "could not be read"),
    ],
)
def test_a_callable_the_walk_cannot_read_is_reported(tmp_path: Path, body: bytes, why: str) -> None:
    findings = _scan(tmp_path, _pickle(body))
    unsafe = [f for f in findings if f.code == "PICKLE-UNSAFE-ARGUMENTS"]
    assert len(unsafe) == 1 and unsafe[0].severity is Severity.CRITICAL
    assert why in unsafe[0].message


def _chain(depth: int) -> bytes:
    """f(f, T, (f, T, (... (), {}), {}), {}) with f = _rebuild_from_type_v2: calls in calls."""
    rebuild = _global("torch._tensor", "_rebuild_from_type_v2")
    args = b"(" + _global("builtins", "set") + _global("torch", "Tensor") + b")}t"
    for _ in range(depth):
        args = b"(" + rebuild + _global("torch", "Tensor") + args + b"}t"
    return _pickle(_call(rebuild, rebuild, _global("torch", "Tensor"), args, b"}"))


def test_chains_of_reconstructors_stop_at_a_limit(tmp_path: Path) -> None:
    assert _serious(_scan(tmp_path, _chain(3))) == []
    assert "PICKLE-MALFORMED" in {code for code, _ in _serious(_scan(tmp_path, _chain(12)))}


# --- what savers write ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize(
    "make",
    [
        lambda: np.random.default_rng(0),
        lambda: np.random.RandomState(1),
        lambda: np.random.Generator(np.random.Philox(2)),
        lambda: np.random.SFC64(3),
        lambda: np.random.SeedSequence(4),
    ],
    ids=["default_rng", "RandomState", "Generator-Philox", "SFC64", "SeedSequence"],
)
def test_numpy_random_state_as_numpy_pickles_it_is_clean(
    tmp_path: Path, protocol: int, make: object
) -> None:
    findings = _scan(tmp_path, pickle.dumps(make(), protocol=protocol))  # type: ignore[operator]
    assert _serious(findings) == []
    assert [f.code for f in findings] == ["PICKLE-IMPORTS"]


@pytest.mark.parametrize(
    "body",
    [
        # NumPy 1.x wrote the bit generator's name; 1.25+ passed its constructor explicitly.
        _call(_global(NUMPY_PICKLE, "__generator_ctor"), _str("PCG64")),
        _call(
            _global(NUMPY_PICKLE, "__randomstate_ctor"),
            _str("MT19937"),
            _global(NUMPY_PICKLE, "__bit_generator_ctor"),
        ),
        _call(_global(NUMPY_PICKLE, "__bit_generator_ctor"), _str("Philox")),
        _call(_global(NUMPY_PICKLE, "__bit_generator_ctor")),
        # An unknown name is a ValueError in numpy's dict lookup, nothing more.
        _call(_global(NUMPY_PICKLE, "__bit_generator_ctor"), _str("os.system")),
    ],
)
def test_names_and_numpys_own_constructor_pass(tmp_path: Path, body: bytes) -> None:
    assert _serious(_scan(tmp_path, _pickle(body))) == []


def test_tensor_with_python_attributes_is_clean(tmp_path: Path) -> None:
    # torch.save of a tensor with attributes writes _rebuild_from_type_v2(_rebuild_tensor_v2,..)
    tensor = torch.ones(2)
    tensor.note = "attribute"  # type: ignore[attr-defined]
    findings = _scan(tmp_path, pickle.dumps(tensor, protocol=2))
    assert _serious(findings) == []
    assert "torch._tensor._rebuild_from_type_v2" in (findings[-1].evidence or "")


def test_every_modelled_reconstructor_is_importable_without_a_finding() -> None:
    from verifier.scanners.pickle_globals import GlobalClass, classify

    for full in MODELLED:
        module, name = full.rsplit(".", 1)
        assert classify(module, name) is GlobalClass.SAFE, full


# --- Python 2 names -------------------------------------------------------------------------


def test_python2_names_are_read_as_the_unpickler_reads_them(tmp_path: Path) -> None:
    # Protocol 2 writes range as __builtin__.xrange and fix_imports maps it back.
    findings = _scan(tmp_path, pickle.dumps([range(3), 2**70], protocol=2))
    assert _serious(findings) == []
    assert "builtins.range" in (findings[-1].evidence or "")


@pytest.mark.parametrize(
    ("proto", "expected"),
    [(b"", "subprocess.getoutput"), (b"\x80\x02", "subprocess.getoutput")],
)
def test_python2_module_names_map_to_what_is_imported(
    tmp_path: Path, proto: bytes, expected: str
) -> None:
    data = proto + _global("commands", "getoutput") + b"(" + b"S'id'\n" + b"tR."
    findings = _scan(tmp_path, data)
    assert ("PICKLE-DANGEROUS-GLOBAL", expected) in _serious(findings)


def test_from_protocol_3_names_are_imported_as_written(tmp_path: Path) -> None:
    # fix_imports applies below protocol 3 only: itertools.imap is then imported as written.
    data = _pickle(_call(_global("itertools", "imap"), _str("x")))
    assert ("PICKLE-UNKNOWN-GLOBAL", "itertools.imap") in _serious(_scan(tmp_path, data))
    low = b"\x80\x02" + _global("itertools", "imap") + b"(" + _str("x") + b"tR."
    assert ("PICKLE-UNKNOWN-GLOBAL", "builtins.map") in _serious(_scan(tmp_path, low))
