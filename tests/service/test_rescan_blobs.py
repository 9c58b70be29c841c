"""Re-scans for a new scanner version read the verified bytes from the blob stores (this
host's folder, then the shared S3 store) and ask the Hub only for what they do not hold."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.blobs.test_s3 import WEIGHTS, s3  # noqa: F401 - the S3 fixture
from tests.hub_emulator import HubEmulator, git_blob_sha1
from tests.service.conftest import Api
from tests.service.test_upkeep import serving
from tests.sources.test_huggingface import model_files
from verifier import __version__
from verifier.blobs import BlobStoreError
from verifier.blobs.folder import HostFolder
from verifier.blobs.local import take
from verifier.model import DeclaredFile
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
    api.service.runner.drain()
    model = api.call("GET", f"/api/v1/models/{subject.removeprefix('hf://')}")
    assert model.status_code == 200, model.text
    scan: dict[str, object] = model.json()["scan"]
    return scan


def test_a_rescan_reads_every_file_from_the_host_folder(
    database_url: str, hub: HubEmulator, isolated_home: Path
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url, rescan_per_pass=5) as api:
        first = api.scan(subject)
        assert first["status"] == "complete"
        assert _file_requests(hub, 0)  # the first scan fetched from the Hub
        _as_older_version(api, str(first["scan_id"]))
        since = len(hub.requests)
        scan = _rescan(api, subject)
        assert scan["scan_id"] != first["scan_id"]
        assert scan["tool"] == {"name": "verifier", "version": __version__}
        assert scan["status"] == "complete" and scan["decision"] == "allow"
        # Every declared file, LFS or not, came from the folder: not one file request.
        assert _file_requests(hub, since) == []
        assert sorted(f["path"] for f in scan["files"]) == sorted(files)  # type: ignore[attr-defined]
        for entry in scan["files"]:  # type: ignore[attr-defined]
            assert entry["sha256"] == hashlib.sha256(files[entry["path"]]).hexdigest()


def test_a_rescan_falls_back_to_the_hub_for_what_the_folder_lacks_or_got_wrong(
    database_url: str, hub: HubEmulator, isolated_home: Path
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url, rescan_per_pass=5) as api:
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


def test_a_rescan_on_another_host_reads_the_weights_from_s3(
    s3: str,  # noqa: F811 - the fixture
    hub: HubEmulator,
    isolated_home: Path,
    tmp_path: Path,
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    with serving(database_url, rescan_per_pass=5, blob_store_url=s3) as api:
        first = api.scan(subject)
        _as_older_version(api, str(first["scan_id"]))
        # Another host: the same database and S3 store, an empty folder of its own.
        shutil.rmtree(isolated_home / "blobs")
        since = len(hub.requests)
        scan = _rescan(api, subject)
        assert scan["status"] == "complete" and scan["decision"] == "allow"
        # The weights came from S3 (verified again on arrival); the small git files, which
        # are not shared, from the Hub.
        fetched = {path.rsplit("/", 1)[-1] for _, path in _file_requests(hub, since)}
        assert WEIGHTS not in fetched and fetched
        assert verified_blob(isolated_home, hashlib.sha256(files[WEIGHTS]).hexdigest()).exists()


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
