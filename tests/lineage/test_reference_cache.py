"""Decoded reference fingerprints kept by a store between scans (`store.fingerprint_cache`)."""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.lineage.conftest import ARCH, KEY
from tests.store.test_store import make_report
from verifier.lineage.attribution import Attribution, RecordedReferences, attribute
from verifier.lineage.fingerprint import Fingerprint
from verifier.model import LineageStatus, ScanStatus, VerifiedLineage
from verifier.store import Store, scan_rows
from verifier.store.fingerprint_cache import FingerprintCache, decoded_bytes
from verifier.store.scan_tables import LINEAGE_KEYS
from verifier.store.sqlite_recorder import SQLiteRecorder, open_recorder

START = datetime(2026, 1, 1, tzinfo=UTC)


def _database(path: Path) -> str:
    """A fresh SQLite store whose lineage key is the tests' `KEY` (the family's prints)."""
    url = f"sqlite:///{path}"
    Store.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(LINEAGE_KEYS.insert().values(id=1, secret=KEY.secret, created_at=START))
    engine.dispose()
    return url


def _record(
    url: str, prints: Mapping[str, Fingerprint], *, ids: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Record one scan per print (repo `acme/NAME`, newest last); their scan ids by name."""
    scan_ids = {}
    ids = ids or {}
    with Store.open(url) as store:
        for n, (name, fingerprint) in enumerate(prints.items()):
            lineage = VerifiedLineage(
                status=LineageStatus.VERIFIED,
                repo_id=f"acme/{name}",
                publisher="acme",
                fingerprint=fingerprint.to_bytes(),
                hidden_size=fingerprint.hidden_size,
            )
            report = dataclasses.replace(
                make_report(ids.get(name), started=START + timedelta(minutes=n)),
                status=ScanStatus.COMPLETE,
                verified_lineage=lineage,
                source={"type": "huggingface", "repo_id": f"acme/{name}"},
            )
            store.record_scan(report)
            scan_ids[name] = report.scan_id
    return scan_ids


def _read(recorded: RecordedReferences) -> list[tuple[str, bool, bytes]]:
    return [(r.label, r.registered_base, r.fingerprint.to_bytes()) for r in recorded.references]


def _outcome(found: Attribution) -> tuple[Any, ...]:
    """Everything an attribution says, without the fingerprints' arrays."""
    return (
        [(v.reference.label, v.match) for v in found.verified_bases],
        [(v.reference.label, v.match) for v in found.related],
        found.declared_matches,
        [v.reference.label for v in found.undeclared_bases],
        found.mismatched_declared,
        found.unverifiable_declared,
        found.compared,
    )


def _attributed(recorded: RecordedReferences, candidate: Fingerprint) -> tuple[Any, ...]:
    return _outcome(
        attribute(
            candidate,
            repo_id="someone/candidate",
            declared=["acme/two"],
            references=recorded.references,
            seed=11,
        )
    )


def test_a_cached_reference_is_the_same_and_attributes_alike(
    family: dict[str, Fingerprint], tmp_path: Path
) -> None:
    url = _database(tmp_path / "verifier.db")
    scan_ids = _record(url, {n: family[n] for n in ("one", "two", "tuned", "merged")})
    with Store.open(url) as store:
        store.register_base(scan_ids["one"])
        cold = store.lineage_references(ARCH.hidden)
        first = _attributed(cold, family["permuted"])  # compared with: must change nothing
        warm = store.lineage_references(ARCH.hidden)
        assert _read(warm) == _read(cold)
        assert all(
            w.fingerprint is c.fingerprint
            for w, c in zip(warm.references, cold.references, strict=True)
        )  # not read again
        again = _attributed(warm, family["permuted"])
        with Store.open(url) as fresh:
            unused = fresh.lineage_references(ARCH.hidden)
            assert not any(
                u.fingerprint is c.fingerprint
                for u, c in zip(unused.references, cold.references, strict=True)
            )
            # Another store's references, never compared with, attribute exactly alike.
            assert again == first == _attributed(unused, family["permuted"])
        # What may change is still read on every scan: a base registered since.
        store.register_base(scan_ids["two"])
        now = store.lineage_references(ARCH.hidden).references
        assert [(r.repo_id, r.registered_base) for r in now] == [
            ("acme/two", True),
            ("acme/one", True),
            ("acme/merged", False),
            ("acme/tuned", False),
        ]
        assert {id(r.fingerprint) for r in now} == {id(r.fingerprint) for r in cold.references}
    assert [label for label, _ in first[0]] == ["acme/one"]  # the permuted copy of its base
    assert first[4] == ("acme/two",)  # declared, compared, not matched
    for reference in warm.references:
        prints = reference.fingerprint
        assert not any(
            a.flags.writeable for a in (prints.gram, *(m.profiles for m in prints.matrices))
        )
        with pytest.raises(ValueError, match="read-only"):
            prints.gram[0, 0] = 0.0


def test_the_sqlite_recorder_keeps_what_it_decoded(
    family: dict[str, Fingerprint], tmp_path: Path
) -> None:
    url = _database(tmp_path / "verifier.db")
    _record(url, {n: family[n] for n in ("one", "two")})
    with Store.open(url) as store:
        expected = _read(store.lineage_references(ARCH.hidden))
    with open_recorder(url) as recorder:
        assert isinstance(recorder, SQLiteRecorder)
        cold = recorder.lineage_references(ARCH.hidden)
        warm = recorder.lineage_references(ARCH.hidden)
        assert _read(cold) == _read(warm) == expected
        assert all(
            w.fingerprint is c.fingerprint
            for w, c in zip(warm.references, cold.references, strict=True)
        )


def test_a_store_never_sees_another_databases_fingerprints(
    family: dict[str, Fingerprint], tmp_path: Path
) -> None:
    # The same scan id in two databases, with different fingerprints (as a copied database
    # could hold): each store, and each SQLite recorder, reads its own, whichever read first.
    first, second = _database(tmp_path / "first.db"), _database(tmp_path / "second.db")
    shared = uuid.uuid4().hex
    _record(first, {"one": family["one"]}, ids={"one": shared})
    _record(second, {"two": family["two"]}, ids={"two": shared})
    for opener in (Store.open, open_recorder):
        with opener(first) as one, opener(second) as two:
            for _ in range(2):
                (mine,) = one.lineage_references(ARCH.hidden).references
                (theirs,) = two.lineage_references(ARCH.hidden).references
                assert (mine.repo_id, theirs.repo_id) == ("acme/one", "acme/two")
                assert mine.fingerprint.to_bytes() == family["one"].to_bytes()
                assert theirs.fingerprint.to_bytes() == family["two"].to_bytes()


def _decoded(fingerprint: Fingerprint) -> Fingerprint:
    """As a store holds it: read back from its record."""
    return Fingerprint.from_bytes(fingerprint.to_bytes())


def _held(cache: FingerprintCache, scan_id: str) -> tuple[str, int] | None:
    found = cache.get(scan_id)
    return None if found is None else (found[0], id(found[1]))


def test_the_byte_bound_evicts_the_least_recently_used(family: dict[str, Fingerprint]) -> None:
    a, b, c = (_decoded(family[n]) for n in ("one", "two", "tuned"))
    size = decoded_bytes(a)
    assert size == decoded_bytes(b) == decoded_bytes(c) > 0
    cache = FingerprintCache(max_bytes=2 * size + size // 2)
    cache.put("a", "acme/a", a)
    cache.put("b", "acme/b", b)
    cache.put("b", "acme/b", b)  # again: counted once
    assert (len(cache), cache.held_bytes) == (2, 2 * size)
    assert _held(cache, "a") == ("acme/a", id(a))  # now the most recently used
    cache.put("c", "acme/c", c)
    assert cache.get("b") is None
    assert (_held(cache, "a"), _held(cache, "c")) == (("acme/a", id(a)), ("acme/c", id(c)))
    assert (len(cache), cache.held_bytes) == (2, 2 * size)
    small = FingerprintCache(max_bytes=size - 1)
    small.put("a", "acme/a", a)  # larger than the whole bound: not kept
    assert (len(small), small.held_bytes, small.get("a")) == (0, 0, None)


def test_a_store_bounded_below_its_references_still_reads_them_all(
    family: dict[str, Fingerprint], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _database(tmp_path / "verifier.db")
    _record(url, {n: family[n] for n in ("one", "two", "tuned")})
    with Store.open(url) as store:
        expected = _read(store.lineage_references(ARCH.hidden))
    one = decoded_bytes(_decoded(family["one"]))
    monkeypatch.setattr(
        "verifier.store.database.FingerprintCache", functools.partial(FingerprintCache, one)
    )
    with Store.open(url) as store:
        assert [_read(store.lineage_references(ARCH.hidden)) for _ in range(3)] == [expected] * 3


def test_concurrent_scans_share_one_store_safely(
    family: dict[str, Fingerprint], tmp_path: Path
) -> None:
    url = _database(tmp_path / "verifier.db")
    names = ("one", "two", "tuned", "merged", "int8", "resized")
    scan_ids = _record(url, {n: family[n] for n in names})
    with Store.open(url) as store:
        store.register_base(scan_ids["two"])
        expected = _read(store.lineage_references(ARCH.hidden))
        outcome = _attributed(store.lineage_references(ARCH.hidden), family["permuted"])
    start = threading.Barrier(8)
    with Store.open(url) as store:

        def scan(_: int) -> tuple[list[tuple[str, bool, bytes]], tuple[Any, ...]]:
            start.wait()
            found = store.lineage_references(ARCH.hidden)
            return _read(found), _attributed(found, family["permuted"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(scan, range(16)))
    assert results == [(expected, outcome)] * 16


def test_a_cache_shared_by_threads_keeps_its_count(family: dict[str, Fingerprint]) -> None:
    prints = [_decoded(family[n]) for n in ("one", "two", "tuned", "merged")]
    size = decoded_bytes(prints[0])
    cache = FingerprintCache(max_bytes=3 * size)
    start = threading.Barrier(8)

    def churn(worker: int) -> None:
        start.wait()
        for n in range(5000):
            scan_id = f"{(worker + n) % 7}"
            cache.get(scan_id)
            cache.put(scan_id, "acme/m", prints[n % len(prints)])

    # Threads switched as often as the interpreter allows, so that an unguarded update of the
    # count or the order (a read, then a write) would interleave.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(churn, range(8)))
    finally:
        sys.setswitchinterval(interval)
    assert cache.held_bytes == len(cache) * size <= 3 * size
    assert len(cache) == 3


def test_rows_of_another_key_are_left_out_when_cached(
    family: dict[str, Fingerprint], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows another store's key made, newer than a genuine one and already decoded: none is a
    # reference, none takes a place under the cap, and nothing cached is fetched again.
    monkeypatch.setattr(scan_rows, "MAX_LINEAGE_REFERENCES", 1)
    genuine = _decoded(family["one"])
    foreign = dataclasses.replace(_decoded(family["two"]), key_id="another-store")
    cache = FingerprintCache()
    for n in range(3):
        cache.put(f"copied-{n}", f"other/copied-{n}", foreign)
    cache.put("genuine", "acme/genuine", genuine)
    rows = [(f"copied-{n}", f"other/copied-{n}", None, "other", False) for n in range(3)]
    rows += [("genuine", "acme/genuine", None, "acme", False)]
    asked: list[Sequence[str]] = []

    def fetch(scan_ids: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        asked.append(list(scan_ids))
        return {}

    for _ in range(2):
        found = scan_rows.lineage_references_chosen(rows, fetch, key_id=KEY.key_id, cache=cache)
        assert [(r.repo_id, id(r.fingerprint)) for r in found.references] == [
            ("acme/genuine", id(genuine))
        ]
    assert asked == []
    # Uncached, the same rows give the same choice (the foreign ones read and refused).
    blobs = {
        row[0]: (row[1], (genuine if row[0] == "genuine" else foreign).to_bytes()) for row in rows
    }
    cold = scan_rows.lineage_references_chosen(
        rows, lambda ids: {i: blobs[i] for i in ids}, key_id=KEY.key_id, cache=FingerprintCache()
    )
    assert [(r.repo_id, r.fingerprint.to_bytes()) for r in cold.references] == [
        ("acme/genuine", genuine.to_bytes())
    ]
