"""The Source seam with a fake backend: every byte any source delivers takes the one read path."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from verifier.file_scan import read_arrival
from verifier.model import ExtraDigest, FileFormat, FileResult, Finding, Severity
from verifier.pipeline import scan_source
from verifier.policy import default_policy_path, load_policy
from verifier.sources.interface import (
    Arrival,
    NoProgress,
    Progress,
    Ready,
    Refused,
    SideFileError,
    Snapshot,
    SnapshotFile,
    Source,
    SourceFacts,
    VerifiedFiles,
)
from verifier.sources.local import LocalArrival, LocalSource, open_regular
from verifier.sources.targets import open_source


@dataclass
class FakeArrival:
    """Bytes in a file, arrived from the fake."""

    entry: SnapshotFile
    location: str
    settled: list[str]
    git_sha1: bool = False
    unreadable_reason: str = "the fake's file could not be read"

    def open(self) -> tuple[int, int]:
        return open_regular(self.location)

    def settle(self, result: FileResult) -> FileResult:
        self.settled.append(result.path)
        note = Finding("FAKE-SETTLED", Severity.INFO, "settled by the fake", file=result.path)
        return replace(result, findings=(*result.findings, note))


@dataclass
class FakeSession:
    items: list[Arrival | Ready | Refused]
    findings: list[Finding] = field(default_factory=list)
    incomplete: bool = False

    def arrivals(self) -> Iterator[Arrival | Ready | Refused]:
        yield from self.items


class FakeSource:
    """A remote source in memory: one download, one reused file, one refused."""

    default_workers = 2

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.settled: list[str] = []
        self.sessions = 0

    def resolve(self) -> Snapshot:
        return Snapshot(
            target="fake://model",
            record={"type": "local", "root": "fake"},
            files=(SnapshotFile("config.json"), SnapshotFile("gone.bin")),
            findings=(Finding("FAKE-RESOLVED", Severity.INFO, "resolved once"),),
        )

    def read_side_file(self, snapshot: Snapshot, entry: SnapshotFile, *, limit: int) -> bytes:
        raise SideFileError("is not here")

    @contextmanager
    def session(
        self,
        snapshot: Snapshot,
        *,
        scan_id: str,
        known: VerifiedFiles | None,
        progress: Progress,
        workers: int | None,
    ) -> Iterator[FakeSession]:
        self.sessions += 1
        data = b'{"model_type": "fake"}'
        (self.folder / "config.json").write_bytes(data)
        arrival = FakeArrival(
            SnapshotFile("config.json"), str(self.folder / "config.json"), self.settled
        )
        reused = FileResult("weights.safetensors", 8, "ab" * 32, None, FileFormat.SAFETENSORS)
        missing = Finding("FAKE-MISSING", Severity.CRITICAL, "not served", file="gone.bin")
        yield FakeSession([arrival, Ready(reused), Refused(missing)])

    def facts(self, snapshot: Snapshot) -> SourceFacts:
        return SourceFacts(findings=(Finding("FAKE-FACT", Severity.INFO, "a fact"),))

    def locations(
        self, snapshot: Snapshot, files: Sequence[FileResult]
    ) -> Mapping[str, str] | None:
        return None


def test_a_fake_source_goes_through_the_one_pipeline(tmp_path: Path) -> None:
    source = FakeSource(tmp_path)
    checked: Source = source  # the fake satisfies the protocol (mypy checks this line)
    report = scan_source(checked, policy=load_policy(default_policy_path()), recorder=None)
    assert source.sessions == 1 and source.settled == ["config.json"]
    by_path = {f.path: f for f in report.files}
    assert list(by_path) == ["config.json", "weights.safetensors"]
    config = by_path["config.json"]
    assert config.format is FileFormat.JSON and config.complete
    assert config.sha256 == hashlib.sha256(b'{"model_type": "fake"}').hexdigest()
    codes = {f.code for f in report.findings}
    assert {"FAKE-RESOLVED", "FAKE-MISSING", "FAKE-FACT", "FAKE-SETTLED"} <= codes
    assert report.target == "fake://model"


class CountingObserver:
    """Sees what the reader hashes, as a signature's extra digests do: counts it."""

    def __init__(self) -> None:
        self.hashed = 0
        self.sha256 = hashlib.sha256()

    def update(self, data: memoryview, /) -> None:
        self.hashed += len(data)
        self.sha256.update(data)

    def digests(self) -> tuple[ExtraDigest, ...]:
        return (ExtraDigest("counted", self.sha256.hexdigest()),)


def bytes_read_by_this_process() -> int | None:
    """What the kernel counts as read by this process (`rchar`), or None off Linux."""
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("rchar:"))


def test_every_byte_is_read_and_hashed_once_by_the_one_reader(tmp_path: Path) -> None:
    # 3 MiB the scanner reads little of; a signature's observer sees every byte; all of it
    # in one pass over the file.
    data = random.Random(7).randbytes(3 * 1024 * 1024)
    (tmp_path / "w.bin").write_bytes(data)
    arrival = FakeArrival(SnapshotFile("w.bin"), str(tmp_path / "w.bin"), [])
    counter = CountingObserver()
    before = bytes_read_by_this_process()
    result = read_arrival(arrival, observers=[counter])
    after = bytes_read_by_this_process()
    assert result.complete and result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert counter.hashed == len(data)  # each byte hashed once, in order
    assert result.extra_digests == (ExtraDigest("counted", result.sha256),)
    if before is not None and after is not None:
        # Read once: a second pass over the file would double this (what a scanner reads
        # by offset, such as a zip's end record, is a few bytes more).
        assert len(data) <= after - before < len(data) * 1.25


def test_an_unreadable_arrival_says_which_source_could_not_read_it(tmp_path: Path) -> None:
    arrival = FakeArrival(SnapshotFile("x.bin"), str(tmp_path / "absent"), [])
    result = read_arrival(arrival)
    assert not result.complete
    assert result.findings[0].code == "FILE-UNREADABLE"
    assert result.findings[0].message.startswith("the fake's file could not be read: ")


def test_targets_name_their_sources(tmp_path: Path) -> None:
    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({}))
    assert type(open_source(str(tmp_path))).__name__ == "LocalSource"
    assert type(open_source(str(snapshot))).__name__ == "HfCacheSnapshotSource"
    assert isinstance(open_source(str(snapshot)), LocalSource)


def test_a_local_source_resolves_once_and_reads_in_place(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    source = LocalSource(str(tmp_path))
    snapshot = source.resolve()
    assert [f.path for f in snapshot.files] == ["a.json"]
    with source.session(
        snapshot, scan_id="x", known=None, progress=NoProgress(), workers=None
    ) as session:
        [arrival] = list(session.arrivals())
    assert isinstance(arrival, LocalArrival)
    assert source.locations(snapshot, []) == {"a.json": str(tmp_path / "a.json")}
    missing = SnapshotFile("x", location=str(tmp_path / "nope"))
    with pytest.raises(SideFileError, match=r"^cannot be read: "):
        source.read_side_file(snapshot, missing, limit=9)
