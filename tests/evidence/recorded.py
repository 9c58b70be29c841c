"""A fixed recorded scan (fixed ids, clock and digests) that the golden files are rendered from."""

from __future__ import annotations

import hashlib
from pathlib import Path

from verifier.model import (
    Decision,
    FileFormat,
    FileResult,
    Finding,
    RuleOutcome,
    ScanReport,
    ScanStatus,
    Severity,
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


def allowed_report() -> ScanReport:
    """A complete Hub scan, allowed by the default policy."""
    return ScanReport(
        scan_id=SCAN_ID,
        target=f"hf://Qwen/Qwen2.5-0.5B-Instruct@{COMMIT}",
        started_at="2026-01-02T03:04:05+00:00",
        finished_at="2026-01-02T03:04:09+00:00",
        tool_version="0.1.0",
        status=ScanStatus.COMPLETE,
        files=_files(),
        findings=(),
        verdict=Verdict(Decision.ALLOW, "default", _digest("policy"), "enforce"),
        source={
            "type": "huggingface",
            "repo_id": "Qwen/Qwen2.5-0.5B-Instruct",
            "revision_requested": "main",
            "commit": COMMIT,
            "endpoint": "https://huggingface.co",
        },
        details=DETAILS,
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
    )
