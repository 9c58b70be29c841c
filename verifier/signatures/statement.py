"""The in-toto statement a model signature signs: its manifest of files or shards."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import PurePosixPath
from typing import Any

from verifier import bounded_json
from verifier.signatures.interface import (
    SignatureInvalidError,
    SignatureUnsupportedError,
    SignedManifest,
    SignedResource,
)

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_V1 = "https://model_signing/signature/v1.0"
#: The v0.x layout: one subject per file, no serialization section.
PREDICATE_V01 = "https://model_signing/Digests/v0.1"
#: Paths model signing ignores when the statement does not say (the v0.x layout).
DEFAULT_IGNORED = (".git", ".gitattributes", ".github", ".gitignore")
#: Hex digest length per algorithm verifier computes.
DIGEST_HEX_LENGTH = {"sha256": 64, "blake2b": 128}
_SHARDED = re.compile(r"^([a-z0-9]+)-sharded-([0-9]+(?:\.0+)?)$")
_HEX = re.compile(r"^[0-9a-f]+$")


def _relative_path(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise SignatureInvalidError("a signed resource has no name")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or str(path) != name:
        raise SignatureInvalidError(f"signed resource name is not a plain relative path: {name!r}")
    return name


def _shard_size(value: object) -> int:
    # model signing writes the shard size as a float (1000000000.0) in some versions.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignatureInvalidError(f"shard size {value!r} is not a number")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise SignatureInvalidError(f"shard size {value!r} is not a whole number")
    size = int(value)
    if size <= 0:
        raise SignatureInvalidError(f"shard size {size} is not positive")
    return size


def _check_digest(algorithm: str, digest: object, name: str) -> str:
    if not isinstance(digest, str) or not _HEX.match(digest):
        raise SignatureInvalidError(f"digest of {name!r} is not lowercase hex")
    expected = DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        raise SignatureUnsupportedError(
            f"the signature uses the {algorithm} digest, which verifier does not compute"
        )
    if len(digest) != expected:
        raise SignatureInvalidError(f"{algorithm} digest of {name!r} has the wrong length")
    return digest


def parse_statement(payload: bytes) -> SignedManifest:
    """Read the signed statement (after its signature was verified).

    Raises:
        SignatureInvalidError: not an in-toto model-signing statement, or inconsistent.
        SignatureUnsupportedError: it uses a digest or layout verifier does not compute.
    """
    try:
        statement = bounded_json.loads(payload, bounded_json.TRUST_INPUT)
    except bounded_json.JsonLimitError as exc:
        raise SignatureInvalidError(f"the signed payload was refused: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SignatureInvalidError("the signed payload is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise SignatureInvalidError("the signed payload is not an in-toto v1 statement")
    predicate_type = statement.get("predicateType")
    if predicate_type == PREDICATE_V1:
        return _parse_v1(statement)
    if predicate_type == PREDICATE_V01:
        return _parse_v01(statement)
    raise SignatureInvalidError(f"unknown predicate type {predicate_type!r}")


def _serialization(predicate: dict[str, Any]) -> tuple[str, str, int | None, tuple[str, ...]]:
    serialization = predicate.get("serialization")
    if not isinstance(serialization, dict):
        raise SignatureInvalidError("the predicate has no serialization section")
    method = serialization.get("method")
    hash_type = serialization.get("hash_type")
    if not isinstance(hash_type, str):
        raise SignatureInvalidError("the serialization has no hash type")
    if method not in ("files", "shards"):
        raise SignatureUnsupportedError(f"unknown serialization method {method!r}")
    shard_size = _shard_size(serialization.get("shard_size")) if method == "shards" else None
    ignore = serialization.get("ignore_paths", [])
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        raise SignatureInvalidError("ignore_paths is not a list of paths")
    return method, hash_type, shard_size, tuple(ignore)


def _parse_v1(statement: dict[str, Any]) -> SignedManifest:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise SignatureInvalidError("the statement must have exactly one subject")
    digest = subjects[0].get("digest")
    root = digest.get("sha256") if isinstance(digest, dict) else None
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise SignatureInvalidError("the statement has no predicate")
    method, hash_type, shard_size, ignore = _serialization(predicate)
    entries = predicate.get("resources")
    if not isinstance(entries, list):
        raise SignatureInvalidError("the predicate has no resource list")
    resources: list[SignedResource] = []
    hasher = hashlib.sha256()
    for entry in entries:
        if not isinstance(entry, dict):
            raise SignatureInvalidError("a signed resource is not an object")
        resource = _resource(entry, method, hash_type, shard_size)
        hasher.update(bytes.fromhex(resource.digest))
        resources.append(resource)
    if hasher.hexdigest() != root:
        raise SignatureInvalidError(
            "the statement is inconsistent: its subject digest does not cover its resources"
        )
    names = [r.name for r in resources]
    if len(set(names)) != len(names):
        raise SignatureInvalidError("the manifest lists a resource twice")
    return SignedManifest(
        predicate_type=PREDICATE_V1,
        method=method,
        hash_type=hash_type,
        shard_size=shard_size,
        ignore_paths=ignore,
        resources=tuple(resources),
    )


def _resource(
    entry: dict[str, Any], method: str, hash_type: str, shard_size: int | None
) -> SignedResource:
    name, algorithm = entry.get("name"), entry.get("algorithm")
    if not isinstance(name, str) or not isinstance(algorithm, str):
        raise SignatureInvalidError("a signed resource lacks a name or an algorithm")
    if method == "files":
        if algorithm != hash_type:
            raise SignatureInvalidError(f"{name!r} uses {algorithm}, the statement {hash_type}")
        digest = _check_digest(algorithm, entry.get("digest"), name)
        return SignedResource(name, _relative_path(name), algorithm, digest)
    match = _SHARDED.match(algorithm)
    if (
        match is None
        or match.group(1) != hash_type
        or _shard_size(float(match.group(2))) != shard_size
    ):
        raise SignatureInvalidError(f"{name!r} has shard algorithm {algorithm!r}")
    parts = name.rsplit(":", 2)
    if len(parts) != 3:
        raise SignatureInvalidError(f"shard name {name!r} is not path:start:end")
    path = parts[0]
    try:
        start, end = int(parts[1]), int(parts[2])
    except ValueError:
        raise SignatureInvalidError(f"shard name {name!r} is not path:start:end") from None
    if start < 0 or end <= start or (shard_size is not None and end - start > shard_size):
        raise SignatureInvalidError(f"shard {name!r} has an impossible range")
    digest = _check_digest(hash_type, entry.get("digest"), name)
    label = f"{hash_type}-sharded-{shard_size}"
    return SignedResource(name, _relative_path(path), label, digest, start=start, end=end)


def _parse_v01(statement: dict[str, Any]) -> SignedManifest:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise SignatureInvalidError("the v0.1 statement has no subject")
    resources = []
    for subject in subjects:
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
            raise SignatureInvalidError("a v0.1 subject is malformed")
        name = subject.get("name")
        path = _relative_path(name)
        digest = _check_digest("sha256", subject["digest"].get("sha256"), path)
        resources.append(SignedResource(path, path, "sha256", digest))
    names = [r.name for r in resources]
    if len(set(names)) != len(names):
        raise SignatureInvalidError("the manifest lists a file twice")
    return SignedManifest(
        predicate_type=PREDICATE_V01,
        method="files",
        hash_type="sha256",
        shard_size=None,
        ignore_paths=DEFAULT_IGNORED,
        resources=tuple(resources),
    )
