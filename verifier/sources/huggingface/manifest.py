"""Expected against actual: what the Hub declared, compared with what was read (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from verifier.model import DeclaredFile, FileResult, Finding, Severity


def check_file(declared: DeclaredFile, result: FileResult) -> list[Finding]:
    """Findings when the bytes read differ from the declared size or digest."""
    findings: list[Finding] = []
    if result.size != declared.size:
        kind = "truncated" if result.size < declared.size else "longer than declared"
        findings.append(
            Finding(
                "HF-SIZE-MISMATCH",
                Severity.CRITICAL,
                f"download {kind}: {result.size} bytes received, {declared.size} declared",
                file=declared.path,
                evidence=f"declared {declared.size}, received {result.size}",
            )
        )
    if declared.sha256 is not None:
        if result.sha256 != declared.sha256:
            findings.append(
                _digest_mismatch(declared.path, "sha256", declared.sha256, result.sha256)
            )
    elif declared.git_sha1 is not None:
        if result.git_sha1 != declared.git_sha1:
            findings.append(
                _digest_mismatch(declared.path, "git blob sha1", declared.git_sha1, result.git_sha1)
            )
    else:
        findings.append(
            Finding(
                "HF-NO-DECLARED-DIGEST",
                Severity.HIGH,
                "the source declared no digest for this file, so its bytes cannot be verified",
                file=declared.path,
            )
        )
    return findings


def _digest_mismatch(path: str, kind: str, declared: str, actual: str | None) -> Finding:
    return Finding(
        "HF-DIGEST-MISMATCH",
        Severity.CRITICAL,
        f"the bytes received do not match the declared {kind}: the file was altered or corrupted",
        file=path,
        evidence=f"declared {declared}, received {actual}",
    )


_TREE_EXTRA = "the file tree lists a file the model info does not declare"
_TREE_DIFFERS = "the file tree and the model info declare different digests or sizes"
_TREE_MISSING = "the model info declares a file the file tree of the commit does not hold"
#: What `compare_listings` says, by finding code.
_LISTING_FINDINGS = {
    ("HF-EXTRA-FILE", _TREE_EXTRA),
    ("HF-DIGEST-MISMATCH", _TREE_DIFFERS),
    ("HF-MISSING-FILE", _TREE_MISSING),
}


def listing_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Those of `findings` that `compare_listings` made: what a recorded scan established
    about the commit's two listings, which a re-scan from kept bytes (that asks the Hub
    nothing) carries over."""
    return [f for f in findings if (f.code, f.message) in _LISTING_FINDINGS]


def compare_listings(
    tree: Sequence[DeclaredFile], siblings: Sequence[DeclaredFile]
) -> list[Finding]:
    """Findings where two listings of the same commit disagree (files or digests)."""
    findings: list[Finding] = []
    by_path = {f.path: f for f in siblings}
    listed = {f.path for f in tree}
    for entry in tree:
        other = by_path.get(entry.path)
        if other is None:
            findings.append(
                Finding(
                    "HF-EXTRA-FILE",
                    Severity.CRITICAL,
                    _TREE_EXTRA,
                    file=entry.path,
                )
            )
        elif (other.sha256, other.git_sha1, other.size) != (
            entry.sha256,
            entry.git_sha1,
            entry.size,
        ):
            findings.append(
                Finding(
                    "HF-DIGEST-MISMATCH",
                    Severity.CRITICAL,
                    _TREE_DIFFERS,
                    file=entry.path,
                    evidence=f"tree {entry.sha256 or entry.git_sha1}/{entry.size}, "
                    f"info {other.sha256 or other.git_sha1}/{other.size}",
                )
            )
    for path in sorted(set(by_path) - listed):
        findings.append(
            Finding(
                "HF-MISSING-FILE",
                Severity.CRITICAL,
                _TREE_MISSING,
                file=path,
            )
        )
    return findings


def declared_digest_matches(declared: DeclaredFile, data: bytes) -> bool:
    """Whether small in-memory `data` is the declared file (size and sha256 or git blob id)."""
    if len(data) != declared.size:
        return False
    if declared.sha256 is not None:
        return hashlib.sha256(data).hexdigest() == declared.sha256
    if declared.git_sha1 is not None:
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False)
        return blob.hexdigest() == declared.git_sha1
    return False
