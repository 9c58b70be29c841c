"""`verifier blobs gc`: the blobs no recorded scan names go (with --yes), after a grace period,
never one a queued or running job may use, from this host's folder and from S3 (moto's server
on loopback)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.blobs.test_s3 import s3  # noqa: F401 - the moto server fixture
from tests.hub_emulator import HubEmulator
from tests.sources.test_huggingface import model_files
from tests.test_schemas import validate_output
from verifier.blobs import open_blob_store
from verifier.blobs.folder import HostFolder
from verifier.blobs.gc import collect, parse_duration
from verifier.blobs.interface import StoredBlob
from verifier.cli import cli
from verifier.errors import UsageError
from verifier.service.model import JobStatus, ScanJob
from verifier.sources.quarantine import verified_blob
from verifier.store import Store
from verifier.store.blob_refs import BlobReferences
from verifier.store.service_records import ServiceRecords

DAY = 24 * 3600


def _home() -> Path:
    return Path(os.environ["VERIFIER_HOME"])


def _put(data: bytes, *, age_days: float = 10) -> str:
    """A blob in this host's folder, as a job that never recorded its scan leaves one."""
    sha256 = hashlib.sha256(data).hexdigest()
    path = verified_blob(_home(), sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    _age(path, age_days)
    return sha256


def _age(path: Path, days: float) -> None:
    when = datetime.now(UTC).timestamp() - days * DAY
    os.utime(path, (when, when))


def _age_all(days: float) -> None:
    for path in (_home() / "blobs" / "sha256").glob("*/*"):
        _age(path, days)


def _gc(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["blobs", "gc", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    validate_output(["blobs", "gc"], document)
    return result.exit_code, document


def _scan_hub_model(hub: HubEmulator) -> str:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    result = CliRunner().invoke(cli, ["scan", f"hf://acme/tiny@{commit}"])
    assert result.exit_code == 0, result.output
    return commit


def test_unreferenced_old_blobs_go_only_with_yes(hub: HubEmulator) -> None:
    _scan_hub_model(hub)
    kept = {p.name for p in (_home() / "blobs" / "sha256").glob("*/*")}
    assert kept, "the scan kept no blob in the folder"
    _age_all(30)
    garbage = _put(b"left by a job that was killed")
    recent = _put(b"stored an hour ago by a running job", age_days=1 / 24)
    stray = _home() / "blobs" / "sha256" / garbage[:2] / f".{garbage}.1234.partial"
    stray.write_bytes(b"a partial download")
    _age(stray, 30)

    _code, dry = _gc()
    [local] = dry["stores"]
    assert dry["dry_run"] is True and local["store"] == str(_home() / "blobs" / "sha256")
    assert local["kept"] == {"referenced": len(kept), "recent": 1, "in_use": 0}
    assert [b["sha256"] for b in local["blobs"]] == [garbage]
    assert local["blobs"][0]["deleted"] is False
    assert verified_blob(_home(), garbage).exists()

    _code, done = _gc("--yes")
    assert [(b["sha256"], b["deleted"]) for b in done["stores"][0]["blobs"]] == [(garbage, True)]
    assert not verified_blob(_home(), garbage).exists()
    assert verified_blob(_home(), recent).exists() and stray.exists()
    assert {p.name for p in (_home() / "blobs" / "sha256").glob("*/*")} == kept | {
        recent,
        stray.name,
    }
    with Store.open(f"sqlite:///{_home() / 'verifier.db'}") as store:
        [event] = ServiceRecords(store).audit_events()
    assert (event.action.value, event.subject, event.detail["deleted"]) == (
        "blobs.collected",
        str(_home() / "blobs" / "sha256"),
        1,
    )


def test_the_table_form_says_what_would_go(hub: HubEmulator) -> None:
    _scan_hub_model(hub)
    garbage = _put(b"garbage")
    result = CliRunner().invoke(cli, ["blobs", "gc"])
    assert result.exit_code == 0, result.output
    assert "would delete 1" in result.output and f"sha256:{garbage}" in result.output
    assert "run with --yes" in result.output


@pytest.mark.parametrize("given", ["30m", "7", "d", "1.5d", "-1d", "99999999d"])
def test_a_bad_grace_period_is_a_usage_error(given: str) -> None:
    result = CliRunner().invoke(cli, ["blobs", "gc", "--older-than", given])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "--older-than" in result.output


def test_durations() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("90m") == timedelta(minutes=90)
    with pytest.raises(UsageError):
        parse_duration("7 days")


def test_a_database_that_records_no_scan_deletes_nothing() -> None:
    garbage = _put(b"a blob of another database")
    result = CliRunner().invoke(cli, ["blobs", "gc", "--yes"])
    assert result.exit_code == 2, result.output
    assert "records no scan" in result.output
    assert verified_blob(_home(), garbage).exists()


def _job(status: JobStatus, *, age_days: float) -> ScanJob:
    at = (datetime.now(UTC) - timedelta(days=age_days)).isoformat()
    return ScanJob(
        job_id=hashlib.md5(f"{status}{age_days}".encode()).hexdigest(),
        target="hf://acme/other",
        policy_name="default",
        policy_digest="d" * 64,
        environment=None,
        status=status,
        requested_by="test",
        created_at=at,
        updated_at=at,
    )


def test_a_blob_stored_since_an_open_job_was_asked_for_is_kept(database_url: str) -> None:
    older = _put(b"stored before the job was asked for", age_days=5)
    since = _put(b"stored by the job, two days ago", age_days=2)
    folder = HostFolder(_home())
    with Store.open(database_url) as store:
        store.record_failed_scan(
            scan_id="f" * 32,
            target="hf://acme/other",
            started_at="2026-01-01T00:00:00+00:00",
            finished_at="2026-01-01T00:00:01+00:00",
            tool_version="0",
            error="a scan, so that the database is not empty",
        )
        ServiceRecords(store).add_job(_job(JobStatus.RUNNING, age_days=3))
        references = BlobReferences(store)
        found = collect(
            folder, references, grace=timedelta(days=1), now=datetime.now(UTC), delete=True
        )
        assert {b.sha256 for b in found.garbage} == found.deleted == {older}
        assert found.kept["recent"] == 1
        assert verified_blob(_home(), since).exists()


def test_a_blob_a_job_holds_is_in_use(database_url: str) -> None:
    held = _put(b"looked up by a running job")
    free = _put(b"nobody's")
    folder = HostFolder(_home())
    with Store.open(database_url) as store:
        store.record_failed_scan(
            scan_id="f" * 32,
            target="hf://acme/other",
            started_at="2026-01-01T00:00:00+00:00",
            finished_at="2026-01-01T00:00:01+00:00",
            tool_version="0",
            error="a scan, so that the database is not empty",
        )
        job = ServiceRecords(store).blob_locks()
        job.hold(held)  # what a job does from its lookup of a blob until it has recorded
        try:
            found = collect(
                folder,
                BlobReferences(store),
                grace=timedelta(days=1),
                now=datetime.now(UTC),
                delete=True,
            )
        finally:
            job.release()
    assert found.kept["in_use"] == 1 and found.deleted == {free}
    assert verified_blob(_home(), held).exists() and not verified_blob(_home(), free).exists()


class RecordedMeanwhile:
    """References where a job records a scan naming `late` after the list was read."""

    def __init__(self, late: str) -> None:
        self.late = late

    def scans(self) -> int:
        return 1

    def referenced(self) -> set[str]:
        return set()

    def is_referenced(self, sha256: str) -> bool:
        return sha256 == self.late

    def oldest_open_job(self) -> datetime | None:
        return None

    @contextmanager
    def held(self, sha256: str) -> Iterator[bool]:
        yield True

    def record_collection(self, *, actor: str, store: str, detail: dict[str, Any]) -> None:
        raise AssertionError("collect itself records no event")


def test_a_blob_recorded_after_the_listing_is_kept() -> None:
    late, gone = _put(b"recorded meanwhile"), _put(b"garbage")
    found = collect(
        HostFolder(_home()),
        RecordedMeanwhile(late),
        grace=timedelta(days=1),
        now=datetime.now(UTC),
        delete=True,
    )
    assert found.kept["referenced"] == 1 and found.deleted == {gone}
    assert verified_blob(_home(), late).exists()


def test_names_a_store_does_not_write_are_never_listed() -> None:
    folder = _home() / "blobs" / "sha256"
    good = _put(b"a blob")
    (folder / "zz").mkdir(parents=True)
    (folder / "zz" / ("a" * 64)).write_bytes(b"wrong shard")
    (folder / good[:2] / (good.upper())).write_bytes(b"upper case")
    os.symlink(folder / good[:2] / good, folder / good[:2] / ("0" * 64))
    listed = [blob.sha256 for blob in HostFolder(_home()).blobs()]
    assert listed == [good]


def test_s3_blobs_are_collected(s3: str, hub: HubEmulator) -> None:  # noqa: F811
    commit = _scan_hub_model(hub)
    shared = open_blob_store(s3)
    assert shared is not None
    with Store.open(f"sqlite:///{_home() / 'verifier.db'}") as store:
        report = store.get_scan(store.list_scans(limit=1)[0].scan_id)
    assert report.target.endswith(commit)
    recorded = [
        f.sha256 for f in report.files if f.sha256 and verified_blob(_home(), f.sha256).exists()
    ]
    assert recorded
    for sha256 in recorded:
        data = verified_blob(_home(), sha256).read_bytes()
        shared.put(sha256, io.BytesIO(data), size=len(data))
    garbage = hashlib.sha256(b"another host's killed job").hexdigest()
    shared.put(garbage, io.BytesIO(b"another host's killed job"), size=25)

    # Just stored: every object is within the grace period, nothing goes.
    _code, now = _gc("--blob-store", s3, "--yes")
    _local, remote = now["stores"]
    assert remote["store"] == s3 and remote["examined"] == len(recorded) + 1
    assert remote["kept"]["recent"] == 1 and remote["blobs"] == []
    assert shared.has(garbage)

    # A month later (the store's clock is the store's: the collection is asked at that time).
    with Store.open(f"sqlite:///{_home() / 'verifier.db'}") as store:
        later = datetime.now(UTC) + timedelta(days=30)
        dry = collect(
            shared, BlobReferences(store), grace=timedelta(days=7), now=later, delete=False
        )
        assert [b.sha256 for b in dry.garbage] == [garbage] and shared.has(garbage)
        done = collect(
            shared, BlobReferences(store), grace=timedelta(days=7), now=later, delete=True
        )
    assert done.deleted == {garbage} and not shared.has(garbage)
    assert all(shared.has(sha256) for sha256 in recorded)
    assert {b.sha256 for b in shared.blobs()} == set(recorded)
    assert isinstance(next(iter(shared.blobs())), StoredBlob)


def test_the_command_and_the_api_keep_blobs_for_the_same_default_grace() -> None:
    from verifier.blobs.gc import DEFAULT_OLDER_THAN
    from verifier.service.collection import CollectRequest

    option = next(p for p in cli.commands["blobs"].commands["gc"].params if p.name == "older_than")  # type: ignore[attr-defined]
    assert option.default == DEFAULT_OLDER_THAN == CollectRequest().older_than
    assert parse_duration(DEFAULT_OLDER_THAN) >= timedelta(days=1)
