"""A snapshot folder of the Hugging Face cache: a local source that checks each blob's name.

`.../models--<ns>--<name>/snapshots/<commit>/` holds links to `../../blobs/<digest>`; the walk
follows them (see `verifier.sources.local.walk`). The cache names each blob by the digest the
Hub declared when it was downloaded, so reading a file measures the digest its name promises.
"""

from __future__ import annotations

import dataclasses
import os

from verifier.model import FileResult, Finding, Severity
from verifier.sources.local import LocalSource, LocalTree, hf_cache_repo

__all__ = ["HfCacheSnapshotSource", "check_cache_blob", "hf_cache_repo"]


class HfCacheSnapshotSource(LocalSource):
    """A snapshot of the HF cache: files read for their git blob SHA-1 too, blob names checked."""

    git_sha1 = True

    def _record(self, tree: LocalTree) -> dict[str, str]:
        record = super()._record(tree)
        if tree.hf_cache_repo is not None:
            record["hf_cache_repo"] = tree.hf_cache_repo
        return record

    def _settle(self, result: FileResult, location: str) -> FileResult:
        problems = check_cache_blob(result, os.path.basename(location))
        if not problems:
            return result
        return dataclasses.replace(result, findings=(*result.findings, *problems))


def check_cache_blob(result: FileResult, blob_name: str) -> list[Finding]:
    """Findings when a file of an HF cache snapshot does not match its blob's name.

    `huggingface_hub` names a cached blob by the digest the Hub declared (sha256 for LFS
    files, the git blob id for the rest) but checks only the size, so same-size different
    bytes sit under the expected name. Files not stored as a blob are not checked here.
    """
    name = blob_name.lower()
    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
        actual, kind = result.sha256, "sha256"
    elif len(name) == 40 and all(c in "0123456789abcdef" for c in name):
        actual, kind = result.git_sha1, "git blob sha1"
    else:
        return []
    if not result.complete or actual == name:
        return []
    return [
        Finding(
            "HF-CACHE-DIGEST-MISMATCH",
            Severity.CRITICAL,
            f"the cached file's {kind} differs from the digest its cache blob is named after: "
            "it was altered or corrupted after (or while) it was downloaded",
            file=result.path,
            evidence=f"blob {name}, content {actual}",
        )
    ]
