"""Policy files: load YAML, validate it against the schema, and name what is wrong and where."""

from __future__ import annotations

import enum
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from verifier.errors import PolicyError
from verifier.model import FileFormat, Severity


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Typed matchers; every matcher given must hold for the rule to fire."""

    finding_severity_at_least: Severity | None = None
    finding_codes: tuple[str, ...] | None = None
    file_formats: tuple[FileFormat, ...] | None = None
    scan_incomplete: bool | None = None


class Rule(_Strict):
    """One rule: when it matches, its effect applies with its message."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    effect: Effect
    severity: Severity = Severity.MEDIUM
    message: str
    match: Match


class Policy(_Strict):
    """A named policy set."""

    version: int = Field(1, ge=1, le=1)
    name: str
    description: str = ""
    mode: Mode = Mode.ENFORCE
    default: Effect = Effect.ALLOW
    rules: tuple[Rule, ...] = Field(min_length=1)

    def digest(self) -> str:
        """SHA-256 of the policy's canonical content: same content, same digest."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _yaml_error(path: Path, exc: yaml.YAMLError) -> PolicyError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc)
    return PolicyError(f"{where}: invalid YAML: {problem}")


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    node: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _describe(error: dict[str, Any], text: str, source: Path) -> str:
    loc = tuple(error["loc"])
    line = _line_of(text, loc)
    where = f"{source}:{line}" if line is not None else str(source)
    field = ".".join(str(part) for part in loc) or "(top level)"
    return f"{where}: {field}: {error['msg']}"


def parse_policy(text: str, *, source: Path) -> Policy:
    """Validate policy text.

    Raises:
        PolicyError: the YAML does not parse or does not fit the schema.
    """
    if ids := _duplicate_keys(text, source):
        raise PolicyError(f"{source}: duplicate key {ids}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc) from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy must be a mapping with name and rules")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(dict(e), text, source) for e in exc.errors()]
        raise PolicyError("; ".join(problems)) from None
    seen: set[str] = set()
    for rule in policy.rules:
        if rule.id in seen:
            raise PolicyError(f"{source}: rule id {rule.id!r} is used twice")
        seen.add(rule.id)
    return policy


def _duplicate_keys(text: str, source: Path) -> str | None:
    """Find a mapping key given twice (PyYAML silently keeps the last one)."""

    class _Loader(yaml.SafeLoader):
        pass

    found: list[str] = []

    def construct(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        keys = [loader.construct_object(k) for k, _ in node.value]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                found.append(f"{key!r} at line {node.value[i][0].start_mark.line + 1}")
        return loader.construct_mapping(node)

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct)
    try:
        yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc) from None
    return found[0] if found else None


def load_policy(path: str | Path) -> Policy:
    """Load and validate a policy file.

    Raises:
        PolicyError: the file is missing, unreadable or invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    return parse_policy(text, source=path)


def default_policy_path() -> Path:
    """The shipped default policy, `policies/default.yaml`."""
    from importlib.resources import files

    return Path(str(files("verifier._policies").joinpath("default.yaml")))
