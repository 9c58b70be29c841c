"""SPDX 3.0.1 JSON-LD (AI profile), read back by the SPDX project's own Python model."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from click.testing import CliRunner
from spdx_python_model import v3_0_1 as spdx

from tests.evidence.recorded import COMMIT, allowed_report, denied_report
from verifier.cli import cli
from verifier.evidence import EvidenceFormat, facts_of, render_evidence
from verifier.model import ScanReport
from verifier.store import Store

REPORTS = {"allowed": allowed_report, "denied": denied_report}


def _document(report: ScanReport) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render_evidence(facts_of(report), EvidenceFormat.SPDX))
    return data


def _read_back(document: dict[str, Any]) -> spdx.SHACLObjectSet:
    """Decode with spdx-python-model (types, enumerations, IRIs, datetimes, references) and
    encode again (required properties): the checks of SPDX's generated bindings."""
    objects = spdx.SHACLObjectSet()
    spdx.JSONLDDeserializer().read(io.BytesIO(json.dumps(document).encode()), objects)
    missing = objects.link()
    if missing:
        raise ValueError(f"references to elements that are not in the document: {missing}")
    spdx.JSONLDSerializer().write(objects, io.BytesIO())
    return objects


def _by_type(objects: spdx.SHACLObjectSet, kind: type) -> list[Any]:
    return [o for o in objects.foreach_type(kind)]


@pytest.mark.parametrize("which", list(REPORTS))
def test_spdx_reads_back_with_the_spdx_python_model(which: str) -> None:
    report = REPORTS[which]()
    objects = _read_back(_document(report))
    [document] = _by_type(objects, spdx.SpdxDocument)
    [model] = document.rootElement
    assert isinstance(model, spdx.ai_AIPackage)
    assert model.software_primaryPurpose == spdx.software_SoftwarePurpose.model
    assert document.creationInfo.specVersion == "3.0.1"
    assert report.verdict.decision.value in document.comment


def test_spdx_model_package_hashes_supplier_licence_lineage() -> None:
    report = allowed_report()
    objects = _read_back(_document(report))
    [document] = _by_type(objects, spdx.SpdxDocument)
    [model] = document.rootElement
    assert model.name == "Qwen/Qwen2.5-0.5B-Instruct"
    assert model.software_packageVersion == COMMIT
    assert model.software_packageUrl == f"pkg:huggingface/Qwen/Qwen2.5-0.5B-Instruct@{COMMIT}"
    assert model.suppliedBy.name == "Alibaba Cloud (Alibaba Group)"
    relationships = _by_type(objects, spdx.Relationship)
    by_kind: dict[str, list[Any]] = {}
    for relationship in relationships:
        assert relationship.from_ is model
        by_kind.setdefault(relationship.relationshipType, []).append(relationship)
    [contains] = by_kind[spdx.RelationshipType.contains]
    hashes = {f.name: f.verifiedUsing[0].hashValue for f in contains.to}
    assert hashes == {f.path: f.sha256 for f in report.files}
    [licence] = by_kind[spdx.RelationshipType.hasDeclaredLicense]
    assert licence.to[0].simplelicensing_licenseExpression == "Apache-2.0"
    ancestors = [r.to[0] for r in by_kind[spdx.RelationshipType.descendantOf]]
    lineage = facts_of(report).lineage or ()
    assert sorted(a.name for a in ancestors) == sorted(a.repo_id for a in lineage)
    assert ancestors and all(isinstance(a, spdx.ai_AIPackage) for a in ancestors)


def test_the_spdx_check_can_fail() -> None:
    document = _document(allowed_report())
    [model] = [
        e
        for e in document["@graph"]
        if e["type"] == "ai_AIPackage" and e["spdxId"].endswith(":model")
    ]
    model["software_primaryPurpose"] = "weights"  # not in the SoftwarePurpose vocabulary
    with pytest.raises(ValueError):
        _read_back(document)
    document = _document(allowed_report())
    document["@graph"] = [e for e in document["@graph"] if e["type"] != "CreationInfo"]
    with pytest.raises(ValueError, match="creationinfo"):
        _read_back(document)


def test_report_command_writes_spdx(sqlite_url: str) -> None:
    report = denied_report()
    with Store.open(sqlite_url) as store:
        store.record_scan(report)
    result = CliRunner().invoke(
        cli,
        ["report", report.scan_id, "--format", "spdx"],
        env={"VERIFIER_DATABASE_URL": sqlite_url},
    )
    assert result.exit_code == 0, result.output
    _read_back(json.loads(result.stdout))


def _with_verified_lineage(report: ScanReport, *, contradicted: bool) -> ScanReport:
    """The allowed report as if its weights were compared with the declared base's."""
    import dataclasses

    from verifier.model import LineageBase, LineageStatus, VerifiedLineage

    base = "Qwen/Qwen2.5-0.5B"
    found = LineageBase(
        repo_id="example-lab/hidden-base",
        commit="c" * 40,
        publisher="example-lab",
        registered_base=True,
        score=0.9731,
        z=41.0,
        p_value=1e-9,
        near_identical=False,
    )
    matched = dataclasses.replace(found, repo_id=base, publisher="Qwen", score=0.9912)
    verified = VerifiedLineage(
        status=LineageStatus.VERIFIED,
        repo_id=report.target,
        declared=(base,),
        declared_matches=not contradicted,
        verified_bases=(found,) if contradicted else (matched,),
        mismatched_declared=(base,) if contradicted else (),
    )
    return dataclasses.replace(report, verified_lineage=verified)


def _lineage_relationships(report: ScanReport) -> dict[str, tuple[str, str]]:
    objects = _read_back(_document(report))
    [document] = _by_type(objects, spdx.SpdxDocument)
    [model] = document.rootElement
    return {
        r.to[0].name: (str(r.relationshipType).rsplit("/", 1)[-1], r.comment)
        for r in _by_type(objects, spdx.Relationship)
        if r.from_ is model and isinstance(r.to[0], spdx.ai_AIPackage)
    }


def test_spdx_says_what_the_weights_verified() -> None:
    relations = _lineage_relationships(_with_verified_lineage(allowed_report(), contradicted=False))
    kind, comment = relations["Qwen/Qwen2.5-0.5B"]
    assert kind == "descendantOf"
    assert "verified by weight fingerprint, score 0.9912" in comment
    kind, comment = relations["example-lab/root-model"]  # depth 2: declared, not compared
    assert kind == "descendantOf" and "verified" not in comment


def test_spdx_does_not_assert_a_contradicted_ancestor() -> None:
    relations = _lineage_relationships(_with_verified_lineage(allowed_report(), contradicted=True))
    kind, comment = relations["Qwen/Qwen2.5-0.5B"]
    assert kind == "other"
    assert "contradicted by the weights" in comment
    kind, comment = relations["example-lab/hidden-base"]  # named only by the weights
    assert kind == "descendantOf"
    assert "found in the weights" in comment and "score 0.9731" in comment
