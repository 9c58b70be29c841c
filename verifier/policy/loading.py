"""Loading a policy: from the compiled-policy cache when it was validated before, else validated.

Validating a policy needs pydantic and PyYAML, and their import and the schema's models cost
more than the rest of a small scan's start. A policy validated once (with its publisher
registry and waivers files) is kept compiled, as JSON, under `VERIFIER_HOME/cache/policies/`,
named by a key over everything that decided the result:

- the bytes of the policy file, of the shipped and the given publisher registries, and of
  every waivers file, in order, and the policy's path (its `file:line` locations name it);
- verifier's version, and a digest of the source of every module that defines the schema,
  its validation and the compiled form (`SCHEMA_SOURCES`), so an edited schema in an editable
  install never reads an entry compiled by the old one;
- which installed copy of each library that validates (`VALIDATOR_LIBRARIES`), so an upgrade
  of one in place validates again.

An entry that is missing, unreadable, malformed, of another format or of another key is
ignored and the policy validated again (then written anew, atomically): the cache can make a
start slower, never a decision different. The cache is trusted as the database in
`VERIFIER_HOME` is (docs/policy.md, "The compiled-policy cache").
"""

import functools
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier.errors import PolicyError
from verifier.policy.codec import DecodeError, decode, encode
from verifier.policy.compiled import (
    CompiledPolicyFile,
    Policy,
    PublisherRegistry,
    RegisteredPublisher,
    ValidatedPolicy,
    rule_paths,
)
from verifier.policy.files import (
    default_policy_path,
    read_policy_text,
    read_publishers_text,
    read_waivers_text,
    shipped_publishers_path,
)

log = logging.getLogger(__name__)

__all__ = ["default_policy_path", "load_policy"]

#: Version of a cache entry's layout; an entry of another version is ignored. 2: written in
#: the file's order (1 sorted the keys, and so a file's environments).
CACHE_FORMAT = 2
#: Entries kept: writing one more removes the oldest written beyond this many (a policy edited
#: often, or many upgrades, would otherwise leave one entry each behind).
MAX_CACHE_ENTRIES = 64
#: Modules (relative to the `verifier` package) whose source decides what a valid policy is,
#: what it compiles to, or how the compiled form is written and read.
SCHEMA_SOURCES = (
    "bounded_yaml.py",
    "facts.py",
    "model.py",
    "policy/cel.py",
    "policy/codec.py",
    "policy/compiled.py",
    "policy/evidence.py",
    "policy/files.py",
    "policy/loading.py",
    "policy/publishers.py",
    "policy/schema.py",
    "policy/yamlfile.py",
)
#: The libraries that parse, validate and check a policy file: which installed copy of each
#: (its package file's path, size and modification time) is part of the key too, so that an
#: upgrade in place (the same verifier version) validates again.
VALIDATOR_LIBRARIES = ("pydantic", "pydantic_core", "yaml", "celpy")
_PACKAGE = Path(__file__).resolve().parent.parent


def source_digest(package: Path) -> str | None:
    """SHA-256 over the source of `SCHEMA_SOURCES` under `package` (the `verifier` folder),
    or None when one cannot be read (then nothing is cached)."""
    digest = hashlib.sha256()
    for name in SCHEMA_SOURCES:
        try:
            source = (package / name).read_bytes()
        except OSError:
            return None
        digest.update(f"{name}\0{len(source)}\0".encode())
        digest.update(source)
    return digest.hexdigest()


def libraries_identity(names: Sequence[str] = VALIDATOR_LIBRARIES) -> list[Any]:
    """Which installed copy of each library: its package file, size and modification time
    (found without importing it), or None for one that is not installed."""
    from importlib.util import find_spec

    found: list[Any] = []
    for name in names:
        try:
            spec = find_spec(name)
            origin = spec.origin if spec is not None else None
            stat = os.stat(origin) if origin is not None else None
        except (ImportError, ValueError, OSError):
            origin, stat = None, None
        found.append([name, origin, stat.st_size, stat.st_mtime_ns] if stat else [name, None])
    return found


@functools.cache
def schema_digest() -> str | None:
    """`source_digest` of this installation with `libraries_identity`, once per process."""
    sources = source_digest(_PACKAGE)
    if sources is None:
        return None
    libraries = json.dumps(libraries_identity())
    return hashlib.sha256(f"{sources}\0{libraries}".encode()).hexdigest()


@dataclass(frozen=True)
class PolicyInputs:
    """Every file a policy load reads, read once: what the cache key covers, and what is
    validated on a miss (never a second read that could differ)."""

    path: Path
    text: str
    shipped_publishers: str
    publishers: tuple[Path, str] | None
    waivers: tuple[tuple[Path, str], ...]

    def key(self, schema: str) -> str:
        """The cache key of these inputs under the schema source digest `schema`."""
        from verifier import __version__

        parts = [
            "verifier compiled policy",
            CACHE_FORMAT,
            __version__,
            schema,
            str(self.path),
            self.text,
            self.shipped_publishers,
            self.publishers[1] if self.publishers else None,
            [text for _, text in self.waivers],
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


@dataclass(frozen=True)
class _CacheEntry:
    """A cache file's layout (read strictly: see `codec.decode`)."""

    format: int
    key: str
    policy: CompiledPolicyFile
    publishers: dict[str, RegisteredPublisher]
    when_locations: tuple[str | None, ...]


def cache_folder() -> Path:
    """Where compiled policies are kept: `VERIFIER_HOME/cache/policies`."""
    from verifier.config import home_dir

    return home_dir() / "cache" / "policies"


def read_cached(key: str, *, folder: Path) -> ValidatedPolicy | None:
    """The validated policy kept under `key`, or None when there is no usable entry."""
    try:
        raw = json.loads((folder / f"{key}.json").read_bytes())
        if not isinstance(raw, dict) or raw.get("format") != CACHE_FORMAT:
            return None
        entry = decode(_CacheEntry, raw)
    except (OSError, ValueError, DecodeError, TypeError, RecursionError):
        return None
    paths = rule_paths(entry.policy)
    if entry.key != key or len(entry.when_locations) != len(paths):
        return None
    if any(
        (at is None) != (rule.when is None)
        for at, (rule, _) in zip(entry.when_locations, paths, strict=True)
    ):
        return None
    return ValidatedPolicy(entry.policy, PublisherRegistry(entry.publishers), entry.when_locations)


def write_cached(
    key: str, validated: ValidatedPolicy, *, folder: Path, keep: int = MAX_CACHE_ENTRIES
) -> None:
    """Keep `validated` under `key`, atomically, and no more than `keep` entries; a folder
    that cannot be written is no error (the next start validates again)."""
    from verifier.atomic import replace_atomically

    entry = _CacheEntry(
        format=CACHE_FORMAT,
        key=key,
        policy=validated.document,
        publishers=dict(validated.publishers.entries),
        when_locations=validated.when_locations,
    )
    # Insertion order kept: the order of environments is the file's (rules are indexed by it).
    data = json.dumps(encode(entry), separators=(",", ":")).encode()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        replace_atomically(folder / f"{key}.json", data)
        _prune(folder, keep=keep)
    except OSError as exc:
        log.debug("compiled policy not cached in %s: %s", folder, exc)


def _prune(folder: Path, *, keep: int) -> None:
    """Remove the entries written longest ago beyond the newest `keep` (a reader that loses
    one validates again)."""
    entries = []
    for path in folder.glob("*.json"):
        try:
            entries.append((path.stat().st_mtime_ns, path))
        except OSError:
            continue
    for _, path in sorted(entries, reverse=True)[keep:]:
        path.unlink(missing_ok=True)


def _validate(inputs: PolicyInputs, *, env: str | None) -> ValidatedPolicy:
    """Validate the inputs with the schema (pydantic and PyYAML imported here, only).

    Raises:
        PolicyError: a file is invalid, or `env` is unknown.
    """
    from verifier.policy.publishers import parse_publishers
    from verifier.policy.schema import validate_policy

    registry = parse_publishers(inputs.shipped_publishers, source=shipped_publishers_path())
    if inputs.publishers is not None:
        path, text = inputs.publishers
        registry = registry.merged(parse_publishers(text, source=path))
    return validate_policy(
        inputs.text,
        source=inputs.path,
        env=env,
        publishers=registry,
        waivers=[path for path, _ in inputs.waivers],
        waiver_texts=dict(inputs.waivers),
    )


def _read_inputs(path: Path, *, publishers: Path | None, waivers: Sequence[Path]) -> PolicyInputs:
    """Every file of a policy load, read in the order errors are reported.

    Raises:
        PolicyError: the policy or a publishers file is missing or unreadable.
        UnreadableWaivers: a waivers file is unreadable.
    """
    text = read_policy_text(path)
    shipped_text = read_publishers_text(shipped_publishers_path())
    extra = (publishers, read_publishers_text(publishers)) if publishers is not None else None
    return PolicyInputs(
        path=path,
        text=text,
        shipped_publishers=shipped_text,
        publishers=extra,
        waivers=tuple((waiver, _waivers_text(waiver)) for waiver in waivers),
    )


class UnreadableWaivers(Exception):
    """A waivers file could not be read while the inputs were gathered."""


def _waivers_text(path: Path) -> str:
    try:
        return read_waivers_text(path)
    except PolicyError:
        raise UnreadableWaivers(str(path)) from None


def load_policy(
    path: str | Path,
    *,
    env: str | None = None,
    publishers: str | Path | None = None,
    waivers: Sequence[str | Path] = (),
) -> Policy:
    """Load a policy file, with the shipped registry extended by `publishers` and the waivers
    of the `waivers` files added: from the compiled-policy cache when these files were
    validated before, else validated (and then kept in the cache).

    Raises:
        PolicyError: a file is missing, unreadable or invalid, or `env` is unknown.
    """
    path = Path(path)
    extra = Path(publishers) if publishers is not None else None
    waiver_paths = [Path(waiver) for waiver in waivers]
    try:
        inputs = _read_inputs(path, publishers=extra, waivers=waiver_paths)
    except UnreadableWaivers:
        # Reported after the policy's own errors, where validation reaches the file.
        return _load_uncached(path, env=env, publishers=extra, waivers=waiver_paths)
    schema = schema_digest()
    if schema is None:
        return _validate(inputs, env=env).bind(env, source=path)
    key, folder = inputs.key(schema), cache_folder()
    cached = read_cached(key, folder=folder)
    if cached is not None:
        return cached.bind(env, source=path)
    validated = _validate(inputs, env=env)
    write_cached(key, validated, folder=folder)
    return validated.bind(env, source=path)


def _load_uncached(
    path: Path, *, env: str | None, publishers: Path | None, waivers: Sequence[Path]
) -> Policy:
    from verifier.policy.publishers import load_publishers, shipped_publishers
    from verifier.policy.schema import parse_policy

    text = read_policy_text(path)
    registry = shipped_publishers()
    if publishers is not None:
        registry = registry.merged(load_publishers(publishers))
    return parse_policy(text, source=path, env=env, publishers=registry, waivers=waivers)
