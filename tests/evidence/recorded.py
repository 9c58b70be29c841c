"""A fixed recorded scan (fixed ids, clock and digests) that the golden files are rendered from."""

from __future__ import annotations

import hashlib
from pathlib import Path

from verifier.facts import parse_details
from verifier.model import (
    Decision,
    DeclaredFile,
    FileFormat,
    FileResult,
    Finding,
    Lineage,
    LineageEdge,
    LineageRelation,
    Provenance,
    RuleOutcome,
    ScanReport,
    ScanStatus,
    Severity,
    SignatureMethod,
    SignatureResult,
    SignatureStatus,
    SourceType,
    Verdict,
)

GOLDEN = Path(__file__).parent / "golden"
COMMIT = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
SCAN_ID = "5ca1ab1e0000400080000000000000a1"
DENIED_SCAN_ID = "de41ed000000400080000000000000d2"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _files(extra: tuple[FileResult, ...] = ()) -> tuple[FileResult, ...]:
    return (
        FileResult("README.md", 1200, _digest("card"), None, FileFormat.TEXT),
        FileResult("config.json", 640, _digest("config"), None, FileFormat.JSON),
        FileResult(
            "model.safetensors", 988_000_000, _digest("weights"), None, FileFormat.SAFETENSORS
        ),
        *extra,
    )


DETAILS = {
    "config": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896},
    "safetensors": {
        "model.safetensors": {"parameters": 494_032_768, "dtypes": ["BF16"]},
    },
    "card": {
        "metadata": {
            "license": "apache-2.0",
            "pipeline_tag": "text-generation",
            "datasets": ["example/corpus"],
            "base_model": "Qwen/Qwen2.5-0.5B",
        },
        "headings": ["Qwen2.5-0.5B-Instruct <fine-tune>", "Intended uses", "Limitations"],
    },
}


REPO = "Qwen/Qwen2.5-0.5B-Instruct"
BASE_COMMIT = "1" * 40
ROOT_COMMIT = "2" * 40


def provenance() -> Provenance:
    """What the Hub source records for the allowed model: licence, card data, two-level lineage."""
    return Provenance(
        source_type=SourceType.HUGGINGFACE,
        repo_id=REPO,
        namespace="Qwen",
        commit=COMMIT,
        revision_requested="main",
        endpoint="https://huggingface.co",
        created_at="2024-09-16T11:55:00+00:00",
        last_modified="2024-09-25T12:33:00+00:00",
        gated="false",
        license="apache-2.0",
        license_link="https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/blob/main/LICENSE",
        tags=("text-generation", "chat"),
        datasets=("example/corpus",),
        languages=("en", "zh"),
        library_name="transformers",
        pipeline_tag="text-generation",
        base_models=("Qwen/Qwen2.5-0.5B",),
        base_model_relation="finetune",
        lineage=Lineage(
            edges=(
                LineageEdge(
                    REPO,
                    COMMIT,
                    "Qwen/Qwen2.5-0.5B",
                    BASE_COMMIT,
                    LineageRelation.FINETUNE,
                    1,
                    parent_license="apache-2.0",
                ),
                LineageEdge(
                    "Qwen/Qwen2.5-0.5B",
                    BASE_COMMIT,
                    "example-lab/root-model",
                    ROOT_COMMIT,
                    LineageRelation.MERGE,
                    2,
                ),
            ),
            roots=("example-lab/root-model",),
        ),
    )


def allowed_report() -> ScanReport:
    """A complete Hub scan, signed with a key, allowed by the default policy."""
    files = _files((FileResult("model.sig", 2200, _digest("bundle"), None, FileFormat.JSON),))
    files = tuple(sorted(files, key=lambda f: f.path))
    return ScanReport(
        scan_id=SCAN_ID,
        target=f"hf://Qwen/Qwen2.5-0.5B-Instruct@{COMMIT}",
        started_at="2026-01-02T03:04:05+00:00",
        finished_at="2026-01-02T03:04:09+00:00",
        tool_version="0.1.0",
        status=ScanStatus.COMPLETE,
        files=files,
        findings=(),
        verdict=Verdict(Decision.ALLOW, "default", _digest("policy"), "enforce"),
        source={
            "type": "huggingface",
            "repo_id": "Qwen/Qwen2.5-0.5B-Instruct",
            "revision_requested": "main",
            "commit": COMMIT,
            "endpoint": "https://huggingface.co",
        },
        details=parse_details(DETAILS),
        provenance=provenance(),
        declared_files=tuple(DeclaredFile(f.path, f.size, f.sha256, None, lfs=True) for f in files),
        signature=SignatureResult(
            status=SignatureStatus.VERIFIED,
            reason="signature verified with the given key",
            path="model.sig",
            method=SignatureMethod.KEY,
            signer="sha256:" + _digest("org key"),
            key_fingerprint="sha256:" + _digest("org key"),
            predicate_type="https://model_signing/signature/v1.0",
            digest_algorithm="sha256",
        ),
    )


def denied_report(root: str = "/models/suspicious <model>") -> ScanReport:
    """A local scan with a pickle that runs code, denied."""
    finding = Finding(
        "PICKLE-DANGEROUS-GLOBAL",
        Severity.CRITICAL,
        "pickle calls os.system <script>alert(1)</script> | on load",
        file="pytorch_model.bin",
        member="archive/data.pkl",
        offset=2,
    )
    bad = FileResult(
        "pytorch_model.bin", 4096, _digest("bad"), None, FileFormat.PYTORCH_ZIP, (finding,)
    )
    return ScanReport(
        scan_id=DENIED_SCAN_ID,
        target=root,
        started_at="2026-01-02T04:00:00+00:00",
        finished_at="2026-01-02T04:00:01+00:00",
        tool_version="0.1.0",
        status=ScanStatus.COMPLETE,
        files=_files((bad,)),
        findings=(finding,),
        verdict=Verdict(
            Decision.DENY,
            "default",
            _digest("policy"),
            "enforce",
            (
                RuleOutcome(
                    "no-critical-findings",
                    "deny",
                    Severity.CRITICAL,
                    "critical findings block the model",
                    ("pytorch_model.bin: PICKLE-DANGEROUS-GLOBAL",),
                ),
            ),
        ),
        source={"type": "local", "root": root},
        signature=SignatureResult(status=SignatureStatus.ABSENT, reason="no model.sig found"),
    )
