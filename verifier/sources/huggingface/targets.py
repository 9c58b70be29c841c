"""Hub targets: `hf://ns/name[@rev]` or a pasted model page URL, parsed without the Hub client."""

from __future__ import annotations

import re

from verifier.errors import TargetError
from verifier.model import ModelRef

HF_SCHEME = "hf://"
_WEB_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/")
_REPO_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_REPO_ID = re.compile(rf"^{_REPO_PART}/{_REPO_PART}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,255}$")


def is_hub_target(target: str) -> bool:
    """Whether `target` names a model on a Hub rather than a local path."""
    return target.startswith(HF_SCHEME) or target.startswith(_WEB_PREFIXES)


def parse_hub_target(target: str) -> ModelRef:
    """`hf://ns/name[@rev]`, or a pasted `https://huggingface.co/ns/name[/tree/<rev>]` URL.

    Raises:
        TargetError: the text is not a model reference.
    """
    if target.startswith(HF_SCHEME):
        rest = target[len(HF_SCHEME) :]
        repo_id, sep, revision = rest.partition("@")
        rev: str | None = revision if sep else None
    else:
        rest = next(target[len(p) :] for p in _WEB_PREFIXES if target.startswith(p))
        parts = rest.strip("/").split("/")
        repo_id = "/".join(parts[:2])
        rev = None
        if len(parts) > 2:
            if parts[2] not in ("tree", "blob", "resolve") or len(parts) < 4:
                raise TargetError(f"{target}: not a model page URL (expected /tree/<revision>)")
            rev = parts[3]
    repo_id = repo_id.strip("/")
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise TargetError(f"{target}: expected hf://namespace/name[@revision]")
    if rev is not None and (not _REVISION.match(rev) or ".." in rev):
        raise TargetError(f"{target}: {rev!r} is not a valid revision")
    return ModelRef(repo_id=repo_id, revision=rev)
