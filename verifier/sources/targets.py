"""Which source a target names: the one place that builds a `Source` from a target and options.

`hf://ns/name[@rev]` (or a pasted model page URL) is the Hub; a folder inside a Hugging Face
cache snapshot is that snapshot; any other path is a local folder or file. The backends are
imported here, lazily: a local scan never loads the Hub client.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from verifier import config
from verifier.sources.huggingface.client import BACKOFF_SECONDS, RETRIES
from verifier.sources.huggingface.targets import is_hub_target, parse_hub_target
from verifier.sources.interface import Source
from verifier.sources.local import LocalSource, hf_cache_repo

if TYPE_CHECKING:
    from verifier.lockfile import LockedModel


@dataclass(frozen=True)
class HubOptions:
    """How to reach a Hub and what to fetch from it (for `hf://` targets)."""

    endpoint: str | None = None
    token: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    metadata_only: bool = False
    lineage: bool = True
    #: The lockfile entry to check the model against (drift is a LOCK-DRIFT finding).
    locked: LockedModel | None = None


@dataclass(frozen=True)
class SourceSettings:
    """How patiently sources reach what they read: the defaults, or what a test hands in."""

    #: Retries of a refused or failed Hub request ...
    hub_retries: int = RETRIES
    #: ... waiting this many seconds times 2**n before each (0 in tests).
    hub_backoff_seconds: float = BACKOFF_SECONDS


def open_source(
    target: str,
    *,
    hub: HubOptions | None = None,
    settings: SourceSettings | None = None,
    home: Path | None = None,
) -> Source:
    """The source `target` names, not yet resolved (see `Source.resolve`).

    `home` is where verified Hub downloads are kept [default: `VERIFIER_HOME`].

    Raises:
        TargetError: a Hub target that is not a model reference.
    """
    hub = hub or HubOptions()
    settings = settings or SourceSettings()
    if is_hub_target(target):
        from verifier.sources.huggingface.client import HubClient, HubSettings
        from verifier.sources.huggingface.source import HubSource

        ref = parse_hub_target(target)
        client = HubClient(
            HubSettings.from_env(
                endpoint=hub.endpoint,
                token=hub.token,
                retries=settings.hub_retries,
                backoff_seconds=settings.hub_backoff_seconds,
            )
        )
        return HubSource(
            target,
            ref,
            client=client,
            home=home or config.home_dir(),
            include=hub.include,
            exclude=hub.exclude,
            metadata_only=hub.metadata_only,
            lineage=hub.lineage,
        )
    if os.path.isdir(target) and hf_cache_repo(os.path.realpath(target)) is not None:
        from verifier.sources.huggingface.cache import HfCacheSnapshotSource

        return HfCacheSnapshotSource(target)
    return LocalSource(target)
