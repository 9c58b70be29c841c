"""JSON parsed only after its size, nesting depth and node count are known to be bounded.

`json.loads` recurses once per nesting level (a document nested 100,000 deep raises
RecursionError) and builds every object before anyone can count them (a 198 MB file of empty
lists is 66 million objects). The checks here run first, at C speed, without building
anything: strings are blanked, then bracket pairs are peeled one level per pass, and values
are counted from the separators.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

#: A JSON string token (its content is blanked before brackets and separators are counted).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class JsonLimitError(ValueError):
    """A JSON document is over a size, depth or node-count cap (a finding or a usage error)."""


@dataclass(frozen=True)
class JsonLimits:
    """The caps a document must fit before it is parsed."""

    max_bytes: int
    max_depth: int = 64
    max_nodes: int = 1_000_000


#: Caps for small trust inputs: lockfiles, signature bundles, attestations, statements.
TRUST_INPUT = JsonLimits(max_bytes=16 * 1024 * 1024, max_depth=64, max_nodes=1_000_000)
#: Caps for a model's JSON files (config.json, tokenizer_config.json, ...).
MODEL_CONFIG = JsonLimits(max_bytes=64 * 1024 * 1024, max_depth=128, max_nodes=2_000_000)


def check_shape(data: bytes | str, limits: JsonLimits) -> None:
    """Refuse a document over `limits` without parsing it.

    Raises:
        JsonLimitError: the document is too large, nested too deep or has too many values.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > limits.max_bytes:
        raise JsonLimitError(f"{len(raw)} bytes, over the cap of {limits.max_bytes}")
    bare = _STRING.sub(b'""', raw) if b'"' in raw else raw
    nodes = bare.count(b",") + bare.count(b"[") + bare.count(b"{") + 1
    if nodes > limits.max_nodes:
        raise JsonLimitError(f"about {nodes} values, over the cap of {limits.max_nodes}")
    brackets = bare.translate(None, delete=bytes(c for c in range(256) if c not in b"[]{}"))
    for _ in range(limits.max_depth):
        if not brackets:
            return
        peeled = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if peeled == brackets:
            return  # unbalanced: the parser reports where
        brackets = peeled
    if brackets:
        raise JsonLimitError(f"nested deeper than {limits.max_depth} levels")


def loads(data: bytes | str, limits: JsonLimits, **kwargs: Any) -> Any:
    """`json.loads(data, **kwargs)` once `data` fits `limits`.

    Raises:
        JsonLimitError: the document is over a cap (nothing was parsed).
        ValueError: the document is not JSON (json.JSONDecodeError, UnicodeDecodeError).
    """
    check_shape(data, limits)
    try:
        return json.loads(data, **kwargs)
    except RecursionError:  # a depth the peeling could not see (unbalanced text)
        raise JsonLimitError(f"nested deeper than {limits.max_depth} levels") from None
