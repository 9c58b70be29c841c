"""Verified lineage through `verifier scan` and `verifier lineage add-base` on the Hub emulator.

The models are the tiny family of tests/lineage/conftest.py, trained here; the Hub is the
emulator the tests start; the store is SQLite and PostgreSQL (when set).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import torch
from click.testing import CliRunner

from benchmarks import lineage_models as lm
from tests.hub_emulator import HubEmulator
from tests.lineage.conftest import ARCH
from tests.test_schemas import validate
from verifier.cli import cli
from verifier.lineage.fingerprint import FINGERPRINT_VERSION

CONFIG = b'{"model_type": "tiny-lm", "hidden_size": 32}'


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """safetensors bytes of two independent bases and derivatives of the first."""
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("scan-lineage")
    one, two = lm.base(ARCH, seed=11), lm.base(ARCH, seed=12)
    states = {
        "one": one,
        "two": two,
        "tuned": lm.fine_tune(ARCH, one, steps=15, seed=13),
        "permuted": lm.permute(ARCH, one, seed=14, residual=True),
    }
    saved = {
        name: (lm.save(state, work / name) / "model.safetensors").read_bytes()
        for name, state in states.items()
    }
    # GGUF copies as llama.cpp's converter names them: Q8_0 decodes, Q4_0 is not read.
    for name, kind in (("tuned", "Q8_0"), ("one", "Q4_0")):
        folder = lm.save_gguf(states[name], work / f"{name}-{kind}", quantise=kind)
        saved[f"{name}.{kind}.gguf"] = (folder / "model.gguf").read_bytes()
    return saved


def _add(hub: HubEmulator, repo: str, weights: bytes, base: str | None = None) -> None:
    """A Hub repo whose card (and so the Hub's card data) declares `base`, if given."""
    hub.add_repo(repo, _files(weights, base), card_data={"base_model": base} if base else {})


def _files(weights: bytes, base: str | None = None) -> dict[str, bytes]:
    card = "---\nlicense: apache-2.0\n"
    card += f"base_model: {base}\n" if base else ""
    return {
        "config.json": CONFIG,
        "README.md": (card + "---\n# model\n").encode(),
        "model.safetensors": weights,
    }


def _run(*args: str, database_url: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, list(args), env={"VERIFIER_DATABASE_URL": database_url}, catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


def _scan(target: str, database_url: str) -> tuple[int, Any]:
    code, out, err = _run("scan", target, "--format", "json", database_url=database_url)
    assert out.strip(), err
    return code, json.loads(out)


def _codes(doc: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for finding in doc["findings"]:
        found.setdefault(finding["code"], []).append(finding)
    return found


@pytest.fixture
def estate(
    hub: HubEmulator, database_url: str, weights: dict[str, bytes], tmp_path: Path
) -> tuple[HubEmulator, str]:
    """A Hub with two registered bases, and a store that recorded them."""
    _add(hub, "acme/base-one", weights["one"])
    _add(hub, "other/base-two", weights["two"])
    for repo in ("acme/base-one", "other/base-two"):
        code, out, err = _run("lineage", "add-base", f"hf://{repo}", database_url=database_url)
        assert code == 0, err
        assert f"registered {repo}@" in out
    return hub, database_url


def test_registered_bases_are_listed(estate: tuple[HubEmulator, str]) -> None:
    _, url = estate
    code, out, _ = _run("lineage", "list", "--format", "json", database_url=url)
    assert code == 0
    validate("lineage-bases", json.loads(out))
    bases = json.loads(out)["bases"]
    assert [b["repo_id"] for b in bases] == ["acme/base-one", "other/base-two"]
    assert all(b["hidden_size"] == ARCH.hidden for b in bases)


@pytest.mark.parametrize("derivative", ["tuned", "permuted"])
def test_an_undeclared_derivative_is_attributed_and_denied(
    estate: tuple[HubEmulator, str], weights: dict[str, bytes], derivative: str
) -> None:
    hub, url = estate
    _add(hub, "mallory/renamed", weights[derivative])
    code, doc = _scan("hf://mallory/renamed", url)
    found = _codes(doc)
    assert "LINEAGE-UNDECLARED-BASE" in found, doc["findings"]
    assert found["LINEAGE-UNDECLARED-BASE"][0]["evidence"].startswith("acme/base-one@")
    lineage = doc["verified_lineage"]
    assert lineage["status"] == "verified"
    assert [b["repo_id"] for b in lineage["verified_bases"]] == ["acme/base-one"]
    assert lineage["verified_bases"][0]["registered_base"] is True
    assert lineage["declared_matches"] is None
    assert code == 1 and doc["decision"] == "deny"


def test_after_a_fingerprint_upgrade_a_scan_says_what_it_could_not_compare(
    estate: tuple[HubEmulator, str], weights: dict[str, bytes]
) -> None:
    # Both bases recorded only with fingerprints of the version before this one: a derivative
    # scanned now is attributed to nothing, and says so, naming the bases it did not compare.
    hub, url = estate
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE weight_fingerprints SET version = :v"), {"v": FINGERPRINT_VERSION - 1}
        )
    engine.dispose()
    code, out, _ = _run("lineage", "list", database_url=url)
    assert code == 0 and out.count("NOT COMPARED: fingerprint version") == 2, out
    _add(hub, "mallory/renamed", weights["tuned"])
    code, doc = _scan("hf://mallory/renamed", url)
    lineage = doc["verified_lineage"]
    assert lineage["status"] == "verified" and lineage["verified_bases"] == []
    assert lineage["older_version_references"] == 2
    assert [b.split("@")[0] for b in lineage["older_version_bases"]] == [
        "acme/base-one",
        "other/base-two",
    ]
    [unverifiable] = _codes(doc)["LINEAGE-UNVERIFIABLE"]
    assert unverifiable["severity"] == "info"
    assert "older fingerprint version" in unverifiable["message"]
    assert "acme/base-one@" in unverifiable["message"]
    validate("scan", doc)
    # Registering the base again fingerprints it with this version: attributed again, and
    # only the other base is still said not to be compared.
    code, _, err = _run("lineage", "add-base", "hf://acme/base-one", database_url=url)
    assert code == 0, err
    code, doc = _scan("hf://mallory/renamed", url)
    lineage = doc["verified_lineage"]
    assert [b["repo_id"] for b in lineage["verified_bases"]] == ["acme/base-one"]
    assert [b.split("@")[0] for b in lineage["older_version_bases"]] == ["other/base-two"]
    assert code == 1 and doc["decision"] == "deny"
    # The first registration of acme/base-one follows its model@commit to the new scan.
    code, out, _ = _run("lineage", "list", "--format", "json", database_url=url)
    listed = json.loads(out)
    validate("lineage-bases", listed)
    assert [(b["repo_id"], b["compared"]) for b in listed["bases"]] == [
        ("acme/base-one", True),
        ("other/base-two", False),
        ("acme/base-one", True),
    ]
    assert [b["fingerprint_version"] for b in listed["bases"]] == [
        FINGERPRINT_VERSION - 1,
        FINGERPRINT_VERSION - 1,
        FINGERPRINT_VERSION,
    ]


def test_a_declared_base_that_the_weights_confirm_is_allowed(
    estate: tuple[HubEmulator, str], weights: dict[str, bytes]
) -> None:
    hub, url = estate
    _add(hub, "acme/tuned", weights["tuned"], base="acme/base-one")
    code, doc = _scan("hf://acme/tuned", url)
    lineage = doc["verified_lineage"]
    assert lineage["declared_matches"] is True, lineage
    assert not {"LINEAGE-UNDECLARED-BASE", "LINEAGE-DECLARED-MISMATCH"} & set(_codes(doc))
    assert code == 0, doc["findings"]


def test_a_card_naming_the_wrong_base_is_contradicted(
    estate: tuple[HubEmulator, str], weights: dict[str, bytes]
) -> None:
    hub, url = estate
    _add(hub, "mallory/claims", weights["tuned"], base="other/base-two")
    code, doc = _scan("hf://mallory/claims", url)
    found = _codes(doc)
    assert found["LINEAGE-DECLARED-MISMATCH"][0]["evidence"] == "other/base-two"
    assert "LINEAGE-UNDECLARED-BASE" in found
    assert doc["verified_lineage"]["declared_matches"] is False
    assert code == 1


def test_evidence_shows_declared_and_verified_lineage_side_by_side(
    estate: tuple[HubEmulator, str], weights: dict[str, bytes]
) -> None:
    hub, url = estate
    _add(hub, "mallory/claims", weights["tuned"], base="other/base-two")
    _, doc = _scan("hf://mallory/claims", url)
    code, html, err = _run("report", doc["scan_id"], "--format", "dossier-html", database_url=url)
    assert code == 0, err
    assert "other/base-two" in html and "contradicted by the weights" in html
    assert "acme/base-one" in html and "verified (weights only, score" in html
    code, bom, err = _run("report", doc["scan_id"], "--format", "cyclonedx", database_url=url)
    assert code == 0, err
    document = json.loads(bom)
    everything = [document["metadata"].get("component", {}), *document.get("components", [])]
    [model] = [c for c in everything if "pedigree" in c]
    claims = {
        a["name"]: {p["name"]: p["value"] for p in a["properties"]}["verifier:lineage.claim"]
        for a in model["pedigree"]["ancestors"]
    }
    assert claims == {"other/base-two": "contradicted", "acme/base-one": "verified"}


@pytest.mark.parametrize("declares", [False, True])
def test_a_byte_identical_reupload_by_another_publisher_is_named(
    estate: tuple[HubEmulator, str], weights: dict[str, bytes], declares: bool
) -> None:
    hub, url = estate
    _add(hub, "thief/copy", weights["one"], base="acme/base-one" if declares else None)
    code, doc = _scan("hf://thief/copy", url)
    reuploads = _codes(doc)["REUPLOAD-OF"]
    assert reuploads[0]["evidence"].startswith("acme/base-one@")
    assert "byte-identical" in reuploads[0]["message"]
    assert doc["verified_lineage"]["reupload_of"][0]["files"] == 1
    # Hidden, it blocks; a declared copy (a mirror, a conversion) is shown at medium.
    assert reuploads[0]["severity"] == ("medium" if declares else "high")
    assert code == (0 if declares else 1), doc["findings"]


def test_siblings_are_related_not_bases(
    estate: tuple[HubEmulator, str], weights: dict[str, bytes]
) -> None:
    hub, url = estate
    _add(hub, "acme/tuned", weights["tuned"], base="acme/base-one")
    _add(hub, "beta/permuted", weights["permuted"], base="acme/base-one")
    assert _scan("hf://acme/tuned", url)[0] == 0
    code, doc = _scan("hf://beta/permuted", url)
    lineage = doc["verified_lineage"]
    assert [b["repo_id"] for b in lineage["verified_bases"]] == ["acme/base-one"]
    assert [r["repo_id"] for r in lineage["related"]] == ["acme/tuned"]
    assert lineage["declared_matches"] is True
    assert code == 0, doc["findings"]


def test_an_independent_model_is_attributed_to_nothing(
    estate: tuple[HubEmulator, str], tmp_path: Path
) -> None:
    hub, url = estate
    fresh = lm.save(lm.base(ARCH, seed=99), tmp_path / "fresh") / "model.safetensors"
    hub.add_repo("indie/fresh", _files(fresh.read_bytes()))
    code, doc = _scan("hf://indie/fresh", url)
    lineage = doc["verified_lineage"]
    assert lineage["status"] == "verified" and lineage["verified_bases"] == []
    assert lineage["compared"] >= 2
    assert code == 0, doc["findings"]


def test_weights_that_cannot_be_fingerprinted_are_said_so(
    hub: HubEmulator, database_url: str
) -> None:
    from tests.sources.test_huggingface import safetensors_file

    _add(hub, "acme/tiny", safetensors_file(), base="acme/base-one")
    code, doc = _scan("hf://acme/tiny", database_url)
    found = _codes(doc)
    assert found["LINEAGE-UNVERIFIABLE"][0]["severity"] == "info"
    assert doc["verified_lineage"]["status"] == "unverifiable"
    assert doc["verified_lineage"]["unverifiable_declared"] == ["acme/base-one"]
    assert code == 0, doc["findings"]


def test_add_base_refuses_weights_it_cannot_fingerprint(
    hub: HubEmulator, database_url: str
) -> None:
    from tests.sources.test_huggingface import safetensors_file

    hub.add_repo("acme/tiny", _files(safetensors_file()))
    code, _, err = _run("lineage", "add-base", "hf://acme/tiny", database_url=database_url)
    assert code == 3
    assert "no weight fingerprint" in err
    code, out, _ = _run("lineage", "list", database_url=database_url)
    assert "no reference base registered" in out


@pytest.mark.parametrize("target", ["missing-folder", "hf://acme/absent"])
def test_add_base_of_a_missing_target_is_one_line_and_registers_nothing(
    hub: HubEmulator, database_url: str, tmp_path: Path, target: str
) -> None:
    if not target.startswith("hf://"):
        target = str(tmp_path / target)
    code, out, err = _run("lineage", "add-base", target, database_url=database_url)
    assert code in (2, 3), err
    assert err.strip().startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    code, out, _ = _run("lineage", "list", database_url=database_url)
    assert "no reference base registered" in out


def test_a_gguf_quantisation_of_a_derivative_is_attributed(
    estate: tuple[HubEmulator, str], weights: dict[str, bytes]
) -> None:
    hub, url = estate
    files = {"config.json": CONFIG, "model-Q8_0.gguf": weights["tuned.Q8_0.gguf"]}
    hub.add_repo("mallory/tuned-gguf", files)
    code, doc = _scan("hf://mallory/tuned-gguf", url)
    found = _codes(doc)
    assert found["LINEAGE-UNDECLARED-BASE"][0]["evidence"].startswith("acme/base-one@")
    assert [b["repo_id"] for b in doc["verified_lineage"]["verified_bases"]] == ["acme/base-one"]
    assert code == 1 and doc["decision"] == "deny"


def test_a_gguf_of_types_that_do_not_decode_is_unverifiable(
    estate: tuple[HubEmulator, str], weights: dict[str, bytes]
) -> None:
    hub, url = estate
    files = {"config.json": CONFIG, "model-Q4_0.gguf": weights["one.Q4_0.gguf"]}
    hub.add_repo("mallory/q4-gguf", files)
    code, doc = _scan("hf://mallory/q4-gguf", url)
    [unverifiable] = _codes(doc)["LINEAGE-UNVERIFIABLE"]
    assert unverifiable["severity"] == "info"
    assert "Q4_0 is not fingerprinted" in unverifiable["message"]
    assert doc["verified_lineage"]["status"] == "unverifiable"
    assert code == 0, doc["findings"]


def test_the_lineage_imports_start_while_weights_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan of a folder holding weights starts lineage's imports once, on a reader thread,
    while the files are read; one without weights never does (a pickle scan stays light)."""
    import pickle
    import threading

    from tests.samples import safetensors_bytes
    from verifier import pipeline
    from verifier.policy import default_policy_path, load_policy

    started: list[str] = []
    monkeypatch.setattr(
        pipeline, "_prefetch_lineage", lambda: started.append(threading.current_thread().name)
    )
    policy = load_policy(default_policy_path())
    weights = tmp_path / "weights"
    weights.mkdir()
    header = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        (weights / name).write_bytes(safetensors_bytes(header, bytes(8)))
    pipeline.run_scan(str(weights), policy=policy, recorder=None)
    assert len(started) == 1 and started[0] != threading.main_thread().name
    started.clear()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "state.pkl").write_bytes(pickle.dumps({"step": 1}, protocol=4))
    pipeline.run_scan(str(plain), policy=policy, recorder=None)
    assert started == []
