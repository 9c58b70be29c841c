"""Compiled policies: what the engine decides with, frozen stdlib types without pydantic or YAML.

`verifier.policy.schema` is the one definition of the policy file format and its validator;
`schema.compile_policy_file` turns a validated file into these types (field for field, the
same names), and `verifier.policy.loading` keeps them in the compiled-policy cache so that a
policy validated once is not validated again at every start. A test holds each type's fields
to its schema model's.
"""

# No `from __future__ import annotations`: the codec reads these types' annotations at run
# time, and evaluating them from strings (compiling each) cost more than the rest of a read.

import datetime as dt
import enum
import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from verifier.errors import PolicyError
from verifier.model import FileFormat, Severity
from verifier.policy.codec import encode

if TYPE_CHECKING:
    from verifier.policy.cel import CelProgram


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

#: `{dotted.path}` placeholders in rule messages, filled from the evidence document.
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)\}")

#: Matchers added after policies were first digested. Left out of the dump when unset, so a
#: policy that does not use them keeps the digest it had (digests are pinned and recorded).
LATER_MATCHERS = frozenset({"finding_codes_not_in", "finding_paths", "finding_paths_not_in"})

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


@dataclass(frozen=True)
class CompiledMatch:
    """A rule's matchers (`schema.Match`); every matcher given must hold for the rule to fire."""

    OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = LATER_MATCHERS

    finding_severity_at_least: Severity | None = None
    finding_codes: tuple[str, ...] | None = None
    finding_codes_not_in: tuple[str, ...] | None = None
    finding_paths: tuple[str, ...] | None = None
    finding_paths_not_in: tuple[str, ...] | None = None
    file_formats: tuple[FileFormat, ...] | None = None
    file_formats_not_in: tuple[FileFormat, ...] | None = None
    scan_incomplete: bool | None = None
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
    signature_verified: bool | None = None
    signer_in: tuple[str, ...] | None = None
    signer_not_in: tuple[str, ...] | None = None
    remote_code: bool | None = None
    revision_pinned: bool | None = None
    model_age_days_under: int | None = None
    model_age_days_over: int | None = None
    model_age_known: bool | None = None
    hub_scan_status_in: tuple[HubScanStatus, ...] | None = None
    model_card: bool | None = None
    lineage_declared: bool | None = None
    lineage_identified: bool | None = None

    def given(self) -> dict[str, Any]:
        """The matchers this rule sets, by name."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class CompiledRule:
    """One rule (`schema.Rule`): when its matchers (and `when:`) hold, its effect applies."""

    id: str
    effect: Effect
    severity: Severity
    message: str
    match: CompiledMatch
    when: str | None
    lineage: LineageScope | None


@dataclass(frozen=True)
class CompiledWaiver:
    """An approved, expiring exception to one rule for one exact subject (`schema.Waiver`)."""

    id: str
    rule: str
    subject: str
    expires: dt.date
    approved_by: str
    ticket: str
    justification: str


@dataclass(frozen=True)
class CompiledEnvironment:
    """One environment's changes to the base set (`schema.EnvironmentSet`)."""

    description: str
    mode: Mode | None
    default: Effect | None
    rules: tuple[CompiledRule, ...]
    disable: tuple[str, ...]


@dataclass(frozen=True)
class CompiledPolicyFile:
    """A policy file as written and validated (`schema.PolicyFile`), with the waivers of its
    waivers files added."""

    version: int
    name: str
    description: str
    mode: Mode
    default: Effect
    rules: tuple[CompiledRule, ...]
    environments: Mapping[str, CompiledEnvironment]
    default_environment: str | None
    waivers: tuple[CompiledWaiver, ...]


@dataclass(frozen=True)
class RegisteredPublisher:
    """What the publisher registry knows about one Hub namespace (`publishers.PublisherEntry`)."""

    legal_entity: str
    country: str
    source: str
    reviewed: dt.date
    verified: bool
    note: str


@dataclass(frozen=True)
class PublisherRegistry:
    """Namespaces looked up case-insensitively, as the Hub resolves them."""

    entries: Mapping[str, RegisteredPublisher]

    def lookup(self, namespace: str | None) -> RegisteredPublisher | None:
        """The entry for `namespace`, or None when unknown (a fact, not an error)."""
        if not namespace:
            return None
        return self.entries.get(namespace.lower())

    def merged(self, other: "PublisherRegistry") -> "PublisherRegistry":
        """This registry with every entry of `other` added or overriding."""
        return PublisherRegistry({**self.entries, **other.entries})

    def canonical(self) -> list[Any]:
        """JSON-ready content, sorted, for the policy digest."""
        return [[name, encode(self.entries[name])] for name in sorted(self.entries)]

    def digest(self) -> str:
        """SHA-256 of the canonical content."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class Policy:
    """A validated policy file bound to one environment (or to its base set), ready to decide."""

    document: CompiledPolicyFile
    publishers: PublisherRegistry
    environment: str | None
    mode: Mode
    default: Effect
    rules: tuple[CompiledRule, ...]
    source: str = "(policy)"
    #: `file:line` of each rule's `when:` expression, for errors raised while evaluating it.
    locations: Mapping[str, str] = field(default_factory=dict)
    programs: Mapping[str, "CelProgram"] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The policy's name."""
        return self.document.name

    @property
    def waivers(self) -> tuple[CompiledWaiver, ...]:
        """Every waiver in the file."""
        return self.document.waivers

    def with_waivers(self, extra: Sequence[CompiledWaiver]) -> "Policy":
        """This policy with `extra` added to its waivers (they count in the digest)."""
        return replace(self, document=replace(self.document, waivers=self.waivers + tuple(extra)))

    def digest(self) -> str:
        """SHA-256 of the canonical content (the whole file and the publisher registry)."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        # Computed once per policy (frozen: `with_waivers` makes another one).
        canonical = json.dumps(
            {"policy": encode(self.document), "publishers": self.publishers.canonical()},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def rule_paths(doc: CompiledPolicyFile) -> list[tuple[CompiledRule, tuple[Any, ...]]]:
    """Every rule of the file (base set, then each environment's) with its path in the file."""
    paths: list[tuple[CompiledRule, tuple[Any, ...]]] = [
        (rule, ("rules", i)) for i, rule in enumerate(doc.rules)
    ]
    for env_name, env in doc.environments.items():
        paths += [
            (rule, ("environments", env_name, "rules", i)) for i, rule in enumerate(env.rules)
        ]
    return paths


def chosen_environment(doc: CompiledPolicyFile, env: str | None, *, source: Path) -> str | None:
    """The environment in force: `env`, else the file's `default_environment`, else none.

    Raises:
        PolicyError: `env` is not an environment of the file.
    """
    chosen = env if env is not None else doc.default_environment
    if chosen is not None and chosen not in doc.environments:
        known = ", ".join(sorted(doc.environments)) or "none"
        raise PolicyError(
            f"{source}: no environment {chosen!r} in policy {doc.name!r} (environments: {known})"
        )
    return chosen


def bind(
    doc: CompiledPolicyFile,
    *,
    env: str | None,
    publishers: PublisherRegistry,
    source: Path,
    when_locations: Sequence[str | None],
    programs: Mapping[int, "CelProgram"] | None = None,
) -> Policy:
    """The policy set in force for `env` (default: the file's `default_environment`).

    `when_locations` are the `file:line` of each rule's `when:` (in `rule_paths` order, None
    for a rule without one); `programs` the `when:` expressions already compiled, by the same
    index (the others are compiled here).

    Raises:
        PolicyError: `env` is not an environment of the file, or a `when:` does not compile.
    """
    chosen = chosen_environment(doc, env, source=source)
    paths = rule_paths(doc)
    in_force = list(range(len(doc.rules)))
    mode, default = doc.mode, doc.default
    if chosen is not None:
        env_set = doc.environments[chosen]
        in_force = [i for i in in_force if paths[i][0].id not in env_set.disable]
        in_force += [i for i, (_, path) in enumerate(paths) if path[:2] == ("environments", chosen)]
        mode = env_set.mode or mode
        default = env_set.default or default
    locations: dict[str, str] = {}
    compiled: dict[str, CelProgram] = {}
    for i in in_force:
        rule, at = paths[i][0], when_locations[i]
        if rule.when is None:
            continue
        program = (programs or {}).get(i)
        if program is None:
            from verifier.policy.cel import compile_expression  # only for a `when:`

            try:
                program = compile_expression(rule.when)
            except ValueError as exc:
                raise PolicyError(f"{at}: rule {rule.id!r}: when: {exc}") from None
        locations[rule.id] = at or str(source)
        compiled[rule.id] = program
    return Policy(
        document=doc,
        publishers=publishers,
        environment=chosen,
        mode=mode,
        default=default,
        rules=tuple(paths[i][0] for i in in_force),
        source=str(source),
        locations=locations,
        programs=compiled,
    )


@dataclass(frozen=True)
class ValidatedPolicy:
    """A policy file, its registry and its waivers files, validated and compiled: what the
    compiled-policy cache keeps (`verifier.policy.loading`), and what `bind` binds."""

    document: CompiledPolicyFile
    publishers: PublisherRegistry
    #: `file:line` of each rule's `when:` (None without one), in `rule_paths` order.
    when_locations: tuple[str | None, ...]
    #: The `when:` expressions compiled while checking them, by the same index.
    programs: Mapping[int, "CelProgram"] = field(default_factory=dict)

    def bind(self, env: str | None, *, source: Path) -> Policy:
        """The policy set in force for `env` (see `compiled.bind`).

        Raises:
            PolicyError: `env` is not an environment of the file.
        """
        return bind(
            self.document,
            env=env,
            publishers=self.publishers,
            source=source,
            when_locations=self.when_locations,
            programs=self.programs,
        )


def waiver_conflict(
    doc: CompiledPolicyFile, waiver: CompiledWaiver, *, earlier: Sequence[CompiledWaiver] = ()
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
