"""YAML read for policy files: duplicate keys refused, every error with its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from verifier.errors import PolicyError

M = TypeVar("M", bound=BaseModel)


def yaml_error(path: Path, exc: yaml.YAMLError) -> PolicyError:
    """A PolicyError naming the file and line of a YAML syntax error."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc)
    return PolicyError(f"{where}: invalid YAML: {problem}")


def line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
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
    """Parse a YAML mapping, refusing duplicate keys (PyYAML silently keeps the last one).

    Raises:
        PolicyError: invalid YAML, a duplicate key, or a top level that is not a mapping.
    """

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
        data = yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise yaml_error(source, exc) from None
    if found:
        raise PolicyError(f"{source}: duplicate key {found[0]}")
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
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            field = ".".join(str(part) for part in loc) or "(top level)"
            problems.append(f"{where(text, source, loc)}: {field}: {error['msg']}")
        raise PolicyError("; ".join(problems)) from None
