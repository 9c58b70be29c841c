"""JSON parsed only after its size, nesting depth and node count are known to be bounded.

`json.loads` recurses once per nesting level (a document nested 100,000 deep raises
RecursionError) and builds every object before anyone can count them (a 198 MB file of empty
lists is 66 million objects). The checks here run first, at C speed, without building
anything: strings are blanked, then bracket pairs are peeled one level per pass, and values
are counted from the separators. The document is read in windows cut between strings, so the
checks hold a few MiB beside it whatever its size (a 90 MB safetensors header of empty lists
peaked at 398 MiB when blanked whole).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: A JSON string token (replaced by `0` before brackets and separators are counted). Unrolled
#: (`[^"\\]*` runs between escapes): the alternation `(?:[^"\\]|\\.)*` made the regex engine keep
#: state per character, about 120 bytes each, so a 60 MB string took 7 GB.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
#: Bytes blanked at a time: `re.sub` holds two pieces per string it replaces, so a window of
#: short strings costs about 80 bytes per byte of window.
_WINDOW = 1 << 20
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


class JsonLimitError(ValueError):
    """A JSON document is over a size, depth or node-count cap (a finding or a usage error)."""


@dataclass(frozen=True)
class JsonLimits:
    """The caps a document must fit before it is parsed."""

    max_bytes: int
    max_depth: int = 64
    max_nodes: int = 1_000_000
    #: Longest string token, in bytes as written (None: only `max_bytes` bounds it). Python
    #: stores a parsed string at four bytes a character once one character is outside the
    #: Basic Multilingual Plane, so one 60 MB string with one emoji cost 583 MiB to parse.
    max_string: int | None = None


#: Caps for small trust inputs: lockfiles, signature bundles, attestations, statements.
TRUST_INPUT = JsonLimits(max_bytes=16 * 1024 * 1024, max_depth=64, max_nodes=1_000_000)
#: Caps for a model's JSON files (config.json, tokenizer_config.json, ...).
#: No string in a real config or tokenizer comes near 4 MiB: the largest seen are SentencePiece
#: `precompiled_charsmap` blobs (under 1 MB of base64) and chat templates (tens of KB).
MODEL_CONFIG = JsonLimits(
    max_bytes=64 * 1024 * 1024, max_depth=128, max_nodes=2_000_000, max_string=4 * 1024 * 1024
)


def check_shape(data: bytes | bytearray | str, limits: JsonLimits) -> None:
    """Refuse a document over `limits` without parsing it.

    Raises:
        JsonLimitError: the document is too large, nested too deep or has too many values.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > limits.max_bytes:
        raise JsonLimitError(f"{len(raw)} bytes, over the cap of {limits.max_bytes}")
    nodes, openers, closers = 1, 0, 0
    brackets: list[bytes] = []
    window = _WINDOW if limits.max_string is None else min(_WINDOW, limits.max_string)
    for bare in _blanked(raw, window=window, max_string=limits.max_string):
        opened = bare.count(b"[") + bare.count(b"{")
        nodes += bare.count(b",") + opened
        if nodes > limits.max_nodes:
            raise JsonLimitError(f"more than {limits.max_nodes} values, over the cap")
        openers += opened
        closers += bare.count(b"]") + bare.count(b"}")
        if closers > openers:
            return  # unbalanced: the parser reports where
        brackets.append(bytes(bare.translate(None, delete=_NOT_BRACKETS)))
    if closers != openers:
        return
    # At most two brackets per value counted above: bounded by the node cap.
    _check_depth(b"".join(brackets), limits.max_depth)


def _blanked(
    raw: bytes | bytearray, *, window: int = _WINDOW, max_string: int | None = None
) -> Iterator[bytes | bytearray]:
    """`raw` in consecutive windows of about `window` bytes, each string replaced by `0`.

    A window is never cut inside a string: strings become `0`, so the first quote left in a
    window opens a string the window cut, and the next window starts at that quote. A string
    longer than a window is therefore always taken whole, where its length is checked against
    `max_string` (callers pass a window no larger than it).

    Raises:
        JsonLimitError: a string is longer than `max_string` bytes.
    """
    pos, size = 0, len(raw)
    while pos < size:
        end = min(size, pos + window)
        part = raw[pos:end]
        if b'"' not in part:
            yield part
            pos = end
            continue
        bare = _STRING.sub(b"0", part)
        cut = bare.find(b'"') if end < size else -1
        if cut == 0:  # a string longer than a window starts here: take it whole
            whole = _STRING.match(raw, pos)
            end = whole.end() if whole else size
            if max_string is not None and end - pos > max_string:
                raise JsonLimitError(f"a string of {end - pos} bytes, over the cap of {max_string}")
            bare = b"0" if whole else _STRING.sub(b"0", raw[pos:end])
        elif cut > 0:  # everything from the quote on is the cut string, unchanged
            end -= len(bare) - cut
            bare = bare[:cut]
        yield bare
        pos = end


def _check_depth(brackets: bytes, max_depth: int) -> None:
    for _ in range(max_depth):
        if not brackets:
            return
        peeled = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if peeled == brackets:
            return  # unbalanced: the parser reports where
        brackets = peeled
    if brackets:
        raise JsonLimitError(f"nested deeper than {max_depth} levels")


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
