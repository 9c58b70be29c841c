"""Check a model signature around the one read pass: verify it first, compare after.

`prepare` verifies the envelope and reads the signed manifest before any model byte is read
(it needs only the signature), `observers_for` tells the pass which extra digests to compute,
and `conclude` compares the manifest with what the pass measured. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from verifier.hashing import ChunkObserver, ShardDigests, WholeFileDigest
from verifier.model import (
    DeclaredFile,
    FileResult,
    Finding,
    Severity,
    SignatureDiff,
    SignatureMethod,
    SignatureResult,
    SignatureStatus,
)
from verifier.signatures.interface import (
    SignatureInvalidError,
    SignatureRequest,
    SignatureUnsupportedError,
    SignedManifest,
    SignerIdentity,
)

#: Diff entries named one by one in findings; the rest are counted.
MAX_DIFF_FINDINGS = 50

_NEEDS = {
    SignatureMethod.KEY: "--public-key",
    SignatureMethod.CERTIFICATE: "--certificate-chain",
    SignatureMethod.SIGSTORE: "--identity and --issuer",
}


@dataclass(frozen=True)
class PreparedSignature:
    """A signature verified (or not) before the pass, with the manifest it signs."""

    path: str
    self_path: str | None
    status: SignatureStatus | None  # decided already (invalid, not-checked); None: compare
    reason: str
    method: SignatureMethod | None = None
    identity: SignerIdentity | None = None
    manifest: SignedManifest | None = None
    bundle_sha256: str | None = None


def _given(method: SignatureMethod, request: SignatureRequest) -> bool:
    if method is SignatureMethod.KEY:
        return bool(request.public_keys)
    if method is SignatureMethod.CERTIFICATE:
        return bool(request.certificate_chain)
    return request.identity is not None


def prepare(
    raw: bytes, *, path: str, self_path: str | None, request: SignatureRequest
) -> PreparedSignature:
    """Parse and verify the signature's envelope, then read the manifest it signs."""
    result = _prepare(raw, path=path, self_path=self_path, request=request)
    return replace(result, bundle_sha256=hashlib.sha256(raw).hexdigest())


def _prepare(
    raw: bytes, *, path: str, self_path: str | None, request: SignatureRequest
) -> PreparedSignature:
    # The bundle and statement parsers, and cryptography's X.509 and key code, load only for a
    # model that carries a signature.
    from verifier.signatures.bundle import parse_bundle
    from verifier.signatures.model_signing import bundle_method, verify_with_chain, verify_with_keys
    from verifier.signatures.sigstore_identity import verify_identity
    from verifier.signatures.statement import parse_statement

    method: SignatureMethod | None = None
    try:
        bundle = parse_bundle(raw)
        method = bundle_method(bundle)
        if not request.has_trust:
            return PreparedSignature(
                path,
                self_path,
                SignatureStatus.NOT_CHECKED,
                f"signed with the {method.value} method, but nothing to verify it with was "
                f"given ({_NEEDS[method]})",
                method=method,
            )
        if not _given(method, request):
            raise SignatureInvalidError(
                f"signed with the {method.value} method, but only other trust was given "
                f"(this signature needs {_NEEDS[method]})"
            )
        if method is SignatureMethod.KEY:
            identity = verify_with_keys(bundle, request)
        elif method is SignatureMethod.CERTIFICATE:
            identity = verify_with_chain(bundle, request)
        else:
            identity = verify_identity(bundle, request)
        manifest = parse_statement(bundle.payload)
    except SignatureInvalidError as exc:
        return PreparedSignature(path, self_path, SignatureStatus.INVALID, str(exc), method=method)
    except SignatureUnsupportedError as exc:
        return PreparedSignature(
            path, self_path, SignatureStatus.NOT_CHECKED, str(exc), method=method
        )
    return PreparedSignature(
        path, self_path, None, "", method=method, identity=identity, manifest=manifest
    )


def _ignored(manifest: SignedManifest, path: str) -> bool:
    for entry in manifest.ignore_paths:
        prefix = entry.strip("/")
        prefix = prefix[2:] if prefix.startswith("./") else prefix
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            return True
    return False


def observers_for(prepared: PreparedSignature | None, path: str) -> list[ChunkObserver]:
    """Extra digests the signature needs for `path`, computed in the same pass."""
    if prepared is None or prepared.manifest is None or path == prepared.self_path:
        return []
    manifest = prepared.manifest
    if manifest.method == "shards" and manifest.shard_size is not None:
        return [ShardDigests(manifest.hash_type, manifest.shard_size)]
    if manifest.hash_type != "sha256":
        return [WholeFileDigest(manifest.hash_type)]
    return []


def _actual(manifest: SignedManifest, result: FileResult) -> dict[str, str | None]:
    if manifest.method == "shards":
        return {
            f"{result.path}:{d.start}:{d.end}": d.digest
            for d in result.extra_digests
            if d.start is not None
        }
    if manifest.hash_type == "sha256":
        return {result.path: result.sha256 if result.complete else None}
    digest = next(
        (d.digest for d in result.extra_digests if d.algorithm == manifest.hash_type), None
    )
    return {result.path: digest if result.complete else None}


@dataclass(frozen=True)
class _Comparison:
    diff: SignatureDiff
    outside: tuple[str, ...]
    uncompared: tuple[str, ...]  # signed files whose bytes were not read and whose declared
    by_declared: int  # digest cannot stand in; and how many compared by declared digest


def _compare(
    prepared: PreparedSignature,
    manifest: SignedManifest,
    files: Sequence[FileResult],
    declared: Sequence[DeclaredFile],
) -> _Comparison:
    expected = {r.name: r for r in manifest.resources}
    names_of: dict[str, list[str]] = {}
    for signed_resource in manifest.resources:
        names_of.setdefault(signed_resource.path, []).append(signed_resource.name)
    read = {f.path: f for f in files}
    declared_by_path = {d.path: d for d in declared}
    extra: list[str] = []
    changed: list[str] = []
    outside: list[str] = []
    uncompared: list[str] = []
    seen: set[str] = set()
    by_declared = 0
    for path in sorted(set(read) | set(declared_by_path)):
        signed = path in names_of
        if path == prepared.self_path:
            # A signature cannot cover its own bytes: a listed copy is a stale earlier one.
            outside.append(path)
            seen.update(names_of.get(path, ()))
            continue
        if not signed and _ignored(manifest, path):
            outside.append(path)
            continue
        result = read.get(path)
        stand_in = declared_by_path.get(path)
        if result is not None and (result.sha256 is not None or stand_in is None):
            actual = _actual(manifest, result)
            if manifest.method == "shards" and signed and not result.complete:
                changed.append(path)
        elif not signed:
            extra.append(path)
            continue
        elif (
            stand_in is not None
            and stand_in.sha256 is not None
            and manifest.method == "files"
            and manifest.hash_type == "sha256"
        ):
            # Not downloaded: the Hub's declared LFS digest is the SHA-256 the signature lists.
            actual = {path: stand_in.sha256}
            by_declared += 1
        else:
            uncompared.append(path)
            seen.update(names_of[path])
            continue
        for name, digest in actual.items():
            resource = expected.get(name)
            if resource is None:
                extra.append(name)
            else:
                seen.add(name)
                if digest != resource.digest:
                    changed.append(name)
    diff = SignatureDiff(
        extra=tuple(sorted(extra)),
        missing=tuple(sorted(set(expected) - seen)),
        changed=tuple(sorted(set(changed))),
    )
    return _Comparison(diff, tuple(sorted(outside)), tuple(uncompared), by_declared)


def conclude(
    prepared: PreparedSignature,
    files: Sequence[FileResult],
    *,
    declared: Sequence[DeclaredFile] = (),
) -> SignatureResult:
    """The signature's result, comparing its manifest with the digests the pass computed.

    For a Hub model, `declared` are the files the pinned commit declares: a signed file whose
    bytes were not read (`--metadata-only`, `--exclude`) is compared by its declared LFS
    SHA-256 where that is the digest the signature lists, and is otherwise not compared (the
    result is then `not-checked`, never `verified`).
    """
    identity = prepared.identity
    base = SignatureResult(
        status=prepared.status or SignatureStatus.INVALID,
        reason=prepared.reason,
        path=prepared.path,
        method=prepared.method,
        signer=identity.signer if identity else None,
        issuer=identity.issuer if identity else None,
        key_fingerprint=identity.key_fingerprint if identity else None,
        certificate_subject=identity.certificate_subject if identity else None,
        key_usage=identity.key_usage if identity else (),
        bundle_sha256=prepared.bundle_sha256,
    )
    manifest = prepared.manifest
    if prepared.status is not None or manifest is None:
        return base
    found = _compare(prepared, manifest, files, declared)
    diff = found.diff
    algorithm = manifest.hash_type
    if manifest.method == "shards":
        algorithm = f"{manifest.hash_type}-sharded-{manifest.shard_size}"
    declared_note = (
        f" ({found.by_declared} by the Hub's declared LFS digest, not downloaded)"
        if found.by_declared
        else ""
    )
    if not diff.empty:
        status = SignatureStatus.INVALID
        reason = (
            f"the model differs from what was signed: {len(diff.changed)} changed, "
            f"{len(diff.missing)} missing, {len(diff.extra)} extra"
        )
    elif found.uncompared:
        status = SignatureStatus.NOT_CHECKED
        shown = ", ".join(found.uncompared[:5]) + (", ..." * (len(found.uncompared) > 5))
        reason = (
            f"signature verified and no difference found{declared_note}, but "
            f"{len(found.uncompared)} signed file(s) were not downloaded and have no declared "
            f"digest to compare: {shown}"
        )
    else:
        status = SignatureStatus.VERIFIED
        reason = (
            f"signature verified; all {len(manifest.resources)} signed {manifest.method} "
            f"match{declared_note}"
        )
    return replace(
        base,
        status=status,
        reason=reason,
        predicate_type=manifest.predicate_type,
        digest_algorithm=algorithm,
        diff=diff,
        outside=found.outside,
    )


def absent(request: SignatureRequest) -> SignatureResult:
    """The result when the model carries no signature."""
    if request.has_trust:
        return SignatureResult(
            status=SignatureStatus.ABSENT,
            reason="a signature was required (trust was given) but the model has no model.sig",
        )
    return SignatureResult(status=SignatureStatus.ABSENT, reason="the model carries no signature")


def findings_for(result: SignatureResult, request: SignatureRequest) -> list[Finding]:
    """The findings that report a signature result."""
    where = result.path
    status = result.status
    if status is SignatureStatus.ABSENT:
        # Unsigned models are the norm; absence is a finding only when a signature was required.
        if not request.has_trust:
            return []
        return [Finding("SIGNATURE-ABSENT", Severity.HIGH, result.reason)]
    if status is SignatureStatus.NOT_CHECKED:
        if request.has_trust or result.method is None:
            return [Finding("SIGNATURE-UNVERIFIABLE", Severity.HIGH, result.reason, file=where)]
        return [Finding("SIGNATURE-NOT-CHECKED", Severity.MEDIUM, result.reason, file=where)]
    findings = [
        Finding(
            "SIGNATURE-OUTSIDE",
            Severity.INFO,
            "not covered by the signature (ignored by it); still scanned",
            file=path,
        )
        for path in result.outside
    ]
    if status is SignatureStatus.VERIFIED:
        who = f"{result.signer} ({result.method.value if result.method else '?'})"
        findings.append(
            Finding(
                "SIGNATURE-VERIFIED", Severity.INFO, f"{result.reason}; signer {who}", file=where
            )
        )
        return findings
    diff = result.diff
    if diff.empty:
        findings.append(Finding("SIGNATURE-INVALID", Severity.HIGH, result.reason, file=where))
        return findings
    entries = [(p, "changed since it was signed") for p in diff.changed]
    entries += [(p, "signed but missing from the model") for p in diff.missing]
    entries += [(p, "not in the signed manifest (added after signing)") for p in diff.extra]
    for path, what in entries[:MAX_DIFF_FINDINGS]:
        findings.append(Finding("SIGNATURE-INVALID", Severity.HIGH, what, file=path))
    findings.append(Finding("SIGNATURE-INVALID", Severity.HIGH, result.reason, file=where))
    return findings
