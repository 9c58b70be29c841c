"""YAML read for policy files: duplicate keys refused, every error with its file and line."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from verifier import bounded_yaml
from verifier.errors import PolicyError

M = TypeVar("M", bound=BaseModel)

#: Schema errors listed in one message; the rest are counted.
MAX_REPORTED_ERRORS = 20


def yaml_error(path: Path, exc: yaml.YAMLError) -> PolicyError:
    """A PolicyError naming the file and line of a YAML syntax error."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc)
    return PolicyError(f"{where}: invalid YAML: {problem}")


@functools.lru_cache(maxsize=4)
def _composed(text: str) -> yaml.Node | None:
    """The node tree of `text`, composed once however many errors ask for a line."""
    try:
        return bounded_yaml.compose(text)
    except yaml.YAMLError:
        return None


def line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    node = _composed(text)
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            # The key's line: where a reader looks for `field:` (a block value starts below it).
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                break
            node, line = pair[1], pair[0].start_mark.line + 1
            continue
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def where(text: str, source: Path, loc: tuple[Any, ...]) -> str:
    """`file:line` of the node at `loc` (or just the file when the line is unknown)."""
    line = line_of(text, loc)
    return f"{source}:{line}" if line is not None else str(source)


def read_yaml(text: str, *, source: Path) -> dict[str, Any]:
    """Parse a YAML mapping under the caps of `bounded_yaml.POLICY_INPUT`, refusing duplicate
    keys (PyYAML silently keeps the last one) and invalid dates.

    Raises:
        PolicyError: invalid YAML, a cap exceeded, a duplicate key, an invalid date, or a top
            level that is not a mapping.
    """
    try:
        data, duplicates = bounded_yaml.load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(source, exc) from None
    if duplicates:
        raise PolicyError(f"{source}: duplicate key {duplicates[0]}")
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping at the top level")
    return data


def validate(model: type[M], data: Any, *, text: str, source: Path) -> M:
    """`data` validated as `model`; errors name file, line, field and what was expected.

    Raises:
        PolicyError: the data does not fit the schema.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = []
        for error in errors[:MAX_REPORTED_ERRORS]:
            loc = tuple(error["loc"])
            field = ".".join(str(part) for part in loc) or "(top level)"
            problems.append(f"{where(text, source, loc)}: {field}: {error['msg']}")
        if len(errors) > MAX_REPORTED_ERRORS:
            problems.append(f"and {len(errors) - MAX_REPORTED_ERRORS} more errors")
        raise PolicyError("; ".join(problems)) from None
