"""The Source seam with a fake backend: every byte any source delivers takes the one read path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from verifier.file_scan import read_arrival
from verifier.model import FileFormat, FileResult, Finding, Severity
from verifier.pipeline import scan_source
from verifier.policy import default_policy_path, load_policy
from verifier.sources.interface import (
    Arrival,
    Measured,
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
    """Bytes in a file, with digests the fake 'measured' on arrival (or none)."""

    entry: SnapshotFile
    location: str
    measured: Measured | None
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
    """A remote source in memory: one measured download, one reused file, one refused."""

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
        measured = Measured(len(data), hashlib.sha256(data).hexdigest(), None)
        arrival = FakeArrival(
            SnapshotFile("config.json"), str(self.folder / "config.json"), measured, self.settled
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


def test_digests_measured_on_arrival_are_not_measured_again(tmp_path: Path) -> None:
    data = b'{"a": 1}'
    (tmp_path / "c.json").write_bytes(data)
    # A source that measured other digests than the bytes now hold: the reader trusts the
    # measurement (it hashes nothing) and the source's settle compares it with the declaration.
    measured = Measured(len(data), "0" * 64, None)
    arrival = FakeArrival(SnapshotFile("c.json"), str(tmp_path / "c.json"), measured, [])
    result = read_arrival(arrival)
    assert result.sha256 == "0" * 64 and result.format is FileFormat.JSON
    # Unless a signature asks for more digests: then every byte is read and hashed again.
    from verifier.hashing import WholeFileDigest

    again = read_arrival(arrival, observers=[WholeFileDigest("sha256")])
    assert again.sha256 == hashlib.sha256(data).hexdigest()


def test_an_unreadable_arrival_says_which_source_could_not_read_it(tmp_path: Path) -> None:
    arrival = FakeArrival(SnapshotFile("x.bin"), str(tmp_path / "absent"), None, [])
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
    assert isinstance(arrival, LocalArrival) and arrival.measured is None
    assert source.locations(snapshot, []) == {"a.json": str(tmp_path / "a.json")}
    missing = SnapshotFile("x", location=str(tmp_path / "nope"))
    with pytest.raises(SideFileError, match=r"^cannot be read: "):
        source.read_side_file(snapshot, missing, limit=9)
