"""Policy files: the schema, loading with file and line in every error, and environments."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from verifier.errors import PolicyError
from verifier.facts import parse_facts_document
from verifier.model import FileFormat, Severity
from verifier.policy.cel import (
    LOAD_EVALUATION_SECONDS,
    CelEvaluationError,
    CelProgram,
    compile_expression,
    evaluate,
)
from verifier.policy.evidence import build_evidence
from verifier.policy.publishers import PublisherRegistry, load_publishers, shipped_publishers
from verifier.policy.yamlfile import read_yaml, validate, where


class Effect(enum.StrEnum):
    """What a rule does when it matches."""

    DENY = "deny"
    WARN = "warn"
    ALLOW = "allow"


class Mode(enum.StrEnum):
    """How a decision is applied: enforce blocks, audit records only, dry-run records nothing."""

    ENFORCE = "enforce"
    AUDIT = "audit"
    DRY_RUN = "dry-run"


class HubScanStatus(enum.StrEnum):
    """The Hub's own scan of a model, as the evidence's `hub_scan.status` reads it."""

    CLEAN = "clean"
    ISSUES = "issues"
    PENDING = "pending"
    UNKNOWN = "unknown"


class LineageScope(enum.StrEnum):
    """Whether model matchers must hold for any or all of the model and its ancestors."""

    ANY = "any"
    ALL = "all"


#: A waiver subject: a model pinned to a commit, or one file by content.
HF_SUBJECT = re.compile(r"^hf://[A-Za-z0-9][\w.-]*/[\w.-]+@[0-9a-f]{40}$")
FILE_SUBJECT = re.compile(r"^sha256:[0-9a-f]{64}$")
_ID = r"^[a-z0-9][a-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Matchers added after policies were first digested. Left out of the dump when unset, so a
#: policy that does not use them keeps the digest it had (digests are pinned and recorded).
_LATER_MATCHERS = frozenset({"finding_codes_not_in", "finding_paths", "finding_paths_not_in"})


class Match(_Strict):
    """Typed matchers; every matcher given must hold for the rule to fire."""

    # Scan facts: files and findings.
    finding_severity_at_least: Severity | None = None
    finding_codes: tuple[str, ...] | None = None
    finding_codes_not_in: tuple[str, ...] | None = None
    # Glob patterns over the path of the file a finding is about (`*` crosses folders).
    finding_paths: tuple[str, ...] | None = None
    finding_paths_not_in: tuple[str, ...] | None = None
    file_formats: tuple[FileFormat, ...] | None = None
    file_formats_not_in: tuple[FileFormat, ...] | None = None
    scan_incomplete: bool | None = None
    # Model facts (lineage-aware: with `lineage:` they apply to every ancestor too).
    model_in: tuple[str, ...] | None = None
    model_not_in: tuple[str, ...] | None = None
    publisher_in: tuple[str, ...] | None = None
    publisher_not_in: tuple[str, ...] | None = None
    publisher_known: bool | None = None
    jurisdiction_in: tuple[str, ...] | None = None
    jurisdiction_not_in: tuple[str, ...] | None = None
    licence_in: tuple[str, ...] | None = None
    licence_not_in: tuple[str, ...] | None = None
    licence_known: bool | None = None
    # Provenance and signature facts about the model itself.
    signature_verified: bool | None = None
    signer_in: tuple[str, ...] | None = None
    signer_not_in: tuple[str, ...] | None = None
    remote_code: bool | None = None
    revision_pinned: bool | None = None
    model_age_days_under: int | None = Field(default=None, ge=0)
    model_age_days_over: int | None = Field(default=None, ge=0)
    model_age_known: bool | None = None
    hub_scan_status_in: tuple[HubScanStatus, ...] | None = None
    model_card: bool | None = None
    lineage_declared: bool | None = None
    lineage_identified: bool | None = None

    @field_validator("jurisdiction_in", "jurisdiction_not_in")
    @classmethod
    def _countries(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for code in value or ():
            if not re.fullmatch(r"[A-Z]{2}", code):
                raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 code such as 'US'")
        return value

    def given(self) -> dict[str, Any]:
        """The matchers this rule sets, by name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in _LATER_MATCHERS}


#: Matchers about a model's identity, publisher and licence: what `lineage:` applies to ancestors.
NODE_MATCHERS = frozenset(
    {
        "model_in",
        "model_not_in",
        "publisher_in",
        "publisher_not_in",
        "publisher_known",
        "jurisdiction_in",
        "jurisdiction_not_in",
        "licence_in",
        "licence_not_in",
        "licence_known",
    }
)


class Rule(_Strict):
    """One rule: when its matchers (and `when:` expression) hold, its effect applies."""

    id: str = Field(pattern=_ID)
    effect: Effect
    severity: Severity = Severity.MEDIUM
    message: str = Field(min_length=1)
    match: Match = Match()
    when: str | None = Field(default=None, min_length=1)
    lineage: LineageScope | None = None

    @model_validator(mode="after")
    def _has_a_condition(self) -> Rule:
        if not self.match.given() and self.when is None:
            raise ValueError("a rule needs `match:` matchers, a `when:` expression, or both")
        if self.lineage is not None and not (set(self.match.given()) & NODE_MATCHERS):
            raise ValueError(
                "`lineage:` applies model matchers to ancestors; give one of "
                + ", ".join(sorted(NODE_MATCHERS))
            )
        return self


class Waiver(_Strict):
    """An approved, expiring exception to one rule for one exact subject."""

    id: str = Field(pattern=_ID)
    rule: str
    subject: str
    expires: dt.date
    approved_by: str = Field(min_length=1)
    ticket: str = Field(min_length=1)
    justification: str = Field(min_length=1)

    @field_validator("subject")
    @classmethod
    def _exact_subject(cls, value: str) -> str:
        if HF_SUBJECT.match(value) or FILE_SUBJECT.match(value):
            return value
        raise ValueError(
            f"{value!r} is not an exact subject: give hf://namespace/name@<40-hex commit> or "
            "sha256:<64-hex file digest>; a branch, tag or unpinned name can move"
        )


class EnvironmentSet(_Strict):
    """One environment's changes to the base set: its mode, default, extra and disabled rules."""

    description: str = ""
    mode: Mode | None = None
    default: Effect | None = None
    rules: tuple[Rule, ...] = ()
    disable: tuple[str, ...] = ()


class PolicyFile(_Strict):
    """A policy file as written."""

    version: int = Field(1, ge=1, le=1)
    name: str = Field(min_length=1)
    description: str = ""
    mode: Mode = Mode.ENFORCE
    default: Effect = Effect.ALLOW
    rules: tuple[Rule, ...] = Field(min_length=1)
    environments: dict[str, EnvironmentSet] = {}
    default_environment: str | None = None
    waivers: tuple[Waiver, ...] = ()


@dataclass(frozen=True, eq=False)
class Policy:
    """A validated policy file bound to one environment (or to its base set), ready to decide."""

    document: PolicyFile
    publishers: PublisherRegistry
    environment: str | None
    mode: Mode
    default: Effect
    rules: tuple[Rule, ...]
    source: str = "(policy)"
    #: `file:line` of each rule's `when:` expression, for errors raised while evaluating it.
    locations: Mapping[str, str] = field(default_factory=dict)
    programs: Mapping[str, CelProgram] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The policy's name."""
        return self.document.name

    @property
    def waivers(self) -> tuple[Waiver, ...]:
        """Every waiver in the file."""
        return self.document.waivers

    def digest(self) -> str:
        """SHA-256 of the canonical content (the whole file and the publisher registry)."""
        canonical = json.dumps(
            {
                "policy": self.document.model_dump(mode="json"),
                "publishers": self.publishers.canonical(),
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def _check_references(doc: PolicyFile, text: str, source: Path) -> None:
    base_ids = [rule.id for rule in doc.rules]
    all_ids = set(base_ids)
    seen: set[str] = set()
    for i, rule in enumerate(doc.rules):
        if rule.id in seen:
            at = where(text, source, ("rules", i, "id"))
            raise PolicyError(f"{at}: rule id {rule.id!r} is used twice")
        seen.add(rule.id)
    for env_name, env in doc.environments.items():
        env_seen = set(base_ids)
        for i, rule in enumerate(env.rules):
            if rule.id in env_seen:
                at = where(text, source, ("environments", env_name, "rules", i, "id"))
                raise PolicyError(f"{at}: rule id {rule.id!r} is used twice in {env_name}")
            env_seen.add(rule.id)
            all_ids.add(rule.id)
        for i, rule_id in enumerate(env.disable):
            if rule_id not in base_ids:
                at = where(text, source, ("environments", env_name, "disable", i))
                raise PolicyError(f"{at}: disable: no base rule has the id {rule_id!r}")
    if doc.default_environment is not None and doc.default_environment not in doc.environments:
        at = where(text, source, ("default_environment",))
        raise PolicyError(
            f"{at}: default_environment: expected one of the environments "
            f"({', '.join(sorted(doc.environments)) or 'none defined'})"
        )
    waiver_ids: set[str] = set()
    for i, waiver in enumerate(doc.waivers):
        if waiver.rule not in all_ids:
            at = where(text, source, ("waivers", i, "rule"))
            raise PolicyError(f"{at}: waivers.{i}.rule: no rule has the id {waiver.rule!r}")
        if waiver.id in waiver_ids:
            at = where(text, source, ("waivers", i, "id"))
            raise PolicyError(f"{at}: waiver id {waiver.id!r} is used twice")
        waiver_ids.add(waiver.id)


def _rule_paths(doc: PolicyFile) -> list[tuple[Rule, tuple[Any, ...]]]:
    paths: list[tuple[Rule, tuple[Any, ...]]] = [
        (rule, ("rules", i)) for i, rule in enumerate(doc.rules)
    ]
    for env_name, env in doc.environments.items():
        paths += [
            (rule, ("environments", env_name, "rules", i)) for i, rule in enumerate(env.rules)
        ]
    return paths


#: `{dotted.path}` placeholders in rule messages, filled from the evidence document.
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)\}")


def _resolves(document: Any, parts: list[str]) -> bool:
    """Whether a placeholder path names a field (an index into a list always may)."""
    value = document
    for part in parts:
        if isinstance(value, list) and part.isdigit():
            return True
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return True


def bind(
    doc: PolicyFile,
    *,
    env: str | None,
    publishers: PublisherRegistry,
    text: str,
    source: Path,
) -> Policy:
    """The policy set in force for `env` (default: the file's `default_environment`).

    Raises:
        PolicyError: `env` is not an environment of the file, or a `when:` does not compile.
    """
    chosen = env if env is not None else doc.default_environment
    rules = list(doc.rules)
    mode, default = doc.mode, doc.default
    if chosen is not None:
        if chosen not in doc.environments:
            known = ", ".join(sorted(doc.environments)) or "none"
            raise PolicyError(
                f"{source}: no environment {chosen!r} in policy {doc.name!r} "
                f"(environments: {known})"
            )
        env_set = doc.environments[chosen]
        rules = [rule for rule in rules if rule.id not in env_set.disable] + list(env_set.rules)
        mode = env_set.mode or mode
        default = env_set.default or default
    locations: dict[str, str] = {}
    programs: dict[str, CelProgram] = {}
    # Every field is present in every evidence document, so a document with no facts at all
    # shows a misspelt field or placeholder at load time rather than during a scan.
    blank = build_evidence(
        parse_facts_document({}), publishers=publishers, now=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    )
    for rule, path in _rule_paths(doc):
        for placeholder in PLACEHOLDER.findall(rule.message):
            if not _resolves(blank, placeholder.split(".")):
                at = where(text, source, (*path, "message"))
                raise PolicyError(
                    f"{at}: rule {rule.id!r}: message: {{{placeholder}}} is not a field of the "
                    "evidence document (see docs/policy.md)"
                )
        if rule.when is None:
            continue
        at = where(text, source, (*path, "when"))
        try:
            program = compile_expression(rule.when)
            evaluate(program, blank, seconds=LOAD_EVALUATION_SECONDS)
        except ValueError as exc:
            raise PolicyError(f"{at}: rule {rule.id!r}: when: {exc}") from None
        except CelEvaluationError as exc:
            raise PolicyError(
                f"{at}: rule {rule.id!r}: when: raises on a scan with no facts ({exc}); "
                "check the field names, and guard indexes and optional values"
            ) from None
        if rule in rules:
            locations[rule.id] = at
            programs[rule.id] = program
    return Policy(
        document=doc,
        publishers=publishers,
        environment=chosen,
        mode=mode,
        default=default,
        rules=tuple(rules),
        source=str(source),
        locations=locations,
        programs=programs,
    )


def parse_policy(
    text: str,
    *,
    source: Path,
    env: str | None = None,
    publishers: PublisherRegistry | None = None,
    waivers: Sequence[str | Path] = (),
) -> Policy:
    """Validate policy text and bind it to an environment.

    Args:
        text: The YAML.
        source: Where it came from, for error messages.
        env: The environment to use; default the file's `default_environment`, else its base set.
        publishers: The publisher registry; default the shipped one.
        waivers: Waiver files to add to the policy's own waivers.

    Raises:
        PolicyError: the YAML does not parse or does not fit the schema, a reference is
            dangling, an expression does not compile, or `env` is unknown.
    """
    data = read_yaml(text, source=source)
    doc = validate(PolicyFile, data, text=text, source=source)
    _check_references(doc, text, source)
    for waivers_path in waivers:
        doc = _add_waivers(doc, Path(waivers_path))
    registry = publishers if publishers is not None else shipped_publishers()
    return bind(doc, env=env, publishers=registry, text=text, source=source)


class WaiverFile(_Strict):
    """A file of waivers kept apart from the policy (`--waivers FILE`)."""

    version: int = Field(1, ge=1, le=1)
    waivers: tuple[Waiver, ...] = Field(min_length=1)


def _add_waivers(doc: PolicyFile, path: Path) -> PolicyFile:
    """`doc` with the waivers of the file at `path` added (they count in the policy digest).

    Raises:
        PolicyError: the file is unreadable or invalid, names an unknown rule or reuses an id.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read waivers file {path}: {exc}") from None
    extra = validate(WaiverFile, read_yaml(text, source=path), text=text, source=path).waivers
    for i, waiver in enumerate(extra):
        conflict = waiver_conflict(doc, waiver, earlier=extra[:i])
        if conflict is not None:
            field, problem = conflict
            prefix = f"waivers.{i}.rule: " if field == "rule" else ""
            raise PolicyError(f"{where(text, path, ('waivers', i, field))}: {prefix}{problem}")
    return doc.model_copy(update={"waivers": doc.waivers + extra})


def waiver_conflict(
    doc: PolicyFile, waiver: Waiver, *, earlier: Sequence[Waiver] = ()
) -> tuple[str, str] | None:
    """The field of `waiver` that keeps it from being added to `doc` (after `earlier`) and
    why, or None when it can be added.

    The one check of a waiver added to a policy, from a waivers file or recorded by the
    service: its rule must exist in some environment, and its id must be new.
    """
    rule_ids = {rule.id for rule in doc.rules} | {
        rule.id for env_set in doc.environments.values() for rule in env_set.rules
    }
    if waiver.rule not in rule_ids:
        return "rule", f"policy {doc.name!r} has no rule {waiver.rule!r}"
    if any(other.id == waiver.id for other in (*doc.waivers, *earlier)):
        return "id", f"waiver id {waiver.id!r} is used twice"
    return None


def load_policy(
    path: str | Path,
    *,
    env: str | None = None,
    publishers: str | Path | None = None,
    waivers: Sequence[str | Path] = (),
) -> Policy:
    """Load and validate a policy file, with the shipped registry extended by `publishers`
    and the waivers of the `waivers` files added.

    Raises:
        PolicyError: a file is missing, unreadable or invalid, or `env` is unknown.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    registry = shipped_publishers()
    if publishers is not None:
        registry = registry.merged(load_publishers(publishers))
    return parse_policy(text, source=path, env=env, publishers=registry, waivers=waivers)


def default_policy_path() -> Path:
    """The shipped default policy, `policies/default.yaml`."""
    from importlib.resources import files

    return Path(str(files("verifier._policies").joinpath("default.yaml")))
