"""The facts every evidence format renders, read from a recorded scan; absent ones stay None.

Reports never fetch: everything here comes from the database (through the Store) or from the
recorded scan itself. A field that was not recorded is None (or empty), and every renderer says
"not recorded" for it rather than guessing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from verifier.model import Decision, FileResult, Finding, ScanReport, ScanStatus, Severity

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


@dataclass(frozen=True)
class Ancestor:
    """One model this model declares it derives from, pinned where the source recorded it."""

    repo_id: str
    commit: str | None = None
    relation: str | None = None
    depth: int = 1
    publisher: Publisher | None = None
    #: Who declared the relation: "source" (recorded by the Hub source) or "model card"
    #: (the card's front matter, read during the scan; never pinned to a commit).
    declared_in: str = "source"
    license: str | None = None
    #: Why the ancestor could not be resolved to a commit, when it could not.
    error: str | None = None

    @property
    def purl(self) -> str | None:
        """The ancestor's package URL, when its namespace and name are known."""
        if "/" not in self.repo_id:
            return None
        namespace, name = self.repo_id.split("/", 1)
        return huggingface_purl(namespace, name, self.commit)


@dataclass(frozen=True)
class Provenance:
    """Where the model came from and what its source declared about it."""

    repo_id: str | None = None
    commit: str | None = None
    revision_requested: str | None = None
    endpoint: str | None = None
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    datasets: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library_name: str | None = None
    created_at: str | None = None
    last_modified: str | None = None
    gated: str | None = None
    hub_security_status: str | None = None
    lineage_truncated: bool = False
    lineage_cycle: bool = False


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


@dataclass(frozen=True)
class ModelCard:
    """What the model card (README.md) holds: front matter and section headings."""

    metadata: Mapping[str, Any] = field(default_factory=dict)
    headings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelDetails:
    """Facts read from the model's own files during the scan's read pass."""

    architectures: tuple[str, ...] = ()
    model_type: str | None = None
    parameter_count: int | None = None
    tensor_dtypes: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    card: ModelCard | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ModelDetails:
        """The typed view of the details document the scan recorded (see `scanners.facts`)."""
        config = document.get("config")
        config = config if isinstance(config, Mapping) else {}
        weights = document.get("safetensors")
        weights = weights if isinstance(weights, Mapping) else {}
        card = document.get("card")
        architectures = config.get("architectures")
        return cls(
            architectures=_strings(architectures),
            model_type=_text(config.get("model_type")),
            parameter_count=_count(weights),
            tensor_dtypes=tuple(
                sorted(
                    {
                        dtype
                        for entry in weights.values()
                        if isinstance(entry, Mapping)
                        for dtype in _strings(entry.get("dtypes"))
                    }
                )
            ),
            config=config,
            card=(
                ModelCard(
                    metadata=_mapping(card.get("metadata")),
                    headings=_strings(card.get("headings")),
                )
                if isinstance(card, Mapping)
                else None
            ),
        )


def _count(weights: Mapping[str, Any]) -> int | None:
    counts = [e.get("parameters") for e in weights.values() if isinstance(e, Mapping)]
    if not counts or not all(isinstance(c, int) for c in counts):
        return None
    return sum(c for c in counts if isinstance(c, int))


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value if isinstance(item, str | int | float))
    return ()


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def huggingface_purl(namespace: str, name: str, commit: str | None) -> str:
    """`pkg:huggingface/<namespace>/<name>@<commit>` (the version only when pinned)."""
    base = f"pkg:huggingface/{quote(namespace, safe='')}/{quote(name, safe='')}"
    return f"{base}@{commit}" if commit else base


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
    details: ModelDetails | None = None
    provenance: Provenance | None = None
    lineage: tuple[Ancestor, ...] | None = None
    signature: SignatureFacts | None = None
    publisher: Publisher | None = None

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
        base = f"pkg:generic/{quote(self.name, safe='')}"
        digest = self.manifest_sha256
        return f"{base}?checksum=sha256:{digest}" if digest else base

    @property
    def license(self) -> str | None:
        """The licence id the source declared, else the one in the model card's front matter."""
        if self.provenance is not None and self.provenance.license:
            return self.provenance.license
        card = self.details.card if self.details is not None else None
        value = card.metadata.get("license") if card is not None else None
        return value if isinstance(value, str) and value else None

    @property
    def datasets(self) -> tuple[str, ...]:
        """Training datasets the source or the model card declares."""
        if self.provenance is not None and self.provenance.datasets:
            return self.provenance.datasets
        card = self.details.card if self.details is not None else None
        return _strings(card.metadata.get("datasets")) if card is not None else ()

    @property
    def pipeline_tag(self) -> str | None:
        """The task the source or model card declares."""
        if self.provenance is not None and self.provenance.pipeline_tag:
            return self.provenance.pipeline_tag
        card = self.details.card if self.details is not None else None
        return _text(card.metadata.get("pipeline_tag")) if card is not None else None

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
