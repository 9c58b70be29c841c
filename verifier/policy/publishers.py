"""The publisher registry: Hub namespace -> legal entity, country, where that fact comes from."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from verifier.errors import PolicyError
from verifier.policy.yamlfile import read_yaml, validate


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


@dataclass(frozen=True)
class PublisherRegistry:
    """Namespaces looked up case-insensitively, as the Hub resolves them."""

    entries: Mapping[str, PublisherEntry]

    def lookup(self, namespace: str | None) -> PublisherEntry | None:
        """The entry for `namespace`, or None when unknown (a fact, not an error)."""
        if not namespace:
            return None
        return self.entries.get(namespace.lower())

    def merged(self, other: PublisherRegistry) -> PublisherRegistry:
        """This registry with every entry of `other` added or overriding."""
        return PublisherRegistry({**self.entries, **other.entries})

    def canonical(self) -> list[Any]:
        """JSON-ready content, sorted, for the policy digest."""
        return [[name, self.entries[name].model_dump(mode="json")] for name in sorted(self.entries)]

    def digest(self) -> str:
        """SHA-256 of the canonical content."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def parse_publishers(text: str, *, source: Path) -> PublisherRegistry:
    """Validate a publishers file.

    Raises:
        PolicyError: the YAML does not parse, does not fit the schema, or names a namespace twice.
    """
    data = read_yaml(text, source=source)
    parsed = validate(PublisherFile, data, text=text, source=source)
    entries: dict[str, PublisherEntry] = {}
    for name, entry in parsed.publishers.items():
        if name.lower() in entries:
            raise PolicyError(f"{source}: publisher {name!r} is listed twice (names ignore case)")
        entries[name.lower()] = entry
    return PublisherRegistry(entries)


def load_publishers(path: str | Path) -> PublisherRegistry:
    """Load a publishers file.

    Raises:
        PolicyError: the file is missing, unreadable or invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"publishers file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read publishers file {path}: {exc}") from None
    return parse_publishers(text, source=path)


def shipped_publishers_path() -> Path:
    """The shipped registry, `policies/publishers.yaml`."""
    from importlib.resources import files

    return Path(str(files("verifier._policies").joinpath("publishers.yaml")))


def shipped_publishers() -> PublisherRegistry:
    """The shipped registry.

    Raises:
        PolicyError: the installed file is invalid (a broken install).
    """
    return load_publishers(shipped_publishers_path())
