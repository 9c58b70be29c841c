"""verifier's own verification levels, shared by every evidence format (never named SLSA_...)."""

from __future__ import annotations

import enum

from verifier.evidence.facts import EvidenceFacts
from verifier.model import ScanStatus, Severity

#: Findings that say a file differs from what the source declared, or was not compared.
DIGEST_PROBLEMS = frozenset(
    {
        "HF-DIGEST-MISMATCH",
        "HF-SIZE-MISMATCH",
        "HF-MISSING-FILE",
        "HF-EXTRA-FILE",
        "HF-PATH-ESCAPE",
        "HF-COMMIT-MISMATCH",
        "HF-NO-DECLARED-DIGEST",
        "HF-CACHE-DIGEST-MISMATCH",
    }
)


class Level(enum.StrEnum):
    """A property the scan established about the model; see docs/evidence.md."""

    FORMAT_SAFE = "VERIFIER_FORMAT_SAFE"
    DIGESTS_VERIFIED = "VERIFIER_DIGESTS_VERIFIED"
    SIGNED_BY_TRUSTED_IDENTITY = "VERIFIER_SIGNED_BY_TRUSTED_IDENTITY"
    PUBLISHER_IDENTIFIED = "VERIFIER_PUBLISHER_IDENTIFIED"


def established_levels(facts: EvidenceFacts) -> tuple[Level, ...]:
    """The levels the recorded facts establish, in the order of `Level`.

    - format-safe: the scan completed, every file was hashed, and no finding is high or critical.
    - digests-verified: every file's digest matched one declared before the download (a pinned
      Hub commit) or a verified signature's manifest.
    - signed-by-trusted-identity: the signature verified against a key or identity we trust.
    - publisher-identified: the publisher registry names the legal entity and its country.
    """
    report = facts.report
    complete = report.status is ScanStatus.COMPLETE and all(
        f.complete and f.sha256 for f in report.files
    )
    signed = facts.signature is not None and facts.signature.status == "verified"
    levels: list[Level] = []
    if (
        complete
        and report.files
        and not any(f.severity.at_least(Severity.HIGH) for f in report.findings)
    ):
        levels.append(Level.FORMAT_SAFE)
    declared = (
        facts.commit is not None
        and report.declared_files is not None
        and not any(f.code in DIGEST_PROBLEMS for f in report.findings)
    )
    if complete and report.files and (declared or signed):
        levels.append(Level.DIGESTS_VERIFIED)
    if signed:
        levels.append(Level.SIGNED_BY_TRUSTED_IDENTITY)
    if facts.publisher is not None and facts.publisher.identified:
        levels.append(Level.PUBLISHER_IDENTIFIED)
    return tuple(levels)
