"""The Python API for code that loads models: pull verified bytes, check them before loading.

Both functions return frozen results and raise errors from `verifier.errors` (every one a
`VerifierError`, with `diagnostics()` for the operator). Neither returns a result for a model
that must not be loaded: a refusal is an exception, so forgetting to look at a field never
loads unverified bytes. See docs/api.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier.errors import CheckFailedError, ModelDeniedError, UsageError
from verifier.model import CheckResult, Placement, ScanReport

__all__ = ["PullResult", "check", "pull"]

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class PullResult:
    """An allowed model whose verified files are in place."""

    #: Where and what was placed (`placement.path` is the folder to load from).
    placement: Placement
    #: The scan that allowed it (as `verifier scan --format json` describes it).
    report: ScanReport

    @property
    def path(self) -> Path:
        """The folder a loader reads: the cache snapshot, or the local folder."""
        return Path(self.placement.path)

    @property
    def commit(self) -> str:
        """The commit whose verified files were placed."""
        return self.placement.commit


def pull(
    target: str,
    *,
    cache_dir: StrPath | None = None,
    local_dir: StrPath | None = None,
    force: bool = False,
    lock: StrPath | None = None,
    policy: StrPath | None = None,
    env: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    endpoint: str | None = None,
    token: str | None = None,
    database_url: str | None = None,
) -> PullResult:
    """Scan a Hub model as `verifier pull` does and place its verified files if it is allowed.

    Args:
        target: `hf://namespace/name[@revision]`.
        cache_dir: the Hugging Face cache [default: `HF_HUB_CACHE`, else `HF_HOME/hub`].
        local_dir: place plain files in this folder instead of the cache.
        force: replace a cache entry (or folder) holding other bytes for the same commit.
        lock: a lockfile from `verifier lock`; the target's entry must match (no drift).
        policy: policy file [default: the shipped default policy]; `env` its environment.
        include: globs of the files to fetch and place; `exclude` globs of files to skip.
        endpoint: Hub base URL [default: `HF_ENDPOINT`, else huggingface.co]; `token` its token.
        database_url: where the scan is recorded [default: as the command line].

    Raises:
        ModelDeniedError: denied, incomplete, or drifted from the lock (`.report` says why);
            nothing was placed.
        PlacementConflictError: the destination holds other bytes for the commit (not `force`).
        PlacementError: the destination could not be written, or a verified copy is gone.
        SourceError: the Hub could not be reached or refused a request.
        UsageError: a bad target, policy (`PolicyError`) or lockfile (`LockfileError`).
        StoreError: the scan could not be recorded.
    """
    from verifier import config
    from verifier.lockfile import find_locked, read_lock
    from verifier.pipeline import HubOptions, run_scan
    from verifier.placement.hf_cache import HubCache, default_cache_dir
    from verifier.placement.interface import Destination
    from verifier.placement.local_dir import LocalDir
    from verifier.policy import default_policy_path, load_policy
    from verifier.pull import place, refusal
    from verifier.sources.huggingface.targets import is_hub_target, parse_hub_target
    from verifier.store import Store

    if not is_hub_target(target):
        raise UsageError(f"{target}: pull takes Hugging Face models (hf://namespace/name)")
    if cache_dir is not None and local_dir is not None:
        raise UsageError("give cache_dir or local_dir, not both")
    locked = None
    if lock is not None and (include or exclude):
        raise UsageError("a lockfile checks every file: it cannot be used with include/exclude")
    if lock is not None:
        locked = find_locked(read_lock(Path(lock)), parse_hub_target(target).repo_id)
    destination: Destination = (
        LocalDir(Path(local_dir))
        if local_dir is not None
        else HubCache(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    )
    loaded = load_policy(Path(policy) if policy is not None else default_policy_path(), env=env)
    hub = HubOptions(
        endpoint=endpoint,
        token=token,
        include=tuple(include),
        exclude=tuple(exclude),
        locked=locked,
    )
    with Store.open(config.database_url(database_url)) as store:
        report = run_scan(target, policy=loaded, recorder=store, hub=hub)
    reason = refusal(report)
    if reason is not None:
        raise ModelDeniedError(
            f"{target}: not placed: {reason} (scan {report.scan_id})", report=report
        )
    placement = place(report, destination, home=config.home_dir(), force=force)
    return PullResult(placement=placement, report=report)


def check(
    path: StrPath,
    *,
    lock: StrPath | None = None,
    server: str | None = None,
    model: str | None = None,
    environment: str | None = None,
    token: str | None = None,
    workers: int | None = None,
) -> CheckResult:
    """Re-hash the model folder `path` and compare it with what was verified, before loading.

    Give `lock` (a lockfile entry) or `server` (the service's record and decision).

    Args:
        path: the model's folder: a cache snapshot, a pulled local folder, any copy.
        lock: a lockfile from `verifier lock`.
        server: the verification service's address (`verifier serve`): the folder must hold
            exactly the files of its scan of the model@commit, and its decision must allow.
        model: with `lock`, the entry (`ns/name`) [default: read from a cache path, or the only
            entry]; with `server`, `ns/name@<commit>` [default: read from a cache path].
        environment: with `server`, the environment whose decision counts.
        token: with `server`, a viewer token [default: `VERIFIER_TOKEN`].
        workers: files hashed at once.

    Returns:
        The result, only when every expected file matched, nothing else is there and (with
        `server`) the model is allowed (or denied under a policy in audit mode:
        `result.decision` says so).

    Raises:
        CheckFailedError: a file changed, is missing, is extra, could not be read, or a link
            leaves the folder; or the service denies the model or its scan is incomplete
            (`.result` says which).
        LockfileError: the lockfile is unreadable or has no such entry.
        ServiceError: the service cannot be reached, has no decision for the model (never
            scanned), or answers out of contract.
        UsageError: neither or both of `lock` and `server`, a model not pinned to a commit, or
            a token the service refuses.
        TargetError: `path` is not a folder.
    """
    from verifier.check import (
        check_model,
        check_with_service,
        refusal,
        select_entry,
        service_subject,
    )
    from verifier.lockfile import read_lock

    folder = Path(path)
    if lock is not None and server is not None:
        raise UsageError("give lock or server, not both")
    if lock is not None:
        entry = select_entry(read_lock(Path(lock)), str(folder), model)
        result = check_model(folder, entry, workers=workers)
    elif server is not None:
        from verifier.service.client import ServiceClient

        client = ServiceClient(server, token if token is not None else _env_token())
        subject = service_subject(str(folder), model)
        result = check_with_service(
            folder, subject, client=client, environment=environment, workers=workers
        )
    else:
        raise UsageError("give lock (a lockfile) or server (the verification service)")
    reason = refusal(result)
    if reason is not None:
        raise CheckFailedError(reason, result=result)
    return result


def _env_token() -> str:
    return os.environ.get("VERIFIER_TOKEN", "")
