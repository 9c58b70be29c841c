"""Watched Hub references, and what a Hub webhook says changed in them (pure).

A watch names a model repository and a reference (`main`, a tag, a branch). The Hub tells the
service about new commits with a webhook (`POST /api/v1/hooks/huggingface`); `hub_updates`
reads its payload into the references it moved, and the service verifies each new commit of a
watched reference. docs/service.md ("Watches and Hub webhooks") is the user's description.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from verifier.errors import UsageError
from verifier.model import is_commit_id

#: The reference a watch follows when the target names none.
DEFAULT_REF = "main"
#: Git reference prefixes of branches and tags; other references (`refs/pr/N`) are not watched.
_REF_PREFIXES = ("refs/heads/", "refs/tags/")
#: The event scope of new commits, tags and branches.
CONTENT_SCOPE = "repo.content"


def parse_watch_target(text: str) -> tuple[str, str]:
    """`(repo_id, ref)` of `hf://namespace/name[@ref]` (the ref defaults to `main`).

    Raises:
        UsageError: It is not a Hub model reference.
    """
    from verifier.sources.huggingface.targets import parse_hub_target

    if not text.startswith("hf://"):
        raise UsageError(f"{text}: watch a Hub model, hf://namespace/name[@ref]")
    ref = parse_hub_target(text)
    return ref.repo_id, ref.revision or DEFAULT_REF


def secret_matches(given: str | None, expected: str | None) -> bool:
    """Whether the webhook's secret is the configured one, compared in constant time.

    No configured secret matches nothing: webhooks are refused until one is set.
    """
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class RefUpdate:
    """A reference of a model repository that now points at `commit`."""

    repo_id: str
    ref: str
    commit: str


def _mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise UsageError(f"not a Hugging Face webhook payload: {what} is not an object")
    return value


def hub_updates(payload: object) -> tuple[RefUpdate, ...]:
    """The branches and tags of a model repository a `repo.content` event moved.

    Other events (discussions, settings, datasets and Spaces), deleted references, and pull
    request references give nothing. A payload without `updatedRefs` that carries the new
    `headSha` is read as `main` moving to it.

    Raises:
        UsageError: The payload is not a webhook payload (no `event` or `repo` object, a
            repository name that is not a Hub model id).
    """
    from verifier.sources.huggingface.targets import parse_hub_target

    document = _mapping(payload, "the body")
    event = _mapping(document.get("event"), "event")
    repo = _mapping(document.get("repo"), "repo")
    scope = event.get("scope")
    if not isinstance(scope, str) or not (
        scope == CONTENT_SCOPE or scope.startswith(CONTENT_SCOPE + ".")
    ):
        return ()
    if repo.get("type") != "model":
        return ()
    name = repo.get("name")
    if not isinstance(name, str):
        raise UsageError("not a Hugging Face webhook payload: repo.name is not a string")
    repo_id = parse_hub_target(f"hf://{name}").repo_id
    refs = document.get("updatedRefs")
    updates: list[RefUpdate] = []
    if isinstance(refs, list):
        for item in refs:
            if not isinstance(item, Mapping):
                continue
            ref, new = item.get("ref"), item.get("newSha")
            if not isinstance(ref, str) or not isinstance(new, str) or not is_commit_id(new):
                continue
            for prefix in _REF_PREFIXES:
                if ref.startswith(prefix) and len(ref) > len(prefix):
                    updates.append(RefUpdate(repo_id, ref[len(prefix) :], new))
    elif isinstance(repo.get("headSha"), str) and is_commit_id(str(repo["headSha"])):
        updates.append(RefUpdate(repo_id, DEFAULT_REF, str(repo["headSha"])))
    return tuple(updates)


@dataclass(frozen=True)
class Watch:
    """A watched reference, with the newest commit of it the service verified."""

    watch_id: int
    repo_id: str
    ref: str
    created_by: str
    created_at: str
    #: The newest commit whose scan completed, and that scan (None until one has).
    commit: str | None = None
    scan_id: str | None = None
    #: Scan jobs queued or running for newer commits, oldest first.
    pending: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        """`hf://namespace/name@ref`."""
        return f"hf://{self.repo_id}@{self.ref}"

    def document(self) -> dict[str, object]:
        """The JSON form (`verifier watches --format json`, `GET /api/v1/watches`)."""
        return {
            "id": self.watch_id,
            "target": self.target,
            "repo_id": self.repo_id,
            "ref": self.ref,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "commit": self.commit,
            "scan_id": self.scan_id,
            "pending": list(self.pending),
        }
