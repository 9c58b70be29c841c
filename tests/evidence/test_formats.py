"""Each evidence format rendered from a fixed recorded scan: golden files and schema checks."""

from __future__ import annotations

import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.evidence.golden_files import check_golden
from tests.evidence.recorded import (
    BASE_COMMIT,
    COMMIT,
    ROOT_COMMIT,
    allowed_report,
    denied_report,
)
from verifier.evidence import EvidenceFormat, facts_of, load_facts, render_evidence
from verifier.evidence.facts import NOT_RECORDED
from verifier.evidence.levels import Level, established_levels
from verifier.store import Store

REPORTS = {"allowed": allowed_report, "denied": denied_report}
SUFFIX = {EvidenceFormat.CYCLONEDX: "cdx.json", EvidenceFormat.MARKDOWN: "md"}


@pytest.mark.parametrize("fmt", list(SUFFIX))
@pytest.mark.parametrize("which", list(REPORTS))
def test_golden(which: str, fmt: EvidenceFormat, sqlite_url: str) -> None:
    report = REPORTS[which]()
    with Store.open(sqlite_url) as store:
        store.record_scan(report)
        facts = load_facts(store, report.scan_id)
    assert facts.report == report  # details included: the recorded scan reads back whole
    check_golden(f"{which}.{SUFFIX[fmt]}", render_evidence(facts, fmt))


@pytest.mark.parametrize("which", list(REPORTS))
def test_cyclonedx_is_valid_against_the_1_6_schema(which: str) -> None:
    text = render_evidence(facts_of(REPORTS[which]()), EvidenceFormat.CYCLONEDX).decode()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)


def test_schema_validation_can_fail() -> None:
    document = json.loads(render_evidence(facts_of(allowed_report()), EvidenceFormat.CYCLONEDX))
    document["metadata"]["component"]["type"] = "model"
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    assert error is not None


def test_cyclonedx_model_component() -> None:
    bom = json.loads(render_evidence(facts_of(allowed_report()), EvidenceFormat.CYCLONEDX))
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["purl"] == f"pkg:huggingface/Qwen/Qwen2.5-0.5B-Instruct@{COMMIT}"
    assert model["licenses"][0]["license"]["id"] == "Apache-2.0"
    assert model["supplier"] == {
        "name": "Alibaba Cloud (Alibaba Group)",
        "address": {"country": "CN"},
        "url": ["https://huggingface.co/Qwen"],
    }
    ancestors = model["pedigree"]["ancestors"]
    assert [a["purl"] for a in ancestors] == [
        f"pkg:huggingface/Qwen/Qwen2.5-0.5B@{BASE_COMMIT}",
        f"pkg:huggingface/example-lab/root-model@{ROOT_COMMIT}",
    ]
    assert ancestors[0]["supplier"]["address"] == {"country": "CN"}
    assert "supplier" not in ancestors[1]  # example-lab is not in the registry
    params = model["modelCard"]["modelParameters"]
    assert params["architectureFamily"] == "qwen2"
    assert params["modelArchitecture"] == "Qwen2ForCausalLM"
    assert params["task"] == "text-generation"
    assert params["datasets"] == [{"type": "dataset", "name": "example/corpus"}]
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["verifier:decision"] == "allow"
    assert props["verifier:signature.status"] == "verified"
    files = {c["name"]: c["hashes"][0]["content"] for c in bom["components"]}
    assert files == {f.path: f.sha256 for f in allowed_report().files}
    refs = {r["type"]: r["url"] for r in model["externalReferences"]}
    assert (
        refs["distribution"] == f"https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/tree/{COMMIT}"
    )


def test_levels_follow_the_facts() -> None:
    assert established_levels(facts_of(allowed_report())) == (
        Level.FORMAT_SAFE,
        Level.DIGESTS_VERIFIED,
        Level.SIGNED_BY_TRUSTED_IDENTITY,
        Level.PUBLISHER_IDENTIFIED,
    )
    assert established_levels(facts_of(denied_report())) == ()


def test_markdown_escapes_untrusted_text_and_says_not_recorded() -> None:
    text = render_evidence(facts_of(denied_report()), EvidenceFormat.MARKDOWN).decode()
    assert "<script>" not in text and "\\<script\\>" in text
    assert "os.system \\<script\\>alert(1)\\</script\\> \\| on load" in text
    assert f"| Publisher | {NOT_RECORDED} |" in text
    assert "| Signature | absent |" in text
    assert "FAILED" in text.splitlines()[0]
