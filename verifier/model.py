"""Frozen value types shared by every part of verifier; imports nothing of ours."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: A full git commit id: what a pinned revision is.
_COMMIT_ID = re.compile(r"[0-9a-f]{40}")


def is_commit_id(text: str) -> bool:
    """Whether `text` is a full 40-hex git commit id (lower case), the only pinned revision."""
    return _COMMIT_ID.fullmatch(text) is not None


class Severity(enum.StrEnum):
    """How bad a finding is, in increasing order."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order info < low < medium < high < critical."""
        return _SEVERITY_ORDER.index(self)

    def at_least(self, other: Severity) -> bool:
        """Whether this severity is `other` or worse."""
        return self.rank >= other.rank


_SEVERITY_ORDER = list(Severity)


class FileFormat(enum.StrEnum):
    """A file's format, identified by its content rather than its name."""

    SAFETENSORS = "safetensors"
    PICKLE = "pickle"
    PYTORCH_ZIP = "pytorch-zip"
    PYTORCH_LEGACY = "pytorch-legacy"
    NUMPY = "numpy"
    NUMPY_NPZ = "numpy-npz"
    ZIP = "zip"
    GGUF = "gguf"
    HDF5 = "hdf5"
    ONNX = "onnx"
    TF_SAVEDMODEL = "tf-savedmodel"
    SENTENCEPIECE = "sentencepiece"
    JSON = "json"
    TEXT = "text"
    IMAGE = "image"
    EMPTY = "empty"
    UNKNOWN = "unknown"
    COMPRESSED = "compressed"  # gzip, bz2, xz, lzma or zlib stream (joblib's compressed pickles)
    TAR = "tar"
    ARCHIVE = "archive"  # 7z (read with py7zr, extra `7z`), rar (never opened)
    EXECUTABLE = "executable"  # native programs and libraries: PE, ELF, Mach-O
    TENSOR_DATA = "tensor-data"  # raw tensor bytes that an analysed model file names


class Decision(enum.StrEnum):
    """The outcome of a policy evaluation."""

    ALLOW = "allow"
    DENY = "deny"


class ScanStatus(enum.StrEnum):
    """Whether a scan checked everything it was asked to."""

    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    FAILED = "failed"


@dataclass(frozen=True)
class Finding:
    """One observation about the model, with where and why."""

    code: str
    severity: Severity
    message: str
    file: str | None = None
    member: str | None = None
    offset: int | None = None
    evidence: str | None = None

    def with_file(self, path: str) -> Finding:
        """The same finding attributed to `path`."""
        return Finding(
            code=self.code,
            severity=self.severity,
            message=self.message,
            file=path,
            member=self.member,
            offset=self.offset,
            evidence=self.evidence,
        )


@dataclass(frozen=True)
class ExtraDigest:
    """A digest a signature asked for, computed in the same pass (a whole file or a shard)."""

    algorithm: str
    digest: str
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class FileResult:
    """What one pass over a file established: its digests, format and findings."""

    path: str
    size: int
    sha256: str | None
    git_sha1: str | None
    format: FileFormat
    findings: tuple[Finding, ...] = ()
    complete: bool = True
    extra_digests: tuple[ExtraDigest, ...] = ()
    #: Model facts scanners noted while reading this file (`config`, `safetensors`, `card`);
    #: gathered into the scan's `ModelDetails` (`verifier.facts.details_from_notes`).
    notes: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class SignatureStatus(enum.StrEnum):
    """What checking the model's signature established."""

    VERIFIED = "verified"
    INVALID = "invalid"
    ABSENT = "absent"
    NOT_CHECKED = "not-checked"


class SignatureMethod(enum.StrEnum):
    """How a model signature is trusted."""

    KEY = "key"
    CERTIFICATE = "certificate"
    SIGSTORE = "sigstore"


@dataclass(frozen=True)
class SignatureDiff:
    """How the signed manifest and the files read differ, by path (shards as path:start:end)."""

    extra: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether the files are exactly the signed ones."""
        return not (self.extra or self.missing or self.changed)


@dataclass(frozen=True)
class SignatureResult:
    """The outcome of checking a model signature, with who signed and what differs.

    `signer` is the identity a policy matches: the Sigstore identity (SAN), the certificate
    subject, or the key fingerprint (`sha256:<hex>` of the DER public key).
    """

    status: SignatureStatus
    reason: str
    path: str | None = None
    method: SignatureMethod | None = None
    signer: str | None = None
    issuer: str | None = None
    key_fingerprint: str | None = None
    certificate_subject: str | None = None
    key_usage: tuple[str, ...] = ()
    predicate_type: str | None = None
    digest_algorithm: str | None = None
    diff: SignatureDiff = field(default_factory=SignatureDiff)
    outside: tuple[str, ...] = ()
    bundle_sha256: str | None = None


@dataclass(frozen=True)
class RuleOutcome:
    """A policy rule that fired, with its effect and what it matched."""

    rule_id: str
    effect: str
    severity: Severity
    message: str
    evidence: tuple[str, ...] = ()
    #: The waiver that set this outcome aside, if one did (it then does not count).
    waived_by: str | None = None


@dataclass(frozen=True)
class WaiverOutcome:
    """A waiver that concerned the decided subject: applied, expired or unused."""

    waiver_id: str
    rule_id: str
    subject: str
    status: str
    expires: str
    approved_by: str
    ticket: str


#: The rule id of the deny a ban adds to every decision it reaches (never waived).
BAN_RULE_ID = "(ban)"


@dataclass(frozen=True)
class Verdict:
    """A policy decision with the reasons that produced it."""

    decision: Decision
    policy_name: str
    policy_digest: str
    mode: str
    reasons: tuple[RuleOutcome, ...] = ()
    environment: str | None = None
    waivers: tuple[WaiverOutcome, ...] = ()

    @property
    def banned(self) -> bool:
        """Whether a ban denied the subject."""
        return any(r.rule_id == BAN_RULE_ID and r.effect == "deny" for r in self.reasons)

    @property
    def blocks(self) -> bool:
        """Whether the decision stops the model (exit 1, not admitted, not placed).

        A deny blocks under an `enforce` policy; under `audit` and `dry-run` it is reported and
        does not block, except a ban's: a ban is the security team's decision about a model,
        not a rule on trial, so it blocks whatever the policy's mode.
        """
        return self.decision is Decision.DENY and (self.mode == "enforce" or self.banned)


class SourceType(enum.StrEnum):
    """Where a scanned model came from."""

    LOCAL = "local"
    HUGGINGFACE = "huggingface"


@dataclass(frozen=True)
class ModelRef:
    """A model on a Hub as the user named it: `namespace/name` at a requested revision."""

    repo_id: str
    revision: str | None = None

    @property
    def namespace(self) -> str:
        """The publisher part of the repo id (`Qwen` in `Qwen/Qwen2.5-0.5B`)."""
        return self.repo_id.split("/", 1)[0] if "/" in self.repo_id else ""


@dataclass(frozen=True)
class DeclaredFile:
    """A file as the source declares it, before any byte is downloaded.

    `sha256` is the LFS object id (LFS files); `git_sha1` the git blob id (the rest, and
    the pointer's id for LFS files).
    """

    path: str
    size: int
    sha256: str | None
    git_sha1: str | None
    lfs: bool


@dataclass(frozen=True)
class PinnedRevision:
    """A requested revision resolved once to the commit every later request uses."""

    repo_id: str
    revision_requested: str
    commit: str
    endpoint: str


class LineageRelation(enum.StrEnum):
    """How a model declares it derives from a base model (`base_model_relation`)."""

    FINETUNE = "finetune"
    ADAPTER = "adapter"
    QUANTIZED = "quantized"
    MERGE = "merge"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LineageEdge:
    """One declared parent: `child` says it derives from `parent` (self-declared, unchecked).

    `parent_commit` is the commit the parent had at scan time, or None when it could not be
    resolved (then `error` says why).
    """

    child: str
    child_commit: str
    parent: str
    parent_commit: str | None
    relation: LineageRelation
    depth: int
    error: str | None = None
    #: The licence the parent's card declares, when it was resolved.
    parent_license: str | None = None


@dataclass(frozen=True)
class Lineage:
    """Declared lineage up to the root models, with whether it was cut short."""

    edges: tuple[LineageEdge, ...] = ()
    roots: tuple[str, ...] = ()
    truncated: bool = False
    cycle: bool = False


@dataclass(frozen=True)
class Provenance:
    """What the source says about the model: who published it, when, under which terms."""

    source_type: SourceType
    repo_id: str
    namespace: str
    commit: str
    revision_requested: str
    endpoint: str
    created_at: str | None = None
    last_modified: str | None = None
    gated: str | None = None
    private: bool | None = None
    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    tags: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    library_name: str | None = None
    pipeline_tag: str | None = None
    base_models: tuple[str, ...] = ()
    base_model_relation: str | None = None
    #: The Hub's own scan, as the endpoint reported it; corroboration only, never a pass.
    hub_security_status: str | None = None
    lineage: Lineage = field(default_factory=Lineage)


@dataclass(frozen=True)
class ModelCard:
    """What a model card (README.md) holds: selected front matter and section headings."""

    #: The card's front matter, selected keys only, as bounded JSON (`scanners.facts.CARD_KEYS`).
    metadata: Mapping[str, Any] = field(default_factory=dict)
    headings: tuple[str, ...] = ()
    #: Whether the card was longer than what was read for its facts.
    truncated: bool = False
    #: Why the front matter did not parse, when it did not.
    metadata_error: str | None = None


@dataclass(frozen=True)
class WeightsHeader:
    """What one safetensors header says: how many parameters, in which dtypes."""

    parameters: int
    dtypes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelDetails:
    """Facts read from the model's own files during the scan's one read pass.

    `config` is the recorded part of config.json (None when there is none); `weights` the
    safetensors headers by file path.
    """

    config: Mapping[str, Any] | None = None
    card: ModelCard | None = None
    weights: Mapping[str, WeightsHeader] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether the scan read no model facts at all."""
        return self.config is None and self.card is None and not self.weights

    @property
    def architectures(self) -> tuple[str, ...]:
        """The architectures config.json names."""
        value = (self.config or {}).get("architectures")
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list | tuple):
            return tuple(str(v) for v in value if isinstance(v, str | int | float))
        return ()

    @property
    def model_type(self) -> str | None:
        """config.json's `model_type`."""
        value = (self.config or {}).get("model_type")
        return value if isinstance(value, str) and value else None

    @property
    def parameter_count(self) -> int | None:
        """Parameters over every safetensors file, or None when there is none."""
        return sum(w.parameters for w in self.weights.values()) if self.weights else None

    @property
    def tensor_dtypes(self) -> tuple[str, ...]:
        """Every tensor dtype the safetensors headers name, sorted."""
        return tuple(sorted({dtype for w in self.weights.values() for dtype in w.dtypes}))


@dataclass(frozen=True, kw_only=True)
class ScanFacts:
    """What one scan established, without its decision: what policies decide over.

    The one facts model: the store records it, policies decide over it (`policy.evidence`),
    and the JSON output and evidence formats render it (`verifier.facts` gives its versioned
    document and the facts derived from it, such as the licence and declared lineage).
    """

    scan_id: str
    target: str
    started_at: str
    finished_at: str
    tool_version: str
    status: ScanStatus
    files: tuple[FileResult, ...]
    findings: tuple[Finding, ...]
    source: dict[str, str] = field(default_factory=dict)
    signature: SignatureResult | None = None
    #: Provenance of a model fetched from a Hub; None for local scans.
    provenance: Provenance | None = None
    #: Files and digests the source declared before download; None for local scans.
    declared_files: tuple[DeclaredFile, ...] | None = None
    #: Model facts read during the scan's one pass (config, safetensors headers, model card).
    details: ModelDetails = field(default_factory=ModelDetails)
    #: Lineage verified from the weights (`verifier.lineage.verify`); None when not attempted.
    verified_lineage: VerifiedLineage | None = None


@dataclass(frozen=True, kw_only=True)
class ScanReport(ScanFacts):
    """Everything one scan found and decided, as recorded: its facts and its verdict."""

    verdict: Verdict
    #: Organisation countersignatures written for this scan, oldest first.
    approvals: tuple[Approval, ...] = ()

    @property
    def facts(self) -> ScanFacts:
        """The scan's facts without its decision."""
        return ScanFacts(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ScanFacts)})


@dataclass(frozen=True)
class Approval:
    """One organisation countersignature of a scan, as `verifier approve` recorded it."""

    #: When the bundle was written (ISO 8601, UTC).
    approved_at: str
    #: Hex SHA-256 of the signing key's PEM public key (the bundle's key hint).
    key_fingerprint: str
    #: Hex SHA-256 of the bundle file as written.
    bundle_sha256: str
    #: Where the bundle was written, as the user gave it.
    output: str
    #: How many files the bundle's manifest lists.
    files: int


@dataclass(frozen=True)
class ScanSummary:
    """One line of the scan history."""

    scan_id: str
    target: str
    started_at: str
    status: ScanStatus
    decision: Decision
    file_count: int
    finding_count: int


@dataclass(frozen=True)
class LineageBase:
    """A recorded model the weights were attributed to (see `verifier.lineage`)."""

    repo_id: str
    commit: str | None
    publisher: str | None
    #: Whether the organisation registered it as a reference base (`verifier lineage add-base`).
    registered_base: bool
    #: Mean best-match unit correlation (0..1) and its calibration against the permutation null.
    score: float
    z: float
    p_value: float
    #: The weights are practically the same as the base's (score at or above 0.9995).
    near_identical: bool

    @property
    def label(self) -> str:
        """`repo_id@commit`, or the repo id alone."""
        return f"{self.repo_id}@{self.commit}" if self.commit else self.repo_id


@dataclass(frozen=True)
class Reupload:
    """Another publisher's recorded model whose weights this model holds again."""

    repo_id: str
    commit: str | None
    #: Weight files shared byte for byte (0 when only the fingerprint is near-identical).
    files: int
    #: The fingerprint score, when near-identical rather than byte-identical.
    score: float | None = None

    @property
    def label(self) -> str:
        """`repo_id@commit`, or the repo id alone."""
        return f"{self.repo_id}@{self.commit}" if self.commit else self.repo_id


class LineageStatus(enum.StrEnum):
    """Whether lineage was verified from the weights."""

    #: A fingerprint was computed and compared with every comparable recorded model.
    VERIFIED = "verified"
    #: The weights could not be fingerprinted (format, dtype, architecture, unclean files).
    UNVERIFIABLE = "unverifiable"
    #: Nothing to verify: no safetensors or GGUF weights and no declared base.
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True, kw_only=True)
class VerifiedLineage:
    """What the weights say about where the model comes from (`verifier.lineage.verify`)."""

    status: LineageStatus
    #: Why unverifiable, or empty.
    reason: str = ""
    #: The name the model is recorded under for lineage (Hub repo id, cache repo, or target).
    repo_id: str = ""
    #: The model's own namespace, when known.
    publisher: str | None = None
    #: Bases the model declares (source edges, else the card's `base_model`).
    declared: tuple[str, ...] = ()
    #: True/False when a declared base was checked against recorded weights, else None.
    declared_matches: bool | None = None
    #: Registered or declared bases the weights are attributed to, strongest first.
    verified_bases: tuple[LineageBase, ...] = ()
    #: Other recorded models the weights match (siblings, copies): evidence, not bases.
    related: tuple[LineageBase, ...] = ()
    #: Labels of verified bases the declaration does not name.
    undeclared_bases: tuple[str, ...] = ()
    #: Declared bases checked against recorded weights and not matched.
    mismatched_declared: tuple[str, ...] = ()
    #: Declared bases with no comparable recorded fingerprint.
    unverifiable_declared: tuple[str, ...] = ()
    #: How many recorded fingerprints were comparable.
    compared: int = 0
    #: Recorded models of this width fingerprinted only by an older fingerprint version (so
    #: compared with nothing until fingerprinted again), and the registered bases among them.
    older_version_references: int = 0
    older_version_bases: tuple[str, ...] = ()
    #: Other publishers' models holding the same weights.
    reuploads: tuple[Reupload, ...] = ()
    #: The serialised fingerprint and its hidden size: recorded, never part of the document.
    fingerprint: bytes | None = field(default=None, repr=False, compare=False)
    hidden_size: int | None = None


class PlacementOutcome(enum.StrEnum):
    """What `verifier pull` did at the destination."""

    #: The snapshot was written (new, or completing one that lacked files).
    PLACED = "placed"
    #: The destination already held exactly these bytes; nothing was written.
    UNCHANGED = "unchanged"
    #: The destination held other bytes for the commit and `force` replaced them.
    REPLACED = "replaced"


@dataclass(frozen=True)
class Placement:
    """Where verified files were placed for loaders to read, and what that changed."""

    repo_id: str
    commit: str
    #: The folder a loader reads: the cache's `snapshots/<commit>`, or the local folder.
    path: str
    #: Paths (in the repository) placed, sorted.
    files: tuple[str, ...]
    outcome: PlacementOutcome


@dataclass(frozen=True)
class ServiceDecision:
    """The service's decision for the model@commit a folder on disk was checked against."""

    #: The service's address (`--server`).
    server: str
    #: `hf://namespace/name@<commit>`.
    subject: str
    #: The recorded scan that answers (its files are what the folder was compared with).
    scan_id: str
    #: That scan's status: an incomplete scan is never allowed.
    status: ScanStatus
    verdict: Verdict


@dataclass(frozen=True)
class CheckResult:
    """A model on disk compared with its lockfile entry or the service's record (`check`)."""

    path: str
    repo_id: str
    #: The commit the lockfile pins (or the service's record is of).
    commit: str
    #: Files re-hashed, sorted by path.
    files: tuple[FileDigest, ...]
    #: How many files the lockfile entry (or the service's record) lists.
    expected: int
    #: LOCK-DRIFT (RECORD-DRIFT against the service) for every changed, missing or extra file
    #: (and another commit), or the walk's own findings (unreadable, links out of the folder);
    #: empty when all matched.
    findings: tuple[Finding, ...]
    #: Checked against the service (`--server`): its decision; None against a lockfile.
    decision: ServiceDecision | None = None

    @property
    def matched(self) -> bool:
        """Whether every expected file is there with its expected bytes, and nothing else is."""
        return not self.findings


@dataclass(frozen=True)
class FileDigest:
    """One file on disk as hashed: its path in the model, size and sha256 (None: unreadable)."""

    path: str
    size: int
    sha256: str | None
