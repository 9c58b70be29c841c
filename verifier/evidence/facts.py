"""The facts every evidence format renders, read from a recorded scan; absent ones stay None.

Reports never fetch: everything here comes from the database (through the Store) or from the
recorded scan itself. A field that was not recorded is None (or empty), and every renderer says
"not recorded" for it rather than guessing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from verifier import facts
from verifier.model import (
    Decision,
    FileResult,
    Finding,
    ModelDetails,
    Provenance,
    ScanReport,
    ScanStatus,
    Severity,
)
from verifier.purl import generic_purl, huggingface_purl

NOT_RECORDED = "not recorded"
"""What every format prints where a fact was not recorded."""

_HF_TARGET = re.compile(
    r"^hf://(?P<ns>[A-Za-z0-9][\w.-]*)/(?P<name>[\w.-]+)@(?P<commit>[0-9a-f]{40})$"
)


@dataclass(frozen=True)
class Publisher:
    """Who publishes the model, from the publisher registry."""

    namespace: str
    legal_entity: str | None = None
    country: str | None = None
    source: str | None = None
    reviewed: str | None = None

    @property
    def identified(self) -> bool:
        """Whether the registry names the legal entity and its country."""
        return bool(self.legal_entity and self.country)


@dataclass(frozen=True, kw_only=True)
class Ancestor(facts.Ancestor):
    """A declared ancestor (`verifier.facts.ancestors`) with its publisher from the registry."""

    publisher: Publisher | None = None


@dataclass(frozen=True)
class SignatureFacts:
    """The model's signature as the scan verified it."""

    status: str
    method: str | None = None
    signer: str | None = None
    issuer: str | None = None
    bundle_path: str | None = None
    bundle_sha256: str | None = None
    reason: str | None = None


def parse_hf_target(target: str) -> tuple[str, str, str] | None:
    """`(namespace, name, commit)` of a pinned `hf://ns/name@<40-hex commit>`, else None."""
    match = _HF_TARGET.match(target)
    if match is None:
        return None
    return match["ns"], match["name"], match["commit"]


@dataclass(frozen=True)
class EvidenceFacts:
    """Everything the evidence formats render about one recorded scan.

    `provenance`, `lineage`, `signature` and `publisher` are None where nothing was recorded;
    `lineage` is an empty tuple when the source recorded that no base model is declared.
    """

    report: ScanReport
    lineage: tuple[Ancestor, ...] | None = None
    signature: SignatureFacts | None = None
    publisher: Publisher | None = None

    @property
    def details(self) -> ModelDetails | None:
        """Facts read from the model's own files, or None when the scan read none."""
        return None if self.report.details.empty else self.report.details

    @property
    def provenance(self) -> Provenance | None:
        """What the source recorded about the model (None for local scans)."""
        return self.report.provenance

    @property
    def source_type(self) -> str:
        """`local`, `huggingface`, ... as recorded with the scan."""
        return self.report.source.get("type", "unknown")

    @property
    def name(self) -> str:
        """The model's name: the Hub repo id, else the scanned folder's name."""
        if self.provenance is not None and self.provenance.repo_id:
            return self.provenance.repo_id
        root = self.report.source.get("root") or self.report.target
        return root.rstrip("/").rsplit("/", 1)[-1] or root

    @property
    def commit(self) -> str | None:
        """The pinned commit the scan verified, when the source has one."""
        return self.provenance.commit if self.provenance is not None else None

    @property
    def manifest_sha256(self) -> str | None:
        """SHA-256 over the files' raw SHA-256 digests in path order (as model_signing does).

        None when any file lacks a digest: a partial manifest would identify nothing.
        """
        files = sorted(self.report.files, key=lambda f: f.path)
        if not files or any(f.sha256 is None for f in files):
            return None
        return hashlib.sha256(b"".join(bytes.fromhex(f.sha256 or "") for f in files)).hexdigest()

    @property
    def purl(self) -> str:
        """The model's package URL: pinned Hub purl, else a generic one with the manifest digest."""
        prov = self.provenance
        if prov is not None and prov.repo_id and "/" in prov.repo_id:
            namespace, name = prov.repo_id.split("/", 1)
            return huggingface_purl(namespace, name, prov.commit)
        return generic_purl(self.name, sha256=self.manifest_sha256)

    @property
    def license(self) -> str | None:
        """The licence id the source declared, else the one in the model card's front matter."""
        return facts.licence(self.report)

    @property
    def datasets(self) -> tuple[str, ...]:
        """Training datasets the source or the model card declares."""
        return facts.datasets(self.report)

    @property
    def pipeline_tag(self) -> str | None:
        """The task the source or model card declares."""
        return facts.pipeline_tag(self.report)

    @property
    def passed(self) -> bool:
        """Whether the recorded decision is allow on a complete scan."""
        return (
            self.report.status is ScanStatus.COMPLETE
            and self.report.verdict.decision is Decision.ALLOW
        )

    def findings_by_severity(self) -> list[tuple[Severity, list[Finding]]]:
        """Findings grouped by severity, worst first; severities without findings left out."""
        groups: list[tuple[Severity, list[Finding]]] = []
        for severity in sorted(Severity, key=lambda s: -s.rank):
            found = [f for f in self.report.findings if f.severity is severity]
            if found:
                groups.append((severity, found))
        return groups

    def severity_counts(self) -> dict[str, int]:
        """How many findings of each severity."""
        counts = {s.value: 0 for s in Severity}
        for finding in self.report.findings:
            counts[finding.severity.value] += 1
        return counts

    @property
    def files(self) -> Sequence[FileResult]:
        """The files the scan read, in path order."""
        return sorted(self.report.files, key=lambda f: f.path)
