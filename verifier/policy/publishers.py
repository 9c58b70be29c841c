"""The publisher registry: Hub namespace -> legal entity, country, where that fact comes from.

The file format and its validator; the registry itself (`PublisherRegistry`, pydantic-free) is
in `verifier.policy.compiled`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from verifier.errors import PolicyError
from verifier.policy.codec import from_model
from verifier.policy.compiled import PublisherRegistry, RegisteredPublisher
from verifier.policy.files import read_publishers_text, shipped_publishers_path
from verifier.policy.yamlfile import read_yaml, validate

__all__ = [
    "PublisherEntry",
    "PublisherFile",
    "PublisherRegistry",
    "load_publishers",
    "parse_publishers",
    "shipped_publishers",
    "shipped_publishers_path",
]


class PublisherEntry(BaseModel):
    """What the registry knows about one Hub namespace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    legal_entity: str = Field(min_length=1)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    source: str = Field(pattern=r"^https://\S+$")
    reviewed: dt.date
    verified: bool = False
    note: str = ""


class PublisherFile(BaseModel):
    """A publishers file: `version` and a mapping of namespace to entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(1, ge=1, le=1)
    publishers: dict[str, PublisherEntry]


def parse_publishers(text: str, *, source: Path) -> PublisherRegistry:
    """Validate a publishers file.

    Raises:
        PolicyError: the YAML does not parse, does not fit the schema, or names a namespace twice.
    """
    data = read_yaml(text, source=source)
    parsed = validate(PublisherFile, data, text=text, source=source)
    entries: dict[str, RegisteredPublisher] = {}
    for name, entry in parsed.publishers.items():
        if name.lower() in entries:
            raise PolicyError(f"{source}: publisher {name!r} is listed twice (names ignore case)")
        entries[name.lower()] = from_model(RegisteredPublisher, entry)
    return PublisherRegistry(entries)


def load_publishers(path: str | Path) -> PublisherRegistry:
    """Load a publishers file.

    Raises:
        PolicyError: the file is missing, unreadable or invalid.
    """
    path = Path(path)
    return parse_publishers(read_publishers_text(path), source=path)


def shipped_publishers() -> PublisherRegistry:
    """The shipped registry.

    Raises:
        PolicyError: the installed file is invalid (a broken install).
    """
    return load_publishers(shipped_publishers_path())
