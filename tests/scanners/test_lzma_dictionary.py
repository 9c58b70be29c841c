"""xz and lzma-alone headers that declare a huge dictionary are refused before it is allocated.

liblzma allocates the dictionary a header declares before it decodes a byte; the scanner's
decoders carry a memory limit (`streams.LZMA_MEMLIMIT`), so such a stream is ARCHIVE-BOMB.
The files are written by Python's `lzma` with a small dictionary, then the header rewritten.
"""

from __future__ import annotations

import lzma
import pickle
import zlib

import pytest

from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding
from verifier.pipeline import scan_stream
from verifier.scanners.budget import MAX_DICTIONARY
from verifier.scanners.sniff import HEAD_SIZE, identify

_CONTENT = pickle.dumps({"weights": list(range(50))}, protocol=2)


def _scan(data: bytes) -> list[Finding]:
    _, findings, _ = scan_stream(BytesScanStream(data), "model.pkl", data[:HEAD_SIZE])
    return findings


def _xz(dict_code: int) -> bytes:
    """An xz stream whose block header's LZMA2 filter declares dictionary code `dict_code`."""
    filters = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 16}]
    data = bytearray(lzma.compress(_CONTENT, format=lzma.FORMAT_XZ, filters=filters))
    block = 12  # after the stream header
    size = (data[block] + 1) * 4
    flags = data[block + 1]
    at = block + 2
    for present in (flags & 0x40, flags & 0x80):  # compressed, uncompressed size varints
        if present:
            while data[at] & 0x80:
                at += 1
            at += 1
    assert data[at : at + 2] == b"\x21\x01"  # filter LZMA2, one property byte
    data[at + 2] = dict_code
    data[block + size - 4 : block + size] = zlib.crc32(data[block : block + size - 4]).to_bytes(
        4, "little"
    )
    return bytes(data)


def _lzma_alone(dict_size: int) -> bytes:
    data = bytearray(lzma.compress(_CONTENT, format=lzma.FORMAT_ALONE))
    data[1:5] = dict_size.to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize(
    "build", [lambda: _xz(16), lambda: _lzma_alone(1 << 20)], ids=["xz", "lzma"]
)
def test_an_ordinary_dictionary_is_read(build: object) -> None:
    data = build()  # type: ignore[operator]
    assert identify(data, len(data)) is FileFormat.COMPRESSED
    assert not [f for f in _scan(data) if f.code in ("ARCHIVE-BOMB", "ARCHIVE-UNSCANNABLE")]


@pytest.mark.parametrize(
    "build", [lambda: _xz(40), lambda: _lzma_alone(1 << 31)], ids=["xz", "lzma"]
)
def test_a_huge_declared_dictionary_is_a_bomb_before_allocation(build: object) -> None:
    data = build()  # type: ignore[operator]
    assert identify(data, len(data)) is FileFormat.COMPRESSED
    bombs = [f for f in _scan(data) if f.code == "ARCHIVE-BOMB"]
    assert bombs and "dictionary" in bombs[0].message


def test_the_real_reader_would_allocate_it() -> None:
    """The oracle: Python's lzma (what joblib and LZMAFile use) has no limit by default, and
    with the scanner's limit refuses the header before decoding."""
    with pytest.raises(lzma.LZMAError, match="Memory usage limit"):
        lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=MAX_DICTIONARY).decompress(_xz(40))
    assert lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(_xz(16)) == _CONTENT
