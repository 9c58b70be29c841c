"""Verified lineage of one scanned model: fingerprint, attribution, re-uploads, findings.

The one entry point the scan path calls is `verify_lineage`. Its inputs are the scanned files
(with the location each was read from), what the model declares, and a `References` view of the
store; its output is a `verifier.model.VerifiedLineage`, a frozen fact the report carries, the
policy reads and the store records. A model that cannot be fingerprinted is not an error: it is
`LINEAGE-UNVERIFIABLE` (info), since many models hold no weights this method compares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from verifier.model import (
    FileFormat,
    FileResult,
    Finding,
    LineageBase,
    LineageStatus,
    Reupload,
    Severity,
    VerifiedLineage,
)

if TYPE_CHECKING:
    # Imported where they run: a scan without weights (one pickle) never loads the
    # fingerprinting code and the weight readers it brings (numpy, the GGUF scanner).
    from verifier.lineage.attribution import RecordedReferences, VerifiedBase
    from verifier.lineage.fingerprint import Fingerprint, LineageKey


class References(Protocol):
    """What lineage needs from the store: one ability every recorder has
    (`verifier.store.interface.ScanRecorder`)."""

    def lineage_key(self) -> LineageKey:
        """The store's secret that chooses every fingerprint's anchors and matrices (made on
        first use, the same for every scan the store records)."""
        ...

    def lineage_references(self, hidden_size: int) -> RecordedReferences:
        """Recorded fingerprints of models with this hidden size, made with `lineage_key`, and
        the models of that width recorded only with fingerprints of an older version."""
        ...

    def identical_files(self, sha256s: Sequence[str]) -> Sequence[tuple[str, str | None, str]]:
        """`(repo_id, commit, sha256)` of recorded Hub models holding any of these files."""
        ...


def _same_publisher(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _namespace(repo_id: str) -> str | None:
    return repo_id.split("/", 1)[0] if "/" in repo_id else None


def _byte_reuploads(
    weights: Sequence[FileResult], references: References, *, repo_id: str, publisher: str | None
) -> list[Reupload]:
    """Other publishers' recorded models that hold this model's weight files byte for byte."""
    sha256s = sorted({f.sha256 for f in weights if f.sha256})
    shared: dict[tuple[str, str | None], set[str]] = {}
    for other_repo, other_commit, sha256 in references.identical_files(sha256s) if sha256s else ():
        if other_repo.lower() == repo_id.lower() or _same_publisher(
            publisher, _namespace(other_repo)
        ):
            continue
        shared.setdefault((other_repo, other_commit), set()).add(sha256)
    ordered = sorted(shared.items(), key=lambda kv: (-len(kv[1]), kv[0][0], kv[0][1] or ""))
    return [Reupload(repo, commit, len(hashes)) for (repo, commit), hashes in ordered]


_GGUF_SPLIT = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)


def _fingerprint_gguf(paths: Sequence[Path], *, key: LineageKey) -> Fingerprint:
    """The fingerprint of the first GGUF model that decodes: a repository often holds one model
    quantised several ways (one file each, or the shards of a split), and only F32, F16, BF16,
    F64 and Q8_0 tensors are read.

    Raises:
        FingerprintError: No file (or split) holds an embedding and matrices that decode.
    """
    from verifier.lineage.fingerprint import FingerprintError, fingerprint_gguf

    models: dict[str, list[Path]] = {}
    for path in sorted(paths):
        models.setdefault(
            _GGUF_SPLIT.sub("", path.name) if _GGUF_SPLIT.search(path.name) else path.name, []
        ).append(path)
    reasons = []
    for name, parts in models.items():
        try:
            return fingerprint_gguf(parts, key=key)
        except FingerprintError as exc:
            reasons.append(f"{name}: {exc}")
    raise FingerprintError("no GGUF model decodes (" + "; ".join(reasons[:3]) + ")")


def _base(verified: VerifiedBase) -> LineageBase:
    reference, match = verified.reference, verified.match
    return LineageBase(
        repo_id=reference.repo_id,
        commit=reference.commit,
        publisher=reference.publisher,
        registered_base=reference.registered_base,
        score=round(match.unit_score, 4),
        z=round(match.z, 2),
        p_value=match.p_value,
        near_identical=verified.near_identical,
    )


def verify_lineage(
    files: Sequence[FileResult],
    locations: Mapping[str, str],
    *,
    repo_id: str,
    publisher: str | None,
    declared: Iterable[str],
    references: References | None,
) -> VerifiedLineage:
    """Fingerprint the model's safetensors (else GGUF) weights and attribute them.

    Args:
        files: What the scan read; only clean, fully read safetensors files (or, when there
            are none, GGUF files) are fingerprinted.
        locations: Where each file path was read from on disk (quarantine or folder).
        repo_id: The model's own name (its other commits are not compared with it).
        publisher: Its namespace, when known (a re-upload is by another publisher).
        declared: The bases the model declares.
        references: The store's recorded fingerprints, or None when nothing is recorded.
    """
    declared_bases = tuple(dict.fromkeys(d for d in declared if d))
    weights = [f for f in files if f.format is FileFormat.SAFETENSORS]
    ggufs = [f for f in files if f.format is FileFormat.GGUF]

    def unverifiable(reason: str, reuploads: Sequence[Reupload] = ()) -> VerifiedLineage:
        return VerifiedLineage(
            status=LineageStatus.UNVERIFIABLE,
            reason=reason,
            repo_id=repo_id,
            publisher=publisher,
            declared=declared_bases,
            unverifiable_declared=declared_bases,
            reuploads=tuple(reuploads),
        )

    if not weights and not ggufs and not declared_bases:
        return VerifiedLineage(
            status=LineageStatus.NOT_APPLICABLE,
            reason="no safetensors or GGUF weights and no declared base",
            repo_id=repo_id,
            publisher=publisher,
        )
    if not weights and not ggufs:
        return unverifiable("the model declares a base but holds no safetensors or GGUF weights")
    held = weights or ggufs
    byte_copies = (
        _byte_reuploads(held, references, repo_id=repo_id, publisher=publisher)
        if references is not None
        else []
    )
    unclean = [
        f.path
        for f in held
        if not f.complete or f.sha256 is None or f.findings or f.path not in locations
    ]
    if unclean:
        return unverifiable(f"{unclean[0]} was not read cleanly", byte_copies)
    from verifier.lineage.attribution import RecordedReferences, attribute
    from verifier.lineage.fingerprint import (
        FingerprintError,
        LineageKey,
        fingerprint_safetensors,
    )

    # With no store nothing is recorded or compared: any key will do, so a fresh one.
    key = references.lineage_key() if references is not None else LineageKey.generate()
    try:
        if weights:
            fingerprint = fingerprint_safetensors(
                (Path(locations[f.path]) for f in weights), key=key
            )
        else:
            fingerprint = _fingerprint_gguf([Path(locations[f.path]) for f in ggufs], key=key)
    except (FingerprintError, OSError) as exc:
        return unverifiable(str(exc) or type(exc).__name__, byte_copies)
    recorded = (
        references.lineage_references(fingerprint.hidden_size)
        if references is not None
        else RecordedReferences()
    )
    attribution = attribute(
        fingerprint, repo_id=repo_id, declared=declared_bases, references=recorded.references
    )
    older = [m for m in recorded.older if m.repo_id.lower() != repo_id.lower()]
    copied = {r.repo_id.lower() for r in byte_copies}
    near_copies = [
        Reupload(v.reference.repo_id, v.reference.commit, 0, round(v.match.unit_score, 4))
        for v in (*attribution.verified_bases, *attribution.related)
        if v.near_identical
        and v.reference.repo_id.lower() not in copied
        and not _same_publisher(publisher, v.reference.publisher)
    ]
    return VerifiedLineage(
        status=LineageStatus.VERIFIED,
        repo_id=repo_id,
        publisher=publisher,
        declared=declared_bases,
        declared_matches=attribution.declared_matches,
        verified_bases=tuple(_base(v) for v in attribution.verified_bases),
        related=tuple(_base(v) for v in attribution.related),
        undeclared_bases=tuple(v.reference.label for v in attribution.undeclared_bases),
        mismatched_declared=attribution.mismatched_declared,
        unverifiable_declared=attribution.unverifiable_declared,
        compared=attribution.compared,
        older_version_references=len(older),
        older_version_bases=tuple(m.label for m in older if m.registered_base),
        reuploads=(*byte_copies, *near_copies),
        fingerprint=fingerprint.to_bytes(),
        hidden_size=fingerprint.hidden_size,
    )


def verified_lineage_findings(lineage: VerifiedLineage) -> tuple[Finding, ...]:
    """The findings verified lineage gives (each documented in docs/findings.md)."""
    findings: list[Finding] = []
    if lineage.status is LineageStatus.UNVERIFIABLE:
        findings.append(
            Finding(
                "LINEAGE-UNVERIFIABLE",
                Severity.INFO,
                f"lineage not verified from the weights: {lineage.reason}",
            )
        )
    if lineage.older_version_references:
        stale = lineage.older_version_bases
        among = f", registered base(s) among them: {', '.join(stale)}" if stale else ""
        findings.append(
            Finding(
                "LINEAGE-UNVERIFIABLE",
                Severity.INFO,
                f"{lineage.older_version_references} recorded model(s) of this width were "
                f"fingerprinted by an older fingerprint version only and were not compared"
                f"{among}: fingerprint them again (re-scan; docs/lineage.md, After an upgrade)",
                evidence=", ".join(stale) or None,
            )
        )
    bases = {b.label: b for b in lineage.verified_bases}
    for label in lineage.undeclared_bases:
        base = bases[label]
        findings.append(
            Finding(
                "LINEAGE-UNDECLARED-BASE",
                Severity.HIGH,
                f"the weights derive from {label}, which the model does not declare "
                f"(score {base.score:.3f}, z {base.z:.1f})",
                evidence=label,
            )
        )
    for name in lineage.mismatched_declared:
        findings.append(
            Finding(
                "LINEAGE-DECLARED-MISMATCH",
                Severity.HIGH,
                f"the model declares {name} as its base, but its weights do not derive from "
                "the recorded weights of that model",
                evidence=name,
            )
        )
    declared = {d.lower() for d in lineage.declared}
    for copy in lineage.reuploads:
        how = (
            f"{copy.files} weight file(s) are byte-identical to files of {copy.label}"
            if copy.score is None
            else f"the weights are near-identical to {copy.label} (score {copy.score:.3f})"
        )
        # A copy that names its original (a conversion, a mirror) is said; one that hides it
        # is a re-upload under another name.
        named = copy.repo_id.lower() in declared
        findings.append(
            Finding(
                "REUPLOAD-OF",
                Severity.MEDIUM if named else Severity.HIGH,
                f"{how}, published by another namespace"
                + (" (declared as its base)" if named else " and not declared"),
                evidence=copy.label,
            )
        )
    return tuple(findings)
