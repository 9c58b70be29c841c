"""The allowlist starts from torch's own `weights_only` list: drift in torch fails here.

verifier never imports torch; the list is written out in `pickle_globals.py` and compared with
the live one of the torch the tests install. The reconstructors whose safety docs/scanners.md
argues from their code (what they do with their arguments) are pinned by a digest of their
syntax tree: when torch or numpy changes one, re-read it, re-argue the docs, then update it.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable

import numpy.random._pickle as numpy_pickle
import pytest
import torch
import torch._tensor
import torch.serialization
from torch import _weights_only_unpickler as weights_only

from verifier.scanners.pickle_calls import MODELLED
from verifier.scanners.pickle_globals import TORCH_WEIGHTS_ONLY_GLOBALS, GlobalClass, classify


def _classify(full: str) -> GlobalClass:
    module, name = full.rsplit(".", 1)
    return classify(module, name)


def test_written_list_is_torchs_live_allowlist() -> None:
    live = set(weights_only._get_allowed_globals())
    assert sorted(TORCH_WEIGHTS_ONLY_GLOBALS - live) == [], "no longer allowed by torch"
    assert sorted(live - TORCH_WEIGHTS_ONLY_GLOBALS) == [], "newly allowed by torch: argue it"


def test_every_rebuild_function_torch_allows_is_on_the_list() -> None:
    for function in weights_only._tensor_rebuild_functions():
        assert f"torch._utils.{function.__name__}" in TORCH_WEIGHTS_ONLY_GLOBALS


@pytest.mark.parametrize("full", sorted(TORCH_WEIGHTS_ONLY_GLOBALS))
def test_what_torch_allows_is_allowed(full: str) -> None:
    assert _classify(full) is GlobalClass.SAFE


@pytest.mark.parametrize("module", weights_only._blocklisted_modules)
def test_what_torch_blocks_is_dangerous(module: str) -> None:
    assert _classify(f"{module}.system") is GlobalClass.DANGEROUS


def test_torch_serialization_itself_stays_dangerous() -> None:
    # Only the layout lookup is allowed; torch.serialization.load is torch.load.
    assert _classify("torch.serialization._get_layout") is GlobalClass.SAFE
    assert _classify("torch.serialization.load") is GlobalClass.DANGEROUS
    assert _classify("torch.serialization._load") is GlobalClass.DANGEROUS


def _digest(function: Callable[..., object]) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef) or not node.body:
            continue
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            node.body = node.body[1:]  # docstrings may change; code may not
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


ARGUED: list[tuple[Callable[..., object], str]] = [
    # A lookup in a dict torch fills with its own layouts: harmless for any argument.
    (torch.serialization._get_layout, "27447a2b7200e7c6"),
    # Runs func(*args): modelled by the walk (pickle_calls.py).
    (torch._tensor._rebuild_from_type_v2, "021bbaf390369e32"),
    # Run cls() for a class, ctor(x) for a name: modelled by the walk.
    (getattr(numpy_pickle, "__bit_generator_ctor"), "b9acc8e03a91ce65"),
    (getattr(numpy_pickle, "__generator_ctor"), "1e03ad3dfd006884"),
    (getattr(numpy_pickle, "__randomstate_ctor"), "5d91bfe7c9e68354"),
]


@pytest.mark.parametrize(
    ("function", "digest"), ARGUED, ids=[f.__module__ + "." + f.__name__ for f, _ in ARGUED]
)
def test_the_reconstructors_argued_from_their_code_are_unchanged(
    function: Callable[..., object], digest: str
) -> None:
    assert _digest(function) == digest, (
        f"{function.__module__}.{function.__name__} changed: re-read it, re-argue "
        "docs/scanners.md and pickle_calls.py, then update the digest"
    )


def test_every_modelled_reconstructor_is_pinned() -> None:
    pinned = {f"{f.__module__}.{f.__name__}" for f, _ in ARGUED}
    assert pinned >= MODELLED
