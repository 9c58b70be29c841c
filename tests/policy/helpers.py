"""Facts documents (the scan report's JSON shape) for policy tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from verifier.facts import parse_facts_document
from verifier.model import Verdict
from verifier.policy import Policy, build_evidence, decide
from verifier.policy.schema import parse_policy

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
COMMIT = "a" * 40
POLICIES = Path(__file__).resolve().parents[2] / "policies"


def file(path: str, fmt: str, sha: str = "0" * 64) -> dict[str, Any]:
    return {"path": path, "size": 1, "sha256": sha, "format": fmt, "complete": True}


def finding(code: str, severity: str, path: str | None = "f") -> dict[str, Any]:
    return {"code": code, "severity": severity, "file": path, "message": "m"}


def facts(
    *files: dict[str, Any],
    findings: list[dict[str, Any]] | None = None,
    status: str = "complete",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "scan_id": "s1",
        "target": "t",
        "status": status,
        "source": {"type": "local", "root": "/m"},
        "files": list(files),
        "findings": findings or [],
        **extra,
    }


def hf(
    repo_id: str,
    *,
    requested: str | None = COMMIT,
    lineage: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Facts of a Hugging Face scan of `repo_id` at COMMIT (with `lineage` in its provenance)."""
    if lineage is not None:
        extra["provenance"] = {**extra.get("provenance", {}), "lineage": lineage}
    return facts(
        file("model.safetensors", "safetensors"),
        source={
            "type": "huggingface",
            "repo_id": repo_id,
            "revision_requested": requested,
            "commit": COMMIT,
        },
        **extra,
    )


def policy(text: str, **kwargs: Any) -> Policy:
    return parse_policy(text, source=Path("p.yaml"), **kwargs)


def run(p: Policy, document: dict[str, Any], now: dt.datetime = NOW) -> Verdict:
    evidence = build_evidence(parse_facts_document(document), publishers=p.publishers, now=now)
    return decide(evidence, p, now=now)


def fired(verdict: Verdict) -> list[str]:
    return [r.rule_id for r in verdict.reasons]
