"""Differential tests: generated containers, the real loader as the oracle.

Hypothesis builds tar archives, zips and compressed streams from header fields, names, lengths
and stream counts, with a marker-only payload somewhere. The real loader reads each in a
subprocess (`loader_oracle.py`); a test fails when the loader runs the payload and the scanner
neither reported its callable nor refused the container. CI runs DIFF_EXAMPLES (default 20)
per test; a longer campaign:
`DIFF_EXAMPLES=2000 pytest tests/scanners/test_container_differential.py`.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import pickle
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.corpus.container_bypasses import (
    bad_checksum_block,
    pax_records,
    payload,
    plain_zip,
    tar_header,
    zip64_locator_elsewhere,
    zlib_with_empty_blocks,
)
from tests.scanners.oracle_client import LoaderOracle
from tests.scanners.test_container_bypasses import reports_payload, scan_bytes

EXAMPLES = int(os.environ.get("DIFF_EXAMPLES", "20"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoaderOracle]:
    runner = LoaderOracle(tmp_path_factory.mktemp("oracle"))
    yield runner
    runner.close()


def check(oracle: LoaderOracle, build: object, loaders: tuple[str, ...]) -> None:
    """Build with a fresh marker folder per loader; a loader that runs it must be matched."""
    for loader in loaders:
        marker_dir = oracle.marker_dir()
        data = build(marker_dir)  # type: ignore[operator]
        answer = oracle.ask(data, loader, marker_dir)
        if answer.ran:
            findings = scan_bytes(data)
            assert reports_payload(findings), (loader, sorted({f.code for f in findings}), data)


# --- tar ----------------------------------------------------------------------------------------

_NAMES = st.sampled_from([b"storages", b"tensors", b"pickle", b"a.pkl", b"dir/", b"x/pickle"])
_KINDS = st.sampled_from([b"0", b"\0", b"7", b"5", b"2", b"1", b"Z", b"3"])
_CONTENTS = st.sampled_from(["payload", "benign", "storages", "tensors", "noise"])
_SIZES = st.sampled_from(["exact", 0, 512, 1024, "minus", "plus"])


@st.composite
def tar_entries(draw: st.DrawFn) -> list[dict[str, object]]:
    entries = []
    for _ in range(draw(st.integers(1, 5))):
        entries.append(
            {
                "name": draw(_NAMES),
                "kind": draw(_KINDS),
                "content": draw(_CONTENTS),
                "pax": draw(st.sampled_from([None, "x", "g"])),
                "pax_size": draw(_SIZES),
                "ustar_size": draw(_SIZES),
                "longname": draw(st.booleans()),
                "bad_checksum": draw(st.integers(0, 9)) == 0,
            }
        )
    return entries


def _content(kind: object, m: Path) -> bytes:
    if kind == "payload":
        return payload(m)
    if kind == "storages":
        return pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2)
    if kind == "tensors":
        return pickle.dumps(0, protocol=2)
    if kind == "benign":
        return pickle.dumps({"w": [1, 2]}, protocol=2)
    return bytes(range(40))


def _size(spec: object, real: int) -> int:
    if spec == "exact":
        return real
    if spec == "minus":
        return max(0, real - 7)
    if spec == "plus":
        return real + 7
    assert isinstance(spec, int)
    return spec


def build_tar(entries: list[dict[str, object]], cut: int | None, lead: bool, m: Path) -> bytes:
    out = b""
    if lead:  # a first block tarfile rejects, a pickle at offset 0 (torch's fallback)
        out += bad_checksum_block(payload(m, protocol=0))
    for entry in entries:
        data = _content(entry["content"], m)
        name = entry["name"]
        assert isinstance(name, bytes)
        if entry["pax"]:
            records = pax_records({"size": str(_size(entry["pax_size"], len(data)))})
            kind = b"x" if entry["pax"] == "x" else b"g"
            out += tar_header(b"././@PaxHeader", len(records), kind=kind)
            out += records + bytes(-len(records) % 512)
        if entry["longname"]:
            long = name + b"\0"
            out += tar_header(b"././@LongLink", len(long), kind=b"L")
            out += long + bytes(-len(long) % 512)
            name = b"short"
        ustar = _size(entry["ustar_size"], len(data))
        kind = entry["kind"]
        assert isinstance(kind, bytes)
        out += tar_header(name, ustar, kind=kind, good_checksum=not entry["bad_checksum"])
        out += data + bytes(-len(data) % 512)
    out += bytes(1024)
    return out[:cut] if cut is not None else out


@SETTINGS
@given(
    entries=tar_entries(),
    cut=st.none() | st.integers(1, 6000),
    lead=st.integers(0, 5).map(lambda n: n == 0),
)
def test_tar_variants_match_tarfile_and_torch(
    oracle: LoaderOracle, entries: list[dict[str, object]], cut: int | None, lead: bool
) -> None:
    check(oracle, lambda m: build_tar(entries, cut, lead, m), ("torch", "tar-members"))


# --- zip ----------------------------------------------------------------------------------------


@st.composite
def zip_variants(draw: st.DrawFn) -> dict[str, object]:
    return {
        "names": draw(
            st.lists(
                st.sampled_from(
                    ["archive/data.pkl", "archive/version", "archive/data/0", "x.pkl", "../y"]
                ),
                min_size=1,
                max_size=4,
            )
        ),
        "payload_at": draw(st.integers(0, 3)),
        "prepend": draw(st.sampled_from([0, 0, 7, 100])),
        "append": draw(st.sampled_from([0, 0, 5, 300])),
        "locator": draw(st.booleans()),
        "rename": draw(st.booleans()),
    }


def build_zip(spec: dict[str, object], m: Path) -> bytes:
    names = spec["names"]
    assert isinstance(names, list)
    files = {}
    for index, name in enumerate(names):
        data = payload(m) if index == spec["payload_at"] else pickle.dumps({"i": index})
        files[name] = b"3\n" if name.endswith("version") else data
    if spec["locator"]:
        out = zip64_locator_elsewhere(pickle.dumps({"w": 1}, protocol=2), payload(m))
    else:
        out = plain_zip(files)
    if spec["rename"]:  # the local header's name differs from the directory's
        out = out.replace(b"archive/data.pkl", b"archive/data.pkX", 1)
    prepend, append = spec["prepend"], spec["append"]
    assert isinstance(prepend, int) and isinstance(append, int)
    return b"J" * prepend + out + b"T" * append


@SETTINGS
@given(spec=zip_variants())
def test_zip_variants_match_zipfile_and_torch(
    oracle: LoaderOracle, spec: dict[str, object]
) -> None:
    check(oracle, lambda m: build_zip(spec, m), ("torch", "zip-members"))


# --- compressed streams -------------------------------------------------------------------------

_COMPRESS = {
    "gzip": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zlib": zlib.compress,
}
_LOADERS = {
    "gzip": ("gzip", "joblib"),
    "bz2": ("bz2", "joblib"),
    "xz": ("lzma", "joblib"),
    "zlib": ("joblib",),
}


@st.composite
def stream_variants(draw: st.DrawFn) -> dict[str, object]:
    return {
        "kind": draw(st.sampled_from(sorted(_COMPRESS))),
        "splits": draw(st.lists(st.integers(1, 60), max_size=3, unique=True)),
        "lead": draw(st.sampled_from([b"", pickle.dumps([0] * 3, protocol=2)])),
        "padding": draw(st.sampled_from([0, 0, 4, 512])),
        "trailing": draw(st.sampled_from([b"", b"garbage", bytes(8)])),
        "empty_blocks": draw(st.sampled_from([0, 0, 10, 20_000])),
    }


def build_stream(spec: dict[str, object], m: Path) -> bytes:
    kind = spec["kind"]
    assert isinstance(kind, str)
    lead = spec["lead"]
    assert isinstance(lead, bytes)
    data = payload(m) if not lead else lead[:-1] + b"0" + payload(m)  # list, POP, payload
    splits = spec["splits"]
    assert isinstance(splits, list)
    cuts = sorted({c for c in splits if c < len(data)})
    parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    blocks = spec["empty_blocks"]
    assert isinstance(blocks, int)
    if kind == "zlib" and blocks:
        streams = [zlib_with_empty_blocks(parts[0], blocks=blocks)]
        streams += [zlib.compress(p) for p in parts[1:]]
    else:
        streams = [_COMPRESS[kind](p) for p in parts]
    padding = spec["padding"]
    assert isinstance(padding, int)
    trailing = spec["trailing"]
    assert isinstance(trailing, bytes)
    return (bytes(padding) if kind == "gzip" else b"").join(streams) + trailing


def stream_loaders(spec: dict[str, object]) -> tuple[str, ...]:
    """The readers of this stream. joblib's gzip and zlib reader spins for ever on bytes after
    the first stream's end (it never parses them), so it is asked only about single streams."""
    kind = spec["kind"]
    assert isinstance(kind, str)
    splits, trailing, padding = spec["splits"], spec["trailing"], spec["padding"]
    single = not splits and not trailing and not (kind == "gzip" and padding)
    loaders = _LOADERS[kind]
    if kind in ("gzip", "zlib") and not single:
        loaders = tuple(name for name in loaders if name != "joblib")
    return loaders


@SETTINGS
@given(spec=stream_variants())
def test_compressed_variants_match_their_readers(
    oracle: LoaderOracle, spec: dict[str, object]
) -> None:
    check(oracle, lambda m: build_stream(spec, m), stream_loaders(spec))


def test_zip_behind_junk_is_read_as_zipfile_reads_it(oracle: LoaderOracle) -> None:
    spec: dict[str, object] = {
        "names": ["archive/data.pkl"],
        "payload_at": 0,
        "prepend": 7,
        "append": 0,
        "locator": False,
        "rename": False,
    }
    check(oracle, lambda m: build_zip(spec, m), ("zip-members",))
