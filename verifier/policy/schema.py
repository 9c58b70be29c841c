"""Policy files: the schema, loading with file and line in every error, and environments.

The one definition of the policy file format and its validator. A validated file is compiled
(`compile_policy_file`) into the frozen types of `verifier.policy.compiled`, which the engine
decides with; `verifier.policy.loading` keeps that compiled form in a cache so that the next
start neither validates nor imports this module.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
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
from verifier.policy.codec import from_model
from verifier.policy.compiled import (
    FILE_SUBJECT,
    HF_SUBJECT,
    LATER_MATCHERS,
    NODE_MATCHERS,
    PLACEHOLDER,
    CompiledPolicyFile,
    CompiledWaiver,
    Effect,
    HubScanStatus,
    LineageScope,
    Mode,
    Policy,
    PublisherRegistry,
    ValidatedPolicy,
    chosen_environment,
    rule_paths,
    waiver_conflict,
)
from verifier.policy.evidence import build_evidence
from verifier.policy.files import read_waivers_text
from verifier.policy.publishers import shipped_publishers
from verifier.policy.yamlfile import read_yaml, validate, where

__all__ = [
    "FILE_SUBJECT",
    "HF_SUBJECT",
    "NODE_MATCHERS",
    "Effect",
    "EnvironmentSet",
    "HubScanStatus",
    "LineageScope",
    "Match",
    "Mode",
    "Policy",
    "PolicyFile",
    "Rule",
    "ValidatedPolicy",
    "Waiver",
    "WaiverFile",
    "compile_policy_file",
    "compile_waiver",
    "parse_policy",
    "validate_policy",
    "waiver_conflict",
]

_ID = r"^[a-z0-9][a-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        return {k: v for k, v in data.items() if v is not None or k not in LATER_MATCHERS}


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


def _blank_evidence(publishers: PublisherRegistry) -> dict[str, Any]:
    """An evidence document with no facts at all: every field present, every value unknown."""
    return build_evidence(
        parse_facts_document({}), publishers=publishers, now=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    )


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


def _check_rules(
    doc: CompiledPolicyFile, *, publishers: PublisherRegistry, text: str, source: Path
) -> tuple[tuple[str | None, ...], dict[int, CelProgram]]:
    """Check every rule's message placeholders and `when:` expression (base set and every
    environment): the `file:line` of each `when:` and its compiled program, by the index of
    the rule in `rule_paths` order.

    Every field is present in every evidence document, so a document with no facts at all
    shows a misspelt field or placeholder at load time rather than during a scan.

    Raises:
        PolicyError: a placeholder names no field, or a `when:` does not compile or raises on
            an evidence document with no facts.
    """
    blank = _blank_evidence(publishers)
    locations: list[str | None] = []
    programs: dict[int, CelProgram] = {}
    for i, (rule, path) in enumerate(rule_paths(doc)):
        for placeholder in PLACEHOLDER.findall(rule.message):
            if not _resolves(blank, placeholder.split(".")):
                at = where(text, source, (*path, "message"))
                raise PolicyError(
                    f"{at}: rule {rule.id!r}: message: {{{placeholder}}} is not a field of the "
                    "evidence document (see docs/policy.md)"
                )
        if rule.when is None:
            locations.append(None)
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
        locations.append(at)
        programs[i] = program
    return tuple(locations), programs


def compile_policy_file(doc: PolicyFile) -> CompiledPolicyFile:
    """The compiled form of a validated policy file."""
    return from_model(CompiledPolicyFile, doc)


def compile_waiver(waiver: Waiver) -> CompiledWaiver:
    """The compiled form of a validated waiver (from a file, or recorded by the service)."""
    return from_model(CompiledWaiver, waiver)


def validate_policy(
    text: str,
    *,
    source: Path,
    env: str | None = None,
    publishers: PublisherRegistry | None = None,
    waivers: Sequence[str | Path] = (),
    waiver_texts: Mapping[Path, str] | None = None,
) -> ValidatedPolicy:
    """Validate policy text (and the waivers files it draws in) and compile it.

    `env`, when given, must be an environment of the file (checked before the rules, as
    binding it would). `waiver_texts` are waivers files already read, by path (the others
    are read here).

    Raises:
        PolicyError: the YAML does not parse or does not fit the schema, a reference is
            dangling, an expression does not compile, or `env` is unknown.
    """
    data = read_yaml(text, source=source)
    validated = validate(PolicyFile, data, text=text, source=source)
    _check_references(validated, text, source)
    doc = compile_policy_file(validated)
    for waivers_path in waivers:
        path = Path(waivers_path)
        doc = _add_waivers(doc, path, text=(waiver_texts or {}).get(path))
    registry = publishers if publishers is not None else shipped_publishers()
    chosen_environment(doc, env, source=source)
    locations, programs = _check_rules(doc, publishers=registry, text=text, source=source)
    return ValidatedPolicy(doc, registry, locations, programs)


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
    validated = validate_policy(
        text, source=source, env=env, publishers=publishers, waivers=waivers
    )
    return validated.bind(env, source=source)


class WaiverFile(_Strict):
    """A file of waivers kept apart from the policy (`--waivers FILE`)."""

    version: int = Field(1, ge=1, le=1)
    waivers: tuple[Waiver, ...] = Field(min_length=1)


def _add_waivers(doc: CompiledPolicyFile, path: Path, *, text: str | None) -> CompiledPolicyFile:
    """`doc` with the waivers of the file at `path` (its `text` when already read) added
    (they count in the policy digest).

    Raises:
        PolicyError: the file is unreadable or invalid, names an unknown rule or reuses an id.
    """
    if text is None:
        text = read_waivers_text(path)
    parsed = validate(WaiverFile, read_yaml(text, source=path), text=text, source=path)
    extra = tuple(compile_waiver(waiver) for waiver in parsed.waivers)
    for i, waiver in enumerate(extra):
        conflict = waiver_conflict(doc, waiver, earlier=extra[:i])
        if conflict is not None:
            field_name, problem = conflict
            prefix = f"waivers.{i}.rule: " if field_name == "rule" else ""
            raise PolicyError(f"{where(text, path, ('waivers', i, field_name))}: {prefix}{problem}")
    return replace(doc, waivers=doc.waivers + extra)
