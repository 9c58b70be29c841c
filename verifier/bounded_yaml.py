"""YAML composed with caps on size, nesting depth and node count (aliases counted expanded).

PyYAML's composer recurses once per nesting level, builds every node before anyone can count
them, and lets an alias stand for a whole subtree (the "billion laughs": a few lines that
expand to millions of nodes for whoever walks the result). The loader here counts as it
composes and stops at the first node over a cap, with its line. Invalid dates (`2025-02-30`)
and duplicate keys are errors with their line, not tracebacks or silent last-one-wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError


@dataclass(frozen=True)
class YamlLimits:
    """The caps a YAML document must fit."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 32
    #: Nodes (scalars, sequences, mappings), an alias counting as the nodes it stands for.
    max_nodes: int = 20_000


#: Caps for policies, waivers, publisher registries and policy tests.
POLICY_INPUT = YamlLimits()
#: Caps for YAML files in a model (configs whose templates are analysed): real ones hold a few
#: thousand nodes; building a Python object per node costs some 20 us even with libyaml.
MODEL_FILE = YamlLimits(max_bytes=16 << 20, max_depth=64, max_nodes=100_000)

#: libyaml's parser when PyYAML was built with it (50 times faster), else the Python one.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Checks(yaml.constructor.SafeConstructor):
    """What every policy document is checked for as it is built: duplicate keys, invalid dates."""

    duplicates: list[str]

    def construct_checked_mapping(self, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: construct_mapping reports it
                continue
            if duplicate:
                self.duplicates.append(f"{key!r} at line {key_node.start_mark.line + 1}")
        return self.construct_mapping(node)

    def construct_checked_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError as exc:
            raise ConstructorError(
                None, None, f"invalid date {node.value!r} ({exc})", node.start_mark
            ) from None


class _BoundedLoader(_Checks, yaml.SafeLoader):
    """A SafeLoader that counts nodes and depth as it composes, and refuses duplicate keys."""

    limits: YamlLimits = POLICY_INPUT

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[str, int] = {}  # nodes under each anchor, for its aliases
        self.duplicates: list[str] = []

    def _grow(self, count: int, mark: Any) -> None:
        self._nodes += count
        if self._nodes > self.limits.max_nodes:
            raise ComposerError(
                None, None, f"more than {self.limits.max_nodes} nodes (aliases expanded)", mark
            )

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self._grow(self._sizes.get(str(event.anchor), 1), event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > self.limits.max_depth:
            raise ComposerError(
                None, None, f"nested deeper than {self.limits.max_depth} levels", event.start_mark
            )
        self._grow(1, event.start_mark)
        before = self._nodes
        node = super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._sizes[str(anchor)] = self._nodes - before + 1
        self._depth -= 1
        return node


def _add_checks(loader: Any) -> None:
    """Make `loader` build mappings and dates through `_Checks`."""
    loader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Checks.construct_checked_mapping
    )
    loader.add_constructor("tag:yaml.org,2002:timestamp", _Checks.construct_checked_timestamp)


_add_checks(_BoundedLoader)

#: libyaml's loader with the same checks, for a document `check_shape` let through (None
#: when PyYAML was built without libyaml).
_CHECKED_FAST_LOADER: type[Any] | None = None

if hasattr(yaml, "CSafeLoader"):

    class _CheckedFastLoader(_Checks, yaml.CSafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.duplicates = []

    _add_checks(_CheckedFastLoader)
    _CHECKED_FAST_LOADER = _CheckedFastLoader


class YamlLimitError(yaml.YAMLError):
    """The document is over the byte cap (node and depth caps raise ComposerError)."""


def load(text: str, limits: YamlLimits = POLICY_INPUT) -> tuple[Any, list[str]]:
    """The document in `text` and the duplicate keys met (`"'key' at line N"`).

    Raises:
        yaml.YAMLError: invalid YAML, an invalid date, or a cap exceeded (with `problem_mark`
            where the parser knows the line).
    """
    if len(text) > limits.max_bytes:
        raise YamlLimitError(f"{len(text)} characters, over the cap of {limits.max_bytes}")
    if _CHECKED_FAST_LOADER is not None:
        # libyaml counts the nodes from its events first (nothing is built), then builds the
        # document with the same checks, some 10 times faster than the Python composer. A
        # document it refuses is read again by the bounded composer, which says where.
        try:
            check_shape(text, limits)
        except yaml.YAMLError:
            pass
        else:
            fast = _CHECKED_FAST_LOADER(text)
            try:
                return fast.get_single_data(), fast.duplicates
            finally:
                fast.dispose()
    loader = _BoundedLoader(text)
    loader.limits = limits
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


def check_shape(text: str, limits: YamlLimits) -> None:
    """Refuse `text` if it is over `limits`, from the parser's events, before anything is built.

    Every document of a stream counts towards the node cap; an alias counts as the nodes of
    what it stands for.

    Raises:
        yaml.YAMLError: a cap exceeded, or text the parser rejects.
    """
    if len(text) > limits.max_bytes:
        raise YamlLimitError(f"{len(text)} characters, over the cap of {limits.max_bytes}")
    nodes = 0
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, nodes before it) per open level
    sizes: dict[str, int] = {}
    for event in yaml.parse(text, Loader=_FAST_LOADER):
        if isinstance(event, yaml.AliasEvent):
            nodes += sizes.get(str(event.anchor), 1)
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor is not None:
                sizes[str(event.anchor)] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append((event.anchor, nodes))
            nodes += 1
            if len(open_nodes) > limits.max_depth:
                raise YamlLimitError(f"nested deeper than {limits.max_depth} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_nodes.pop()
            if anchor is not None:
                sizes[str(anchor)] = nodes - before
        if nodes > limits.max_nodes:
            raise YamlLimitError(f"more than {limits.max_nodes} nodes (aliases expanded)")


def load_all(text: str, limits: YamlLimits) -> list[Any]:
    """Every document in `text`, once it fits `limits` (checked before anything is built).

    Raises:
        yaml.YAMLError: a cap exceeded, or invalid YAML.
        ValueError: a date that does not exist (`2025-02-30`).
    """
    check_shape(text, limits)
    return list(yaml.load_all(text, Loader=_FAST_LOADER))


def load_single(text: str, limits: YamlLimits) -> Any:
    """The one document in `text` (as `yaml.safe_load`), once it fits `limits`.

    Raises:
        yaml.YAMLError: a cap exceeded, invalid YAML, or more than one document.
        ValueError: a date that does not exist (`2025-02-30`).
    """
    check_shape(text, limits)
    return yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 (a safe loader, C or Python)


def compose(text: str, limits: YamlLimits = POLICY_INPUT) -> yaml.Node | None:
    """The node tree of `text` (for line numbers), under the same caps.

    Raises:
        yaml.YAMLError: as for `load`.
    """
    if len(text) > limits.max_bytes:
        raise YamlLimitError(f"{len(text)} characters, over the cap of {limits.max_bytes}")
    loader = _BoundedLoader(text)
    loader.limits = limits
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()
