"""Re-scans for a new scanner version read the verified bytes from the blob stores (this
host's folder, then the shared S3 store) and ask the Hub nothing; with `rescan_from_hub`
(`verifier serve --rescan-from-hub`) they ask the Hub for what the stores do not hold. Every
file a scan verified is shared, so a host that never scanned a model re-scans it from S3."""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.blobs.test_s3 import WEIGHTS, s3  # noqa: F401 - the S3 fixture
from tests.hub_emulator import HubEmulator, git_blob_sha1
from tests.service.conftest import Api
from tests.service.test_dashboard import log_in
from tests.service.test_upkeep import serving
from tests.sources.test_huggingface import model_files
from verifier import __version__
from verifier.blobs import BlobStoreError, open_blob_store
from verifier.blobs.folder import HostFolder
from verifier.blobs.local import take
from verifier.model import DeclaredFile
from verifier.pipeline import HubOptions
from verifier.service import upkeep
from verifier.service.jobs import JobContext, JobOutcome, run_scan_job
from verifier.service.model import Role
from verifier.service.upkeep import run_pass
from verifier.sources.quarantine import verified_blob


def _file_requests(hub: HubEmulator, since: int) -> list[tuple[str, str]]:
    """Requests for file bytes or file metadata (resolve, or the CDN) after `since`."""
    return [
        (method, path)
        for method, path in hub.requests[since:]
        if "/resolve/" in path or path.startswith("/lfs/")
    ]


def _as_older_version(api: Api, scan_id: str) -> None:
    with api.service.store._engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE scans SET tool_version = '0.0.1' WHERE id = :id"), {"id": scan_id}
        )


def _rescan(api: Api, subject: str) -> dict[str, object]:
    """One upkeep pass (which queues the re-scan), run; the newest scan's document."""
    done = run_pass(api.service, poll=True, deliver=False)
    assert done is not None
    assert [r["target"] for r in done.rescans] == [subject]
    assert done.rescans_held == []
    api.service.runner.drain()
    return _newest_scan(api, subject)


def _newest_scan(api: Api, subject: str) -> dict[str, object]:
    model = api.call("GET", f"/api/v1/models/{subject.removeprefix('hf://')}")
    assert model.status_code == 200, model.text
    scan: dict[str, object] = model.json()["scan"]
    return scan


def test_a_rescan_by_default_reads_every_file_from_the_host_folder_and_asks_the_hub_nothing(
    database_url: str, hub: HubEmulator, isolated_home: Path
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url) as api:  # the defaults: on, kept bytes only
        first = api.scan(subject)
        assert first["status"] == "complete"
        assert _file_requests(hub, 0)  # the first scan fetched from the Hub
        _as_older_version(api, str(first["scan_id"]))
        since = len(hub.requests)
        scan = _rescan(api, subject)
        assert scan["scan_id"] != first["scan_id"]
        assert scan["tool"] == {"name": "verifier", "version": __version__}
        assert scan["status"] == "complete" and scan["decision"] == "allow"
        # Not one request of any kind reached the Hub (or its CDN): no model info, no file.
        assert hub.requests[since:] == []
        assert sorted(f["path"] for f in scan["files"]) == sorted(files)  # type: ignore[attr-defined]
        for entry in scan["files"]:  # type: ignore[attr-defined]
            assert entry["sha256"] == hashlib.sha256(files[entry["path"]]).hexdigest()
        # The facts the Hub gave the first scan are those of the re-scan.
        before = api.service.store.get_scan(str(first["scan_id"]))
        after = api.service.store.get_scan(str(scan["scan_id"]))
        assert after.declared_files == before.declared_files
        assert after.provenance is not None and before.provenance is not None
        assert after.provenance.lineage == before.provenance.lineage
        assert after.provenance.license == before.provenance.license
        assert (after.source["repo_id"], after.source["commit"]) == ("acme/tiny", commit)


def test_a_rescan_of_a_banned_model_is_denied_by_the_ban_and_changes_no_decision(
    database_url: str, hub: HubEmulator, isolated_home: Path
) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url) as api:
        first = api.scan(subject)
        assert first["result"]["decision"] == "allow"
        body = {"kind": "publisher", "value": "acme", "reason": "sanctioned"}
        made = api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=body)
        assert made.status_code == 201, made.text
        _as_older_version(api, str(first["scan_id"]))
        scan = _rescan(api, subject)
        assert scan["scan_id"] != first["scan_id"]
        # The re-scan decides with the ban in force: it is the decision the gate answers from.
        assert scan["decision"] == "deny"
        gate = api.call("GET", f"/api/v1/decision?target={subject}", role=Role.VIEWER).json()
        assert (gate["decision"], gate["scan_id"]) == ("deny", scan["scan_id"])
        assert [r["message"] for r in gate["reasons"] if r["rule_id"] == "(ban)"] == [
            "banned publisher acme: sanctioned"
        ]
        changes = api.call("GET", "/api/v1/decision-changes", role=Role.VIEWER).json()
        # The ban's change only: the re-scan decided as the decision before it did.
        assert [(c["previous"], c["decision"], c["cause"]) for c in changes["changes"]] == [
            ("allow", "deny", "ban")
        ]


def test_a_model_whose_bytes_are_not_kept_is_held_with_the_reason_not_skipped_silently(
    database_url: str,
    hub: HubEmulator,
    isolated_home: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url) as api:
        first = api.scan(subject)
        _as_older_version(api, str(first["scan_id"]))
        verified_blob(isolated_home, hashlib.sha256(files[WEIGHTS]).hexdigest()).unlink()
        since = len(hub.requests)
        for _ in range(2):  # held on every pass, not asked for once and forgotten
            done = run_pass(api.service, poll=True, deliver=False)
            assert done is not None and done.rescans == []
            [held] = done.rescans_held
            assert (held.target, held.tool_version) == (subject, "0.0.1")
            assert WEIGHTS in held.reason and "not kept" in held.reason
            assert held.document()["reason"] == held.reason
        assert hub.requests[since:] == []
        assert _newest_scan(api, subject)["scan_id"] == first["scan_id"]  # it stands
        with caplog.at_level(logging.WARNING, logger="verifier.service.upkeep"):
            upkeep._log_failed(done)
        assert subject in caplog.text and "--rescan-from-hub" in caplog.text
    # The operator lets re-scans fetch what is not kept: the Hub serves the weights.
    with serving(database_url, rescan_from_hub=True) as api:
        scan = _rescan(api, subject)
        assert scan["status"] == "complete" and scan["decision"] == "allow"
        fetched = {path.rsplit("/", 1)[-1] for _, path in _file_requests(hub, since)}
        assert fetched == {WEIGHTS}
        asked = api.service.records.jobs_requested_by(f"rescan:{__version__}:hub")
        assert set(asked) == {subject}


def test_a_rescan_whose_bytes_went_missing_after_it_was_queued_fails_and_the_scan_stands(
    database_url: str, hub: HubEmulator, isolated_home: Path
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url) as api:
        first = api.scan(subject)
        _as_older_version(api, str(first["scan_id"]))
        runner = api.service.runner
        api.service.runner = _Later()  # type: ignore[assignment]
        try:
            done = run_pass(api.service, poll=True, deliver=False)
        finally:
            api.service.runner = runner
        assert done is not None
        [queued] = done.rescans
        verified_blob(isolated_home, hashlib.sha256(files[WEIGHTS]).hexdigest()).unlink()
        since = len(hub.requests)
        context = JobContext(
            store=api.service.store, policies=api.service.policies, hub=HubOptions()
        )
        assert run_scan_job(context, str(queued["job"])) is JobOutcome.DONE
        job = api.service.job_document(str(queued["job"]))
        assert job["status"] == "failed"
        assert WEIGHTS in str(job["error"]) and "kept" in str(job["error"])
        assert hub.requests[since:] == []
        assert _newest_scan(api, subject)["scan_id"] == first["scan_id"]


class _Later:
    """A job queue that leaves the jobs queued (the test runs them when it chooses)."""

    def enqueue(self, connection: object, job_id: str) -> None:
        """Nothing: the row is the queue."""

    def committed(self, job_id: str) -> None:
        """Nothing yet."""


def test_a_rescan_from_the_hub_falls_back_to_it_for_what_the_folder_lacks_or_got_wrong(
    database_url: str, hub: HubEmulator, isolated_home: Path
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url, rescan_from_hub=True) as api:
        first = api.scan(subject)
        _as_older_version(api, str(first["scan_id"]))
        # The weights are gone from the folder; the config holds other bytes under its name.
        weights = verified_blob(isolated_home, hashlib.sha256(files[WEIGHTS]).hexdigest())
        weights.unlink()
        config = verified_blob(isolated_home, hashlib.sha256(files["config.json"]).hexdigest())
        config.chmod(0o644)
        config.write_bytes(b'{"model_type": "evil", "hidden_size": 4}')
        since = len(hub.requests)
        scan = _rescan(api, subject)
        assert scan["status"] == "complete" and scan["decision"] == "allow"
        fetched = {path.rsplit("/", 1)[-1] for method, path in _file_requests(hub, since)}
        assert fetched == {WEIGHTS, "config.json"}
        assert not [f for f in scan["findings"] if "MISMATCH" in str(f)]  # type: ignore[attr-defined]
        # What the Hub served was verified and kept again, in place of the wrong bytes.
        assert config.read_bytes() == files["config.json"]
        assert weights.read_bytes() == files[WEIGHTS]


def test_a_rescan_on_a_host_that_never_scanned_the_model_reads_every_file_from_s3(
    s3: str,  # noqa: F811 - the fixture
    database_url: str,
    hub: HubEmulator,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url, blob_store_url=s3) as api:  # host A
        first = api.scan(subject)
        assert first["status"] == "complete"
        _as_older_version(api, str(first["scan_id"]))
    # Every file the scan verified is in S3 under the SHA-256 it measured, small git files too.
    store = open_blob_store(s3)
    assert store is not None
    for data in files.values():
        assert store.has(hashlib.sha256(data).hexdigest())
    # Host B: the same database and S3 store, the defaults, a VERIFIER_HOME of its own (empty).
    host_b = tmp_path / "host-b"
    monkeypatch.setenv("VERIFIER_HOME", str(host_b))
    with serving(database_url, blob_store_url=s3) as api:
        since = len(hub.requests)
        scan = _rescan(api, subject)
        assert scan["scan_id"] != first["scan_id"]
        assert scan["status"] == "complete" and scan["decision"] == "allow"
        assert hub.requests[since:] == []  # not one request of any kind reached the Hub
        for entry in scan["files"]:  # type: ignore[attr-defined]
            assert entry["sha256"] == hashlib.sha256(files[entry["path"]]).hexdigest()
    for data in files.values():  # taken into B's own folder, verified on the way
        assert verified_blob(host_b, hashlib.sha256(data).hexdigest()).read_bytes() == data


def test_a_small_file_s3_holds_other_bytes_for_fails_the_rescan_and_the_scan_stands(
    s3: str,  # noqa: F811 - the fixture
    hub: HubEmulator,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    with serving(database_url, blob_store_url=s3) as api:
        first = api.scan(subject)
        _as_older_version(api, str(first["scan_id"]))
    # A poisoned object under the config's name (same size, so only the digests tell).
    sha = hashlib.sha256(files["config.json"]).hexdigest()
    poison = files["config.json"].replace(b"tiny", b"evil")
    store = open_blob_store(s3)
    assert store is not None and len(poison) == len(files["config.json"])
    store.put(sha, io.BytesIO(poison), size=len(poison))
    monkeypatch.setenv("VERIFIER_HOME", str(tmp_path / "host-b"))
    with serving(database_url, blob_store_url=s3) as api:
        since = len(hub.requests)
        done = run_pass(api.service, poll=True, deliver=False)
        assert done is not None
        [queued] = done.rescans  # present in the store: queued; its bytes are checked on arrival
        api.service.runner.drain()
        job = api.service.job_document(str(queued["job"]))
        assert job["status"] == "failed"
        assert "config.json" in str(job["error"]) and "kept" in str(job["error"])
        assert hub.requests[since:] == []
        assert _newest_scan(api, subject)["scan_id"] == first["scan_id"]
    assert not verified_blob(tmp_path / "host-b", sha).exists()


def _declared_git(data: bytes) -> DeclaredFile:
    return DeclaredFile(
        path="config.json", size=len(data), sha256=None, git_sha1=git_blob_sha1(data), lfs=False
    )


def test_a_file_outside_lfs_is_taken_only_with_both_digests(tmp_path: Path) -> None:
    data = b'{"model_type": "tiny"}'
    sha = hashlib.sha256(data).hexdigest()
    folder = HostFolder(tmp_path / "home")
    kept = verified_blob(folder.home, sha)
    kept.parent.mkdir(parents=True)
    kept.write_bytes(data)
    landed = tmp_path / "landed"
    declared = _declared_git(data)
    # Without the recorded SHA-256 there is nothing to look it up by.
    assert not take(folder, declared, landed) and not landed.exists()
    assert take(folder, declared, landed, sha256=sha)
    assert landed.read_bytes() == data
    landed.unlink()
    # Bytes under the right SHA-256 name whose git blob id is not the declared one.
    other = _declared_git(b'{"model_type": "tinY"}')
    assert not take(folder, other, landed, sha256=sha) and not landed.exists()


def test_the_host_folder_reads_regular_files_only(tmp_path: Path) -> None:
    folder = HostFolder(tmp_path / "home")
    data = b"weights"
    sha = hashlib.sha256(data).hexdigest()
    target = tmp_path / "elsewhere"
    target.write_bytes(data)
    link = verified_blob(folder.home, sha)
    link.parent.mkdir(parents=True)
    os.symlink(target, link)
    assert not folder.has(sha)
    landed = tmp_path / "landed"
    declared = DeclaredFile(path=WEIGHTS, size=len(data), sha256=sha, git_sha1=None, lfs=True)
    assert not take(folder, declared, landed)
    with pytest.raises(BlobStoreError, match="takes only"):
        folder.put(sha, io.BytesIO(data), size=len(data))


HOSTILE_NAME = "<img src=x onerror=alert(1)>.txt"


def _rescans(api: Api, query: str = "") -> dict[str, Any]:
    response = api.call("GET", f"/api/v1/rescans{query}", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _states(answer: dict[str, Any]) -> dict[str, str]:
    return {entry["target"].split("@")[0]: entry["state"] for entry in answer["rescans"]}


def test_operators_see_where_each_rescan_stands_in_the_api_and_the_dashboard(
    database_url: str, hub: HubEmulator, isolated_home: Path
) -> None:
    subjects = {}
    for name, fill in (("acme/held", 1), ("acme/done", 2), ("acme/failed", 3)):
        files = model_files(fill=fill)
        if name == "acme/held":
            files[HOSTILE_NAME] = b"a file with a hostile name"
        subjects[name] = f"hf://{name}@{hub.add_repo(name, files).refs['main']}"
    with serving(database_url) as api:
        for subject in subjects.values():
            _as_older_version(api, str(api.scan(subject)["scan_id"]))
        hostile = hashlib.sha256(b"a file with a hostile name").hexdigest()
        verified_blob(isolated_home, hostile).unlink()
        since = len(hub.requests)
        answer = _rescans(api)
        assert (answer["version"], answer["from_hub"], answer["per_pass"]) == (
            __version__,
            False,
            10,
        )
        assert (answer["examined"], answer["truncated"]) == (3, False)
        assert _states(answer) == {
            "hf://acme/held": "held",
            "hf://acme/done": "waiting",
            "hf://acme/failed": "waiting",
        }
        [held] = [e for e in answer["rescans"] if e["state"] == "held"]
        assert HOSTILE_NAME in held["reason"] and held["tool_version"] == "0.0.1"
        assert held["target"] == subjects["acme/held"] and held["job"] is None
        assert _states(_rescans(api, "?state=held")) == {"hf://acme/held": "held"}
        first = _rescans(api, "?limit=1")
        assert (first["examined"], first["truncated"], len(first["rescans"])) == (1, True, 1)
        assert api.call("GET", "/api/v1/rescans?state=lost").status_code == 422
        # The dashboard's audit page lists the held one, every string escaped.
        assert log_in(api.client, api.tokens[Role.VIEWER]).status_code == 303
        page = api.client.get("/dashboard/audit")
        assert page.status_code == 200
        section = page.text.split('id="rescans-held"', 1)[1]
        assert subjects["acme/held"] in section and "&lt;img src=x onerror=alert(1)&gt;" in section
        assert "<td>scanner</td>" in section  # why it needs a re-scan
        assert "<img" not in page.text
        assert subjects["acme/done"] not in section
        # A pass queues the two whose bytes are kept.
        runner = api.service.runner
        api.service.runner = _Later()  # type: ignore[assignment]
        try:
            done = run_pass(api.service, poll=True, deliver=False)
        finally:
            api.service.runner = runner
        assert done is not None and len(done.rescans) == 2
        queued = _rescans(api)
        assert _states(queued)["hf://acme/done"] == "queued"
        jobs = {e["target"].split("@")[0]: e["job"] for e in queued["rescans"]}
        assert {str(q["job"]) for q in done.rescans} == {
            jobs["hf://acme/done"],
            jobs["hf://acme/failed"],
        }
        weights = hashlib.sha256(model_files(fill=3)[WEIGHTS]).hexdigest()
        verified_blob(isolated_home, weights).unlink()
        context = JobContext(
            store=api.service.store, policies=api.service.policies, hub=HubOptions()
        )
        for name in ("acme/done", "acme/failed"):
            assert run_scan_job(context, jobs[f"hf://{name}"]) is JobOutcome.DONE
        after = _rescans(api)
        assert _states(after) == {
            "hf://acme/held": "held",
            "hf://acme/done": "done",
            "hf://acme/failed": "failed",
        }
        entries = {e["target"].split("@")[0]: e for e in after["rescans"]}
        assert entries["hf://acme/done"]["tool_version"] == __version__
        assert WEIGHTS in entries["hf://acme/failed"]["reason"]
        assert hub.requests[since:] == []  # the route, the page and the pass asked the Hub nothing
