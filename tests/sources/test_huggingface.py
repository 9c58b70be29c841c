"""`verifier scan hf://...` through the real huggingface_hub client against the Hub emulator."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from verifier.cli import cli
from verifier.sources.targets import SourceSettings


def safetensors_file(n_floats: int = 16, *, fill: int = 1) -> bytes:
    """A valid safetensors file with one F32 tensor of `n_floats` values."""
    data = struct.pack(f"<{n_floats}f", *([float(fill)] * n_floats))
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, len(data)]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def model_files(fill: int = 1) -> dict[str, bytes]:
    """A small clean model: weights in LFS, config and card in git."""
    return {
        "config.json": b'{"model_type": "tiny", "hidden_size": 4}',
        "README.md": b"---\nlicense: apache-2.0\n---\n# tiny\n",
        "model.safetensors": safetensors_file(fill=fill),
        "sub/tokenizer.json": b'{"version": "1.0"}',
    }


CARD = {
    "license": "apache-2.0",
    "datasets": ["acme/corpus"],
    "language": ["en", "fr"],
    "library_name": "transformers",
    "pipeline_tag": "text-generation",
}


#: No back-off between retries: what a test hands the command line instead of patching globals.
PATIENT_NOT_SLOW = SourceSettings(hub_backoff_seconds=0.0)


def scan(
    *args: str, database_url: str | None = None, settings: SourceSettings | None = None
) -> tuple[int, Any, str]:
    env = {"VERIFIER_DATABASE_URL": database_url} if database_url else {}
    result = CliRunner().invoke(
        cli, ["scan", *args, "--format", "json"], env=env, catch_exceptions=False, obj=settings
    )
    doc = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, doc, result.stderr


def codes(doc: Any) -> set[str]:
    return {f["code"] for f in doc["findings"]}


def test_clean_model_is_allowed_pinned_and_described(hub: HubEmulator, database_url: str) -> None:
    repo = hub.add_repo("acme/tiny", model_files(), card_data=CARD, tags=["text-generation"])
    commit = repo.refs["main"]
    code, doc, err = scan("hf://acme/tiny", database_url=database_url)
    assert code == 0, (err, doc and doc["findings"])
    assert doc["decision"] == "allow" and doc["status"] == "complete"
    assert doc["source"] == {
        "type": "huggingface",
        "repo_id": "acme/tiny",
        "revision_requested": "main",
        "commit": commit,
        "endpoint": hub.endpoint,
    }
    by_path = {f["path"]: f for f in doc["files"]}
    assert set(by_path) == set(model_files())
    weights = model_files()["model.safetensors"]
    import hashlib

    assert by_path["model.safetensors"]["sha256"] == hashlib.sha256(weights).hexdigest()
    assert by_path["model.safetensors"]["format"] == "safetensors"
    declared = {d["path"]: d for d in doc["declared_files"]}
    assert declared["model.safetensors"]["lfs"] is True
    assert declared["model.safetensors"]["sha256"] == hashlib.sha256(weights).hexdigest()
    assert declared["config.json"]["lfs"] is False and declared["config.json"]["sha256"] is None
    prov = doc["provenance"]
    assert prov["purl"] == f"pkg:huggingface/acme/tiny@{commit}"
    assert prov["namespace"] == "acme" and prov["license"] == "apache-2.0"
    assert prov["datasets"] == ["acme/corpus"] and prov["languages"] == ["en", "fr"]
    assert prov["library_name"] == "transformers" and prov["pipeline_tag"] == "text-generation"
    assert prov["created_at"].startswith("2024-01-02T03:04:05")
    assert prov["gated"] == "false"
    # every download named the pinned commit, never the branch
    downloads = hub.downloads()
    assert downloads and all(f"/resolve/{commit}/" in p for p in downloads)
    # LFS bytes came from the CDN origin
    assert any(p.startswith("cdn:/lfs/acme/tiny/") for _, p in hub.requests)


def test_same_size_tampered_file_is_denied(hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    commit = repo.refs["main"]
    genuine = model_files()["model.safetensors"]
    tampered = safetensors_file(fill=2)
    assert len(tampered) == len(genuine) and tampered != genuine
    repo.served[(commit, "model.safetensors")] = tampered
    code, doc, _ = scan("hf://acme/tiny")
    assert code == 1
    assert doc["decision"] == "deny"
    mismatch = [f for f in doc["findings"] if f["code"] == "HF-DIGEST-MISMATCH"]
    assert [f["file"] for f in mismatch] == ["model.safetensors"]
    assert mismatch[0]["severity"] == "critical"


def test_tampered_small_file_fails_git_blob_check(hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    repo.served[(repo.refs["main"], "config.json")] = b'{"model_type": "evil", "hidden_size": 4}'[
        : len(model_files()["config.json"])
    ]
    code, doc, _ = scan("hf://acme/tiny")
    assert code == 1
    assert any(
        f["code"] == "HF-DIGEST-MISMATCH" and f["file"] == "config.json" for f in doc["findings"]
    )


def test_truncated_download_is_denied(hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    genuine = model_files()["model.safetensors"]
    repo.served[(repo.refs["main"], "model.safetensors")] = genuine[:-4]
    code, doc, _ = scan("hf://acme/tiny")
    assert code in (1, 3)
    assert doc["decision"] == "deny"
    assert "HF-SIZE-MISMATCH" in codes(doc)


def test_oversized_download_is_refused(hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    genuine = model_files()["config.json"]
    repo.served[(repo.refs["main"], "config.json")] = genuine + b" " * 100
    code, doc, _ = scan("hf://acme/tiny")
    assert code == 1
    assert [f["file"] for f in doc["findings"] if f["code"] == "HF-SIZE-MISMATCH"] == [
        "config.json"
    ]


def test_branch_moved_after_resolve_still_fetches_the_pinned_commit(hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    first = repo.refs["main"]
    moved: list[str] = []

    def move_branch(method: str, path: str) -> None:
        if "/tree/" in path and not moved:
            moved.append(repo.commit(model_files(fill=7)))

    hub.before_request.append(move_branch)
    code, doc, _ = scan("hf://acme/tiny@main")
    assert moved and repo.refs["main"] != first
    assert code == 0, doc["findings"]
    assert doc["source"]["commit"] == first
    assert all(f"/resolve/{first}/" in p for p in hub.downloads())


def test_explicit_commit_and_web_url_targets(hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    first = repo.refs["main"]
    repo.commit(model_files(fill=3))
    code, doc, _ = scan(f"hf://acme/tiny@{first}")
    assert code == 0 and doc["source"]["commit"] == first
    assert doc["source"]["revision_requested"] == first
    code, doc, _ = scan(f"https://huggingface.co/acme/tiny/tree/{first}")
    assert code == 0 and doc["source"]["commit"] == first


@pytest.mark.parametrize(
    ("target", "setup", "message"),
    [
        ("hf://acme/missing", None, "repository not found"),
        ("hf://acme/tiny@nope", None, "revision not found"),
        ("hf://acme/gated", "gated", "gated repository"),
        ("hf://acme/private", "private", "repository not found"),
    ],
)
def test_hub_errors_are_one_line_and_exit_3(
    hub: HubEmulator, target: str, setup: str | None, message: str
) -> None:
    hub.add_repo("acme/tiny", model_files())
    if setup == "gated":
        hub.add_repo("acme/gated", model_files(), gated="manual")
    if setup == "private":
        hub.add_repo("acme/private", model_files(), private=True)
    code, doc, err = scan(target)
    assert code == 3
    assert doc is None
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_gated_repo_with_a_token_that_has_access(hub: HubEmulator) -> None:
    hub.add_repo("acme/gated", model_files(), gated="manual")
    hub.tokens.add("hf_good")
    code, doc, _ = scan("hf://acme/gated", "--token", "hf_good")
    assert code == 0, doc["findings"]
    assert doc["provenance"]["gated"] == "manual"


def test_the_token_goes_to_the_hub_and_never_to_the_cdn(hub: HubEmulator) -> None:
    # Downloads stream through huggingface_hub's public session, which follows the Hub's
    # redirect of LFS files to the CDN (another origin) without the token.
    hub.add_repo("acme/gated", model_files(), gated="manual")
    hub.tokens.add("hf_good")
    code, doc, _ = scan("hf://acme/gated", "--token", "hf_good")
    assert code == 0, doc["findings"]
    assert any(p.startswith("cdn:/lfs/acme/gated/") for _, p in hub.requests)
    assert hub.cdn_authorizations == []


def test_unreachable_hub_is_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    code, doc, err = scan("hf://acme/tiny", settings=PATIENT_NOT_SLOW)
    assert code == 3 and doc is None
    assert "cannot reach" in err and len(err.strip().splitlines()) == 1


def test_missing_declared_file_is_denied(hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    repo.unserved.add("sub/tokenizer.json")
    code, doc, _ = scan("hf://acme/tiny")
    assert code == 1
    missing = [f["file"] for f in doc["findings"] if f["code"] == "HF-MISSING-FILE"]
    assert missing == ["sub/tokenizer.json"]


def test_file_missing_from_the_model_info_is_an_extra_file(hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    repo.hidden_from_info = {"sub/tokenizer.json"}
    code, doc, _ = scan("hf://acme/tiny")
    assert code == 1
    assert [f["file"] for f in doc["findings"] if f["code"] == "HF-EXTRA-FILE"] == [
        "sub/tokenizer.json"
    ]


def test_include_and_exclude(hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    code, doc, _ = scan("hf://acme/tiny", "--include", "*.safetensors", "--include", "*.json")
    assert {f["path"] for f in doc["files"]} == {
        "config.json",
        "model.safetensors",
        "sub/tokenizer.json",
    }
    assert "HF-FILES-EXCLUDED" in codes(doc)
    assert code == 0  # a medium finding warns, it does not deny under the default policy
    code, doc, _ = scan("hf://acme/tiny", "--exclude", "sub/*")
    assert "sub/tokenizer.json" not in {f["path"] for f in doc["files"]}


def test_metadata_only_downloads_nothing_large_and_is_never_allowed(hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    code, doc, _ = scan("hf://acme/tiny", "--metadata-only")
    assert code == 3
    assert doc["status"] == "incomplete" and doc["decision"] == "deny"
    assert "METADATA-ONLY" in codes(doc)
    assert hub.downloads() == [
        p for p in hub.downloads() if p.endswith("model.safetensors")
    ]  # only header range reads of the weights
    weights = next(f for f in doc["files"] if f["path"] == "model.safetensors")
    assert weights["format"] == "safetensors" and weights["sha256"] is None


def test_metadata_only_reports_a_broken_safetensors_header(hub: HubEmulator) -> None:
    broken = struct.pack("<Q", 10) + b"not json!!" + b"\0" * 32
    hub.add_repo("acme/tiny", {"model.safetensors": broken})
    code, doc, _ = scan("hf://acme/tiny", "--metadata-only")
    assert code == 3
    assert "SAFETENSORS-HEADER-INVALID" in codes(doc)


def test_rate_limited_then_recovers(hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    hub.rate_limit_next = 2
    code, doc, _ = scan("hf://acme/tiny", settings=PATIENT_NOT_SLOW)
    assert code == 0, doc["findings"]


def test_rate_limited_for_good_is_exit_3(hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    hub.rate_limit_next = 1000
    code, _, err = scan("hf://acme/tiny", settings=PATIENT_NOT_SLOW)
    assert code == 3
    assert "rate limited" in err


def test_three_levels_of_lineage_pinned(hub: HubEmulator) -> None:
    root = hub.add_repo("acme/root", model_files(), card_data={"license": "mit"})
    mid = hub.add_repo(
        "acme/mid",
        model_files(),
        card_data={"base_model": "acme/root", "base_model_relation": "finetune"},
    )
    hub.add_repo(
        "acme/leaf",
        model_files(),
        card_data={"base_model": ["acme/mid"]},
        tags=["base_model:adapter:acme/mid"],
    )
    code, doc, _ = scan("hf://acme/leaf")
    assert code == 0, doc["findings"]
    lineage = doc["provenance"]["lineage"]
    edges = [(e["child"], e["repo_id"], e["commit"], e["relation"]) for e in lineage["ancestors"]]
    assert edges == [
        ("acme/leaf", "acme/mid", mid.refs["main"], "adapter"),
        ("acme/mid", "acme/root", root.refs["main"], "finetune"),
    ]
    assert [a["depth"] for a in lineage["ancestors"]] == [1, 2]
    assert lineage["ancestors"][1]["license"] == "mit" and lineage["declared"] is True
    assert lineage["roots"] == ["acme/root"] and not lineage["cycle"]


def test_lineage_cycle_and_unresolved_parent(hub: HubEmulator) -> None:
    hub.add_repo("acme/a", model_files(), card_data={"base_model": "acme/b"})
    hub.add_repo("acme/b", model_files(), card_data={"base_model": ["acme/a", "acme/gone"]})
    code, doc, _ = scan("hf://acme/a")
    assert "HF-LINEAGE-CYCLE" in codes(doc)
    assert "HF-LINEAGE-UNRESOLVED" in codes(doc)
    assert doc["provenance"]["lineage"]["cycle"] is True
    relations = {e["repo_id"]: e["relation"] for e in doc["provenance"]["lineage"]["ancestors"]}
    assert relations["acme/gone"] == "merge"
    assert code == 0  # lineage findings are informational under the default policy


def test_bad_target_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["scan", "hf://not a repo"])
    assert result.exit_code == 2
    assert "hf://namespace/name" in result.stderr


def test_path_escape_in_listing_is_refused(hub: HubEmulator, isolated_home: Path) -> None:
    hub.add_repo("acme/tiny", {**model_files(), "../../escape.json": b"{}"})
    code, doc, _ = scan("hf://acme/tiny")
    assert code == 1
    assert [f["file"] for f in doc["findings"] if f["code"] == "HF-PATH-ESCAPE"] == [
        "../../escape.json"
    ]
    assert not (isolated_home.parent / "escape.json").exists()


def test_show_reads_back_provenance_declared_files_and_lineage(
    hub: HubEmulator, database_url: str
) -> None:
    hub.add_repo("acme/base", model_files(), card_data={"license": "mit"})
    hub.add_repo(
        "acme/tiny",
        model_files(),
        card_data={**CARD, "base_model": "acme/base", "base_model_relation": "quantized"},
        tags=["gguf"],
    )
    code, doc, _ = scan("hf://acme/tiny", database_url=database_url)
    assert code == 0, doc["findings"]
    assert doc["provenance"]["lineage"]["ancestors"][0]["relation"] == "quantized"
    result = CliRunner().invoke(
        cli,
        ["show", doc["scan_id"], "--format", "json"],
        env={"VERIFIER_DATABASE_URL": database_url},
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["provenance"] == doc["provenance"]
    assert shown["declared_files"] == doc["declared_files"]
    assert shown["source"] == doc["source"]


def test_verified_files_are_not_downloaded_again(hub: HubEmulator, database_url: str) -> None:
    big = {f"model-{i}.safetensors": safetensors_file(64, fill=i) for i in range(3)}
    repo = hub.add_repo("acme/big", {**big, "config.json": b"{}"})
    code, first, _ = scan("hf://acme/big", database_url=database_url)
    assert code == 0, first["findings"]
    assert sorted(p.rsplit("/", 1)[1] for p in hub.downloads()) == sorted([*big, "config.json"])
    hub.requests.clear()
    code, again, _ = scan("hf://acme/big", database_url=database_url)
    assert code == 0
    weights = [p for p in hub.downloads() if p.endswith(".safetensors")]
    assert weights == []  # every weight file was already verified
    assert {f["path"]: f["sha256"] for f in again["files"]} == {
        f["path"]: f["sha256"] for f in first["files"]
    }
    # a new commit that changes one file costs only that file
    repo.commit({**big, "model-1.safetensors": safetensors_file(64, fill=9), "config.json": b"{}"})
    hub.requests.clear()
    code, third, _ = scan("hf://acme/big", database_url=database_url)
    assert code == 0
    assert [p.rsplit("/", 1)[1] for p in hub.downloads() if p.endswith(".safetensors")] == [
        "model-1.safetensors"
    ]
    assert third["source"]["commit"] == repo.refs["main"]


def _download_to_cache(hub: HubEmulator, repo_id: str, cache: Path) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, cache_dir=str(cache), endpoint=hub.endpoint))


def test_a_snapshot_in_the_hf_cache_scans_through_the_local_source(
    hub: HubEmulator, tmp_path: Path
) -> None:
    hub.add_repo("acme/tiny", model_files())
    snapshot = _download_to_cache(hub, "acme/tiny", tmp_path / "cache")
    assert (snapshot / "model.safetensors").is_symlink()
    code, doc, _ = scan(str(snapshot))
    assert code == 0, doc["findings"]
    assert {f["path"] for f in doc["files"]} == set(model_files())
    assert doc["source"]["hf_cache_repo"].endswith("models--acme--tiny")
    assert not {"PATH-SYMLINK-ESCAPE", "HF-CACHE-DIGEST-MISMATCH"} & codes(doc)


def test_same_size_tampering_in_the_hf_cache_is_denied(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("acme/tiny", model_files())
    snapshot = _download_to_cache(hub, "acme/tiny", tmp_path / "cache")
    for name, replacement in (
        ("model.safetensors", safetensors_file(fill=5)),
        (
            "config.json",
            b'{"model_type": "evil", "hidden_size": 4}'[: len(model_files()["config.json"])],
        ),
    ):
        blob = (snapshot / name).resolve()
        assert len(replacement) == blob.stat().st_size
        blob.chmod(0o644)
        blob.write_bytes(replacement)
    code, doc, _ = scan(str(snapshot))
    assert code == 1
    assert sorted(
        f["file"] for f in doc["findings"] if f["code"] == "HF-CACHE-DIGEST-MISMATCH"
    ) == [
        "config.json",
        "model.safetensors",
    ]


def test_capped_writer_keeps_bytes_and_restarts_on_rewind(tmp_path: Path) -> None:
    from verifier.sources.huggingface.client import CappedWriter, OversizeError

    data = b"0123456789" * 10
    progress: list[int] = []
    with open(tmp_path / "f", "x+b") as sink:
        writer = CappedWriter(sink, limit=len(data), on_bytes=progress.append)
        writer.write(data[:40])
        writer.seek(0)  # a server ignored the resume range: start again
        writer.write(data[:30])
        writer.write(data[30:])
        assert writer.written == len(data)
        with pytest.raises(OversizeError):
            writer.write(b"x")
    assert (tmp_path / "f").read_bytes() == data
    assert sum(progress) == len(data)


def _hub_arrivals(hub: HubEmulator, home: Path) -> Iterator[Any]:
    """The arrivals of `hf://acme/tiny` through the real Hub source, landed in quarantine."""
    from verifier.sources.interface import NoProgress
    from verifier.sources.targets import HubOptions, open_source

    source = open_source(
        "hf://acme/tiny",
        hub=HubOptions(endpoint=hub.endpoint, lineage=False),
        settings=PATIENT_NOT_SLOW,
        home=home,
    )
    snapshot = source.resolve()
    with source.session(
        snapshot, scan_id="one-pass", known=None, progress=NoProgress(), workers=2
    ) as session:
        yield from session.arrivals()


def test_a_hub_file_is_downloaded_once_and_hashed_once_by_the_reader(
    hub: HubEmulator, tmp_path: Path
) -> None:
    import hashlib
    import random

    from tests.sources.test_interface import CountingObserver, bytes_read_by_this_process
    from verifier.file_scan import read_arrival

    files = model_files()
    files["model.safetensors"] = safetensors_file(n_floats=512 * 1024)  # 2 MiB of tensor data
    files["extra.bin"] = random.Random(3).randbytes(1024 * 1024)
    hub.add_repo("acme/tiny", files)
    read: dict[str, int] = {}
    for arrival in _hub_arrivals(hub, tmp_path / "home"):
        counter = CountingObserver()  # what a signature asking for extra digests sees
        before = bytes_read_by_this_process()
        result = read_arrival(arrival, observers=[counter])
        after = bytes_read_by_this_process()
        data = files[result.path]
        assert result.complete  # and it matched the declaration (no HF-* finding):
        assert not [f for f in result.findings if f.code.startswith("HF-")], result.findings
        assert result.sha256 == hashlib.sha256(data).hexdigest()
        assert counter.hashed == len(data)
        if before is not None and after is not None:
            read[result.path] = after - before
    assert sorted(p.rsplit("/", 1)[-1] for p in hub.downloads()) == sorted(
        p.rsplit("/", 1)[-1] for p in files
    )  # each file fetched once
    for path in ("model.safetensors", "extra.bin"):
        if path in read:  # the landed file is read once, not twice
            assert len(files[path]) <= read[path] < len(files[path]) * 1.25


def test_bytes_changed_in_quarantine_are_the_bytes_hashed_and_never_promoted(
    hub: HubEmulator, tmp_path: Path
) -> None:
    # The digests are those of the bytes the scan read, not of what arrived earlier: a landed
    # file replaced (same size) before the scan reads it is a digest mismatch.
    from verifier.file_scan import read_arrival
    from verifier.sources.quarantine import verified_blob

    files = model_files()
    hub.add_repo("acme/tiny", files)
    home = tmp_path / "home"
    results = {}
    for arrival in _hub_arrivals(hub, home):
        landed = Path(arrival.location)
        if arrival.entry.path == "model.safetensors":
            landed.write_bytes(safetensors_file(fill=2))  # same size, other weights
        results[arrival.entry.path] = read_arrival(arrival)
    weights = results["model.safetensors"]
    assert "HF-DIGEST-MISMATCH" in {f.code for f in weights.findings}
    assert weights.sha256 is not None
    assert not verified_blob(home, weights.sha256).exists()
    clean = results["config.json"]
    assert not clean.findings and clean.sha256 is not None
    assert verified_blob(home, clean.sha256).exists()


def test_bad_token_is_an_authentication_error(hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    hub.reject_unknown_tokens = True
    code, doc, err = scan("hf://acme/tiny", "--token", "hf_wrong")
    assert code == 3 and doc is None
    assert len(err.strip().splitlines()) == 1
    assert "authentication failed" in err or "token" in err, err


def test_table_output_shows_the_pinned_source_and_lineage(hub: HubEmulator) -> None:
    base = hub.add_repo("acme/base", model_files())
    repo = hub.add_repo("acme/tiny", model_files(), card_data={**CARD, "base_model": "acme/base"})
    result = CliRunner().invoke(cli, ["scan", "hf://acme/tiny"], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    out = " ".join(result.stdout.split())
    assert f"pkg:huggingface/acme/tiny@{repo.refs['main']}" in out
    assert f"acme/tiny -unknown-> acme/base@{base.refs['main']}" in out
    assert "licence: apache-2.0" in out


POLICY = """
version: 1
name: hub-lineage
default: allow
rules:
  - id: no-llama-licensed-ancestry
    effect: deny
    severity: high
    message: The model or an ancestor is under the llama licence.
    lineage: any
    match:
      licence_in: [llama3.1]
  - id: lineage-must-be-identified
    effect: deny
    severity: high
    message: Every declared ancestor must resolve to a pinned commit.
    match:
      lineage_identified: false
  - id: hub-flagged
    effect: deny
    severity: high
    message: The Hub's own scan flagged a file.
    match:
      hub_scan_status_in: [issues]
"""


def _policy(tmp_path: Path) -> str:
    path = tmp_path / "hub-policy.yaml"
    path.write_text(POLICY)
    return str(path)


def test_policy_decides_on_hub_provenance_and_lineage(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("meta/base", model_files(), card_data={"license": "llama3.1"})
    hub.add_repo("acme/ft", model_files(), card_data={"license": "mit", "base_model": "meta/base"})
    hub.add_repo("acme/clean", model_files(), card_data={"license": "mit"})
    hub.add_repo("acme/orphan", model_files(), card_data={"base_model": "gone/model"})
    flagged = hub.add_repo("acme/flagged", model_files())
    flagged.security_status = {
        "scansDone": True,
        "filesWithIssues": [{"path": "model.safetensors", "level": "unsafe"}],
    }

    def fired(target: str) -> tuple[int, set[str]]:
        code, doc, _ = scan(target, "--policy", _policy(tmp_path))
        return code, {r["rule_id"] for r in doc["policy"]["reasons"]}

    assert fired("hf://acme/clean") == (0, set())
    assert fired("hf://acme/ft") == (1, {"no-llama-licensed-ancestry"})
    assert fired("hf://acme/orphan") == (1, {"lineage-must-be-identified"})
    assert fired("hf://acme/flagged") == (1, {"hub-flagged"})


def test_server_errors_on_downloads_are_retried(hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    hub.fail_downloads_next = 3
    code, doc, err = scan("hf://acme/tiny", settings=PATIENT_NOT_SLOW)
    assert code == 0, err
    assert hub.fail_downloads_next == 0
    assert {f["path"] for f in doc["files"]} == set(model_files())


def test_a_download_cut_halfway_resumes_where_it_stopped(hub: HubEmulator) -> None:
    import hashlib

    big = {"model.safetensors": safetensors_file(4096)}
    hub.add_repo("acme/tiny", big)
    hub.cut_downloads_next = 1
    code, doc, err = scan("hf://acme/tiny", settings=PATIENT_NOT_SLOW)
    assert code == 0, (err, doc and doc["findings"])
    assert hub.cut_downloads_next == 0
    half = len(big["model.safetensors"]) // 2
    assert [r for _, r in hub.range_requests] == [f"bytes={half}-"]
    [weights] = doc["files"]
    assert weights["sha256"] == hashlib.sha256(big["model.safetensors"]).hexdigest()


def test_a_download_that_keeps_failing_is_exit_3(hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    hub.fail_downloads_next = 1000
    code, doc, err = scan("hf://acme/tiny", settings=PATIENT_NOT_SLOW)
    assert code == 3 and doc is None
    assert "503" in err and len(err.strip().splitlines()) == 1
