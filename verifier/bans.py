"""Bans and their blast radius: which recorded models a ban reaches, computed from recorded facts.

Pure: the estate (one `EstateModel` per recorded model, built from its stored facts by
`estate_model`) and the bans come in, the hits go out. A ban reaches the models it names
directly (the model at any or one commit, every model of a publisher or of a jurisdiction,
every model holding a blob) and, from each of those, every model that holds the same weights
byte for byte (a copy) and every model that derives from it through declared or verified
lineage, at any depth. docs/policy.md ("Bans") is the user's description.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from verifier import facts as derived
from verifier.errors import UsageError
from verifier.model import FileFormat, ScanFacts, is_commit_id
from verifier.policy.compiled import PublisherRegistry

#: Files whose bytes are weights: sharing one of them byte for byte makes a model a copy.
WEIGHT_FORMATS = frozenset(
    {
        FileFormat.SAFETENSORS,
        FileFormat.PICKLE,
        FileFormat.PYTORCH_ZIP,
        FileFormat.PYTORCH_LEGACY,
        FileFormat.NUMPY,
        FileFormat.NUMPY_NPZ,
        FileFormat.GGUF,
        FileFormat.HDF5,
        FileFormat.ONNX,
        FileFormat.TF_SAVEDMODEL,
        FileFormat.TENSOR_DATA,
    }
)
#: Longest reason kept with a ban.
MAX_REASON = 2_000
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_BLOB = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


class BanKind(enum.StrEnum):
    """What a ban names."""

    MODEL = "model"
    PUBLISHER = "publisher"
    JURISDICTION = "jurisdiction"
    BLOB = "blob"


class Relation(enum.StrEnum):
    """How a ban reaches a model."""

    #: The ban names the model (or its publisher, jurisdiction, or a blob it holds).
    NAMED = "named"
    #: The model declares the model before it in the path as a base, at some depth.
    DECLARED = "declared"
    #: The model's weights derive from the model before it (verified lineage).
    VERIFIED = "verified"
    #: The model holds weights of the model before it byte for byte (or its fingerprint
    #: says it is a re-upload of it).
    COPY = "copy"


_STRENGTH = (Relation.NAMED, Relation.COPY, Relation.VERIFIED, Relation.DECLARED)


def normalise_ban_value(kind: BanKind, text: str) -> str:
    """The canonical value of a ban of `kind`.

    A model is `namespace/name` or `namespace/name@<40-hex commit>` (`hf://` accepted); a
    publisher is a Hub namespace; a jurisdiction is the two-letter country code the publisher
    registry uses (upper case); a blob is `sha256:<64 hex>` (lower case).

    Raises:
        UsageError: The text is not a value of that kind.
    """
    value = text.strip()
    if kind is BanKind.MODEL:
        from verifier.sources.huggingface.targets import parse_hub_target

        ref = parse_hub_target(value if value.startswith("hf://") else f"hf://{value}")
        if ref.revision is not None and not is_commit_id(ref.revision):
            raise UsageError(
                f"{text}: ban a model at a commit (@<40-hex commit>) or at every commit "
                "(no @): a branch or tag moves"
            )
        return f"{ref.repo_id}@{ref.revision}" if ref.revision else ref.repo_id
    if kind is BanKind.PUBLISHER:
        if not _NAMESPACE.match(value) or ".." in value:
            raise UsageError(f"{text!r} is not a Hub namespace")
        return value
    if kind is BanKind.JURISDICTION:
        if not _COUNTRY.match(value):
            raise UsageError(
                f"{text!r} is not a country code: give the two letters the publisher "
                "registry uses (ISO 3166-1 alpha-2, such as CN)"
            )
        return value.upper()
    found = _BLOB.match(value)
    if found is None:
        raise UsageError(f"{text!r} is not a blob digest: give sha256:<64 hex digits>")
    return f"sha256:{found.group(1).lower()}"


def proposed_ban(kind: BanKind, text: str, *, by: str, at: str) -> Ban:
    """A ban not (yet) made, to ask what it would reach.

    Raises:
        UsageError: The text is not a value of that kind.
    """
    return Ban(
        ban_id=0,
        kind=kind,
        value=normalise_ban_value(kind, text),
        reason="(not banned: what a ban would reach)",
        banned_by=by,
        banned_at=at,
    )


def check_reason(reason: str) -> str:
    """The reason of a ban or lift, stripped.

    Raises:
        UsageError: It is empty or longer than `MAX_REASON` characters.
    """
    text = reason.strip()
    if not text:
        raise UsageError("give a reason: --reason TEXT (it is shown in every decision it causes)")
    if len(text) > MAX_REASON:
        raise UsageError(f"the reason is longer than {MAX_REASON} characters")
    return text


@dataclass(frozen=True)
class Ban:
    """A recorded ban: what it names, why, who made it, when, and whether it was lifted."""

    ban_id: int
    kind: BanKind
    value: str
    reason: str
    banned_by: str
    banned_at: str
    #: When lifted: by whom, when and why (a lift is recorded as a row of its own).
    lifted_by: str | None = None
    lifted_at: str | None = None
    lift_reason: str | None = None

    @property
    def active(self) -> bool:
        """Whether the ban is in force."""
        return self.lifted_at is None

    @property
    def label(self) -> str:
        """`model acme/base`, `blob sha256:...`: what the ban names."""
        return f"{self.kind.value} {self.value}"

    def document(self) -> dict[str, object]:
        """The JSON form (`verifier ban list --format json`, `GET /api/v1/bans`)."""
        return {
            "id": self.ban_id,
            "kind": self.kind.value,
            "value": self.value,
            "reason": self.reason,
            "banned_by": self.banned_by,
            "banned_at": self.banned_at,
            "active": self.active,
            "lifted_by": self.lifted_by,
            "lifted_at": self.lifted_at,
            "lift_reason": self.lift_reason,
        }


@dataclass(frozen=True)
class ParentLink:
    """A model this one derives from, as its facts name it (the commit when known)."""

    repo_id: str
    commit: str | None
    relation: Relation


@dataclass(frozen=True)
class EstateModel:
    """What the blast radius needs of one recorded model, from its newest scan's facts."""

    #: `hf://ns/name@commit` for a Hub model, else the scanned target.
    key: str
    scan_id: str
    repo_id: str | None
    commit: str | None
    namespace: str | None
    #: The publisher's country from the registry (upper case), when the registry knows it.
    country: str | None
    #: SHA-256 (hex) of every file, and of the weight files alone.
    blobs: frozenset[str]
    weight_blobs: frozenset[str]
    parents: tuple[ParentLink, ...] = ()

    @property
    def label(self) -> str:
        """`ns/name@commit` for a Hub model, else the key."""
        return self.key.removeprefix("hf://")


@dataclass(frozen=True)
class BanHit:
    """One model one ban reaches, with the path from what the ban names to the model."""

    ban: Ban
    model: EstateModel
    #: Labels from the first model the ban named to this model (this model last).
    path: tuple[str, ...]
    #: How the last step of the path reached this model.
    relation: Relation

    def reach_document(self) -> dict[str, object]:
        """The model and how the ban reaches it (`blast-radius`, `GET /api/v1/blast-radius`)."""
        return {
            "subject": self.model.key,
            "scan_id": self.model.scan_id,
            "relation": self.relation.value,
            "path": list(self.path),
        }

    def document(self) -> dict[str, object]:
        """The JSON form (the evidence document's `bans` entries)."""
        return {
            "ban_id": self.ban.ban_id,
            "kind": self.ban.kind.value,
            "value": self.ban.value,
            "reason": self.ban.reason,
            "banned_by": self.ban.banned_by,
            "banned_at": self.ban.banned_at,
            "relation": self.relation.value,
            "path": list(self.path),
        }


#: How many times a decision is made and recorded when each time a ban was made or lifted
#: while it was being recorded (`BansChangedError`): after the last, the error stands (a scan
#: is recorded as failed, a re-decision records nothing).
BAN_RECHECKS = 3


class BanLookup(Protocol):
    """Where the bans in force and the recorded estate are read: one ability every recorder
    has (`verifier.store.interface.ScanRecorder`)."""

    def ban_generation(self) -> int:
        """How many bans and lifts were ever recorded: it moves with every ban made or lifted.
        A scan reads it before `bans_reaching` and records with it (`ScanRecorder.record_scan`).
        """
        ...

    def bans_reaching(
        self, facts: ScanFacts, *, publishers: PublisherRegistry
    ) -> tuple[BanHit, ...]:
        """The bans in force that reach the model of `facts`, recorded or about to be."""
        ...


def _commit(value: object) -> str | None:
    return value if isinstance(value, str) and is_commit_id(value) else None


def estate_model(facts: ScanFacts, *, publishers: PublisherRegistry) -> EstateModel:
    """The estate's view of one scan's facts (pure)."""
    source: Mapping[str, str] = facts.source
    prov = facts.provenance
    repo_id = source.get("repo_id") or (prov.repo_id if prov else None) or None
    repo_id = repo_id or source.get("hf_cache_repo") or None
    commit = _commit(source.get("commit") or (prov.commit if prov else None))
    subject = derived.subject_of({"repo_id": repo_id, "commit": commit})
    namespace = repo_id.split("/", 1)[0] if repo_id and "/" in repo_id else None
    entry = publishers.lookup(namespace)
    parents: list[ParentLink] = []
    for ancestor in derived.lineage_claims(facts) or ():
        if not ancestor.repo_id:
            continue
        verified = (
            ancestor.claim == derived.CLAIM_VERIFIED
            or ancestor.declared_in == derived.FOUND_IN_WEIGHTS
        )
        relation = Relation.VERIFIED if verified else Relation.DECLARED
        parents.append(ParentLink(ancestor.repo_id, _commit(ancestor.commit), relation))
    lineage = facts.verified_lineage
    for copy in lineage.reuploads if lineage is not None else ():
        parents.append(ParentLink(copy.repo_id, _commit(copy.commit), Relation.COPY))
    return EstateModel(
        key=subject or facts.target,
        scan_id=facts.scan_id,
        repo_id=repo_id,
        commit=commit,
        namespace=namespace,
        country=entry.country.upper() if entry is not None else None,
        blobs=frozenset(f.sha256 for f in facts.files if f.sha256),
        weight_blobs=frozenset(
            f.sha256 for f in facts.files if f.sha256 and f.format in WEIGHT_FORMATS
        ),
        parents=tuple(parents),
    )


def _model_ref(value: str) -> tuple[str, str | None]:
    repo, _, commit = value.partition("@")
    return repo.lower(), commit or None


def _named(ban: Ban, model: EstateModel) -> bool:
    """Whether the ban names `model` itself (the first step of every path)."""
    if ban.kind is BanKind.MODEL:
        repo, commit = _model_ref(ban.value)
        return (model.repo_id or "").lower() == repo and commit in (None, model.commit)
    if ban.kind is BanKind.PUBLISHER:
        return (model.namespace or "").lower() == ban.value.lower()
    if ban.kind is BanKind.JURISDICTION:
        return model.country == ban.value.upper()
    return ban.value.removeprefix("sha256:") in model.blobs


class _Index:
    """The estate indexed by repo id (for parent links) and by weight blob (for copies)."""

    def __init__(self, estate: Sequence[EstateModel]) -> None:
        self.children: dict[str, list[tuple[EstateModel, ParentLink]]] = {}
        self.holders: dict[str, list[EstateModel]] = {}
        for model in estate:
            for link in model.parents:
                self.children.setdefault(link.repo_id.lower(), []).append((model, link))
            for blob in model.weight_blobs:
                self.holders.setdefault(blob, []).append(model)

    def reached_from(
        self, repo_id: str | None, commit: str | None, weight_blobs: Iterable[str]
    ) -> list[tuple[EstateModel, Relation]]:
        """Models that derive from `repo_id@commit` or hold one of its weight blobs.

        A link without a commit reaches every commit of its parent, and a ban without one
        every link: a declaration that does not say which commit is not a way out.
        """
        found: list[tuple[EstateModel, Relation]] = []
        for blob in sorted(weight_blobs):
            found += [(holder, Relation.COPY) for holder in self.holders.get(blob, ())]
        for child, link in self.children.get((repo_id or "").lower(), ()) if repo_id else ():
            if commit is None or link.commit is None or link.commit == commit:
                found.append((child, link.relation))
        # The strongest evidence first, so that a path says so: the same bytes, then the
        # weights, then a declaration.
        return sorted(found, key=lambda pair: _STRENGTH.index(pair[1]))


def _radius(ban: Ban, estate: Sequence[EstateModel], index: _Index) -> list[BanHit]:
    paths: dict[str, tuple[tuple[str, ...], Relation]] = {}
    by_key = {model.key: model for model in estate}

    def spread(queue: deque[EstateModel]) -> None:
        while queue:
            model = queue.popleft()
            path = paths[model.key][0]
            for child, how in index.reached_from(model.repo_id, model.commit, model.weight_blobs):
                if child.key not in paths:
                    paths[child.key] = ((*path, child.label), how)
                    queue.append(child)

    named = [model for model in estate if _named(ban, model)]
    for model in named:
        paths[model.key] = ((model.label,), Relation.NAMED)
    spread(deque(named))
    if ban.kind is BanKind.MODEL:
        # Models that declare the banned model at a commit never recorded reach it all the same.
        repo, commit = _model_ref(ban.value)
        more: deque[EstateModel] = deque()
        for child, how in index.reached_from(repo, commit, ()):
            if child.key not in paths:
                paths[child.key] = ((ban.value, child.label), how)
                more.append(child)
        spread(more)
    return [
        BanHit(ban=ban, model=by_key[key], path=path, relation=relation)
        for key, (path, relation) in sorted(paths.items())
    ]


def blast_radius(bans: Sequence[Ban], estate: Sequence[EstateModel]) -> tuple[BanHit, ...]:
    """Every (ban, model) pair where an active ban reaches a model of the estate.

    Ordered by ban, then by model key. Deterministic: the same bans and estate give the same
    hits.
    """
    index = _Index(estate)
    hits: list[BanHit] = []
    for ban in bans:
        if ban.active:
            hits += _radius(ban, estate, index)
    return tuple(hits)


def hits_for(key: str, hits: Sequence[BanHit]) -> tuple[BanHit, ...]:
    """The hits on the model `key`, one per ban."""
    return tuple(hit for hit in hits if hit.model.key == key)


def with_model(estate: Sequence[EstateModel], model: EstateModel) -> list[EstateModel]:
    """The estate with `model` in place of any earlier scan of the same model."""
    return [*(m for m in estate if m.key != model.key), model]
