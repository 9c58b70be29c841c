"""The shared blob store on a real S3 endpoint on loopback (moto's server mode, started here):
blobs go in verified and come out verified, and a host does not fetch from the Hub a blob
another host verified."""

from __future__ import annotations

import hashlib
import io
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from tests.hub_emulator import HubEmulator
from tests.service.conftest import Api, free_port, start
from tests.sources.test_huggingface import model_files
from verifier.blobs import BlobStore, open_blob_store
from verifier.blobs.local import restore, take
from verifier.errors import UsageError
from verifier.model import DeclaredFile
from verifier.pipeline import HubOptions, run_scan
from verifier.policy import default_policy_path, load_policy
from verifier.service.app import create_app
from verifier.sources.quarantine import verified_blob
from verifier.store import Store

BUCKET = "verifier-blobs"
WEIGHTS = "model.safetensors"
#: How the tiny model scans: allowed, its lineage not comparable from its weights.
ALLOWED = "allow ['LINEAGE-UNVERIFIABLE']"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3 endpoint on loopback with an empty bucket; boto3 is pointed at it by the usual
    AWS settings, as a deployment would be."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto keeps its buckets per process, not per server: start from none.
    httpx.post(f"http://127.0.0.1:{port}/moto-api/reset").raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "verifier-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "verifier-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        # moto keeps its buckets per process, across servers: start each test from none.
        urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")
        ).close()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield f"s3://{BUCKET}/team"
    finally:
        server.stop()


def _store(url: str) -> BlobStore:
    store = open_blob_store(url)
    assert store is not None
    return store


def _declared(data: bytes, path: str = WEIGHTS) -> DeclaredFile:
    return DeclaredFile(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        git_sha1=None,
        lfs=True,
    )


def test_a_blob_goes_into_s3_and_comes_back_verified(s3: str, tmp_path: Path) -> None:
    data = b"weights" * 1000
    declared = _declared(data)
    assert declared.sha256 is not None
    store = _store(s3)
    assert not store.has(declared.sha256)
    store.put(declared.sha256, io.BytesIO(data), size=len(data))
    assert store.has(declared.sha256)
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"team/sha256/{declared.sha256[:2]}/{declared.sha256}"]
    assert take(store, declared, tmp_path / "landed")
    assert (tmp_path / "landed").read_bytes() == data
    home = tmp_path / "home"
    assert restore(store, home, declared)
    assert verified_blob(home, declared.sha256).read_bytes() == data


def test_other_bytes_under_a_digest_are_refused(s3: str, tmp_path: Path) -> None:
    data = b"the real weights"
    declared = _declared(data)
    assert declared.sha256 is not None
    store = _store(s3)
    store.put(declared.sha256, io.BytesIO(b"something else"), size=14)  # a poisoned store
    assert take(store, declared, tmp_path / "landed") is False
    assert not (tmp_path / "landed").exists()
    longer = b"the real weights, and more"
    store.put(declared.sha256, io.BytesIO(longer), size=len(longer))
    assert take(store, declared, tmp_path / "landed") is False
    home = tmp_path / "home"
    assert not restore(store, home, declared)
    assert not verified_blob(home, declared.sha256).exists()
    absent = _declared(b"never stored")
    assert take(store, absent, tmp_path / "other") is False


def test_an_unreachable_store_falls_back_to_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "verifier-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "verifier-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = _store(f"s3://{BUCKET}")
    assert take(store, _declared(b"x"), tmp_path / "landed") is False


@pytest.mark.parametrize("url", ["https://bucket/x", "s3://", "s3:///prefix", "s3://b/p?x=1"])
def test_a_blob_store_is_an_s3_url(url: str) -> None:
    with pytest.raises(UsageError, match="s3://bucket"):
        open_blob_store(url)


def _scan_on_host(
    target: str,
    *,
    home: Path,
    database: str,
    hub: HubEmulator,
    blobs: BlobStore | None,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """Scan as a worker with its own VERIFIER_HOME would; returns the decision and the
    finding codes."""
    monkeypatch.setenv("VERIFIER_HOME", str(home))
    policy = load_policy(default_policy_path())
    with Store.open(database) as store:
        report = run_scan(
            target,
            policy=policy,
            recorder=store,
            hub=HubOptions(endpoint=hub.endpoint, lineage=False, blob_store=blobs),
        )
    codes = sorted(f.code for f in report.findings)
    return f"{report.verdict.decision.value} {codes}"


def _weights_downloads(hub: HubEmulator) -> int:
    return sum(1 for path in hub.downloads() if path.endswith(WEIGHTS))


def test_a_blob_one_host_verified_is_not_fetched_from_the_hub_by_another(
    s3: str, hub: HubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = model_files()
    first = hub.add_repo("acme/tiny", files).refs["main"]
    # Another model of the same publisher with the same weights.
    copy = hub.add_repo("acme/tiny-instruct", dict(files)).refs["main"]
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    blobs = _store(s3)
    scan = {"database": database, "hub": hub, "monkeypatch": monkeypatch}

    assert (
        _scan_on_host(f"hf://acme/tiny@{first}", home=tmp_path / "a", blobs=blobs, **scan)
        == ALLOWED
    )
    assert _weights_downloads(hub) == 1
    # Host B shares the database and the store, not A's folder: the recorded result is reused
    # and the bytes come from the store, not the Hub.
    assert (
        _scan_on_host(f"hf://acme/tiny-instruct@{copy}", home=tmp_path / "b", blobs=blobs, **scan)
        == ALLOWED
    )
    assert _weights_downloads(hub) == 1
    sha = hashlib.sha256(files[WEIGHTS]).hexdigest()
    assert verified_blob(tmp_path / "b", sha).read_bytes() == files[WEIGHTS]
    # Host C has a database of its own (nothing recorded): it scans bytes from the store.
    alone = f"sqlite:///{tmp_path / 'other.db'}"
    assert (
        _scan_on_host(
            f"hf://acme/tiny-instruct@{copy}",
            home=tmp_path / "c",
            blobs=blobs,
            database=alone,
            hub=hub,
            monkeypatch=monkeypatch,
        )
        == ALLOWED
    )
    assert _weights_downloads(hub) == 1
    # Without the store, host D fetches the blob from the Hub again.
    assert (
        _scan_on_host(f"hf://acme/tiny-instruct@{copy}", home=tmp_path / "d", blobs=None, **scan)
        == ALLOWED
    )
    assert _weights_downloads(hub) == 2


def test_the_service_shares_what_its_jobs_verify(
    s3: str, hub: HubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERIFIER_HOME", str(tmp_path / "server"))
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    # The folder already holds other bytes under the config's name: what is put into the
    # store is what the scan hashed, never the folder's copy.
    config_sha = hashlib.sha256(files["config.json"]).hexdigest()
    planted = verified_blob(tmp_path / "server", config_sha)
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b'{"model_type": "evil", "hidden_size": 4}')
    service, tokens = start(f"sqlite:///{tmp_path / 'service.db'}", blob_store_url=s3)
    with TestClient(create_app(service)) as client:
        api = Api(client, service, tokens)
        assert api.scan(f"hf://acme/tiny@{commit}")["status"] == "complete"
    # Every file verified is shared, the small git files under the SHA-256 measured of them.
    for data in files.values():
        sha = hashlib.sha256(data).hexdigest()
        kept = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"team/sha256/{sha[:2]}/{sha}")
        assert kept["Body"].read() == data
