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
#: Where a character outside the Basic Multilingual Plane may be: a UTF-8 lead byte of four, or
#: a JSON escape of a high surrogate. Python holds a string at four bytes a character once one
#: of its characters is such (an escaped `\\ud83d` can match too: counted, to be safe).
_WIDE_MARK = re.compile(rb"[\xf0-\xf4]|\\u[dD][89abAB]")
#: A four-byte UTF-8 sequence not right after a backslash (a backslash and the character is an
#: invalid escape; rewritten, it would read as an escaped backslash and a valid escape). The
#: lookbehind sits after the lead byte so the regex engine can skip to lead bytes at C speed.
_WIDE_UTF8 = re.compile(rb"[\xf0-\xf4](?<!\\[\xf0-\xf4])[\x80-\xbf]{3}")
_WIDE_LEADS = tuple(bytes([lead]) for lead in range(0xF0, 0xF5))


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
    #: Bytes that strings holding such a character may take once parsed (four a character;
    #: None: not counted).
    max_wide_strings: int | None = None


#: Caps for small trust inputs: lockfiles, signature bundles, attestations, statements.
TRUST_INPUT = JsonLimits(max_bytes=16 * 1024 * 1024, max_depth=64, max_nodes=1_000_000)
#: Caps for a model's JSON files (config.json, tokenizer_config.json, ...).
#: No string in a real config or tokenizer comes near 4 MiB: the largest seen are SentencePiece
#: `precompiled_charsmap` blobs (under 1 MB of base64) and chat templates (tens of KB).
#: A real tokenizer's wide strings are its emoji and rare-script tokens: a few bytes each.
MODEL_CONFIG = JsonLimits(
    max_bytes=64 * 1024 * 1024,
    max_depth=128,
    max_nodes=2_000_000,
    max_string=4 * 1024 * 1024,
    max_wide_strings=32 * 1024 * 1024,
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
    wide = limits.max_wide_strings is not None and _WIDE_MARK.search(raw) is not None
    marked: list[tuple[int, int]] = []  # windows that may hold wide strings
    for start, end, bare in _windows(raw, window=window, max_string=limits.max_string):
        if wide and _WIDE_MARK.search(raw, start, end):
            marked.append((start, end))
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
    if limits.max_wide_strings is not None:
        _check_wide_strings(raw, marked, limits.max_wide_strings)


def _check_wide_strings(raw: bytes | bytearray, marked: list[tuple[int, int]], cap: int) -> None:
    """Refuse when strings holding a character outside the BMP would take over `cap` bytes.

    Four bytes a byte of every marked window bounds them; only when that bound is over the cap
    are the strings of those windows measured one by one (a Python step per string).
    """
    if 4 * sum(end - start for start, end in marked) <= cap:
        return
    held = 0
    for start, end in marked:
        for token in _STRING.finditer(raw, start, end):
            if _WIDE_MARK.search(raw, token.start(), token.end()):
                held += 4 * (token.end() - token.start())
        if held > cap:
            raise JsonLimitError(
                f"strings that would take over {cap} bytes once parsed (four bytes a character"
                " once one character is outside the Basic Multilingual Plane)"
            )


def decode_narrow(raw: bytes | bytearray) -> tuple[str, bool]:
    """UTF-8 JSON text (a BOM allowed), decoded so that Python can hold it narrow.

    One character outside the Basic Multilingual Plane makes Python store a whole text at four
    bytes a character: 60 MB of ASCII with one emoji became 240 MB. Each such character is
    written instead as the JSON escape of its surrogate pair, which `json.loads` reads as the same
    character, inside a string (outside one, both spellings are invalid JSON; right after a
    backslash it is left as it is). Rewritten only when that is smaller. Returns the text and
    whether it was rewritten (offsets in it then no longer match the bytes).

    Raises:
        UnicodeDecodeError: the bytes are not UTF-8.
    """
    count = sum(raw.count(lead) for lead in _WIDE_LEADS)  # at least as many as there are
    # Wide, the text takes 4 bytes a character (each of these is 4 bytes and 1 character);
    # rewritten, each of these 4 bytes becomes 12 characters, and no character takes over 2.
    if count == 0 or 2 * (len(raw) + 8 * count) >= 4 * (len(raw) - 3 * count):
        return raw.decode("utf-8-sig"), False
    return _WIDE_UTF8.sub(_escape_wide, raw).decode("utf-8-sig"), True


def _escape_wide(match: re.Match[bytes]) -> bytes:
    try:
        code = ord(match.group().decode("utf-8")) - 0x10000
    except UnicodeDecodeError:  # overlong or past U+10FFFF: left for the decoder to refuse
        return match.group()
    return b"\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))


def _blanked(
    raw: bytes | bytearray, *, window: int = _WINDOW, max_string: int | None = None
) -> Iterator[bytes | bytearray]:
    """`raw` in consecutive windows, each string replaced by `0` (see `_windows`)."""
    for _, _, bare in _windows(raw, window=window, max_string=max_string):
        yield bare


def _windows(
    raw: bytes | bytearray, *, window: int = _WINDOW, max_string: int | None = None
) -> Iterator[tuple[int, int, bytes | bytearray]]:
    """`raw` in consecutive windows of about `window` bytes: (start, end, the window with each
    string replaced by `0`).

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
            yield pos, end, part
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
        yield pos, end, bare
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
