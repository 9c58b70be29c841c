"""The Hub client: resolve a revision to its commit once, declare, download, read ranges.

Every request after resolution names the pinned commit, never the branch. Foreign exceptions
of `huggingface_hub` are turned into `SourceError` (exit 3) here, at the boundary.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from verifier.errors import SourceError
from verifier.model import DeclaredFile, ModelRef, PinnedRevision

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
#: HTTP statuses worth retrying: rate limited, or a server that may recover.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Retries of a refused or failed Hub request, waiting BACKOFF_SECONDS * 2**n before each.
RETRIES = 4
BACKOFF_SECONDS = 1.0

T = TypeVar("T")


@dataclass(frozen=True)
class HubSettings:
    """How to reach the Hub: endpoint, token, and how patiently to retry."""

    endpoint: str
    token: str | None = None
    retries: int = 4
    backoff_seconds: float = 1.0

    @classmethod
    def from_env(
        cls,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        retries: int = RETRIES,
        backoff_seconds: float = BACKOFF_SECONDS,
    ) -> HubSettings:
        """Flags first, then `HF_ENDPOINT` / `HF_TOKEN` (the client also reads `HF_HOME`)."""
        chosen = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
        return cls(
            endpoint=chosen.rstrip("/"),
            token=token or os.environ.get("HF_TOKEN") or None,
            retries=retries,
            backoff_seconds=backoff_seconds,
        )


@dataclass(frozen=True)
class HubModel:
    """What resolution established: the pinned commit, the declared files, and the raw info."""

    pinned: PinnedRevision
    files: tuple[DeclaredFile, ...]
    #: The same commit's files as the model info lists them (cross-checked with `files`).
    listed: tuple[DeclaredFile, ...]
    info: Any  # huggingface_hub.ModelInfo


class OversizeError(Exception):
    """A download sent more bytes than the source declared."""


class _Oversize(OversizeError):
    """The server sent more bytes than declared (raised inside the Hub client's download)."""


class CappedWriter:
    """A file-like sink that keeps the bytes as they arrive and refuses any past `limit`.

    It hashes nothing: the landed file is hashed by the scan's one reader
    (`verifier.hashing.HashingReader`), so the digests are of the bytes that were scanned.
    """

    def __init__(self, sink: IO[bytes], *, limit: int, on_bytes: Callable[[int], None]) -> None:
        self._sink = sink
        self._limit = limit
        self._on_bytes = on_bytes
        self.written = 0

    def write(self, data: bytes) -> int:
        if self.written + len(data) > self._limit:
            raise _Oversize(f"more than the declared {self._limit} bytes were sent")
        self._sink.write(data)
        self.written += len(data)
        self._on_bytes(len(data))
        return len(data)

    def tell(self) -> int:
        return self.written

    def seek(self, offset: int, whence: int = 0) -> int:
        # The client rewinds only to restart a download the server would not resume: what is
        # kept before `offset` stays, the rest is written again.
        keep = offset if whence == 0 else 0
        keep = max(0, min(keep, self.written))
        self._on_bytes(keep - self.written)
        self._sink.seek(keep)
        self._sink.truncate(keep)
        self.written = keep
        return self.written

    def truncate(self, size: int | None = None) -> int:
        return self._sink.truncate(size)

    def flush(self) -> None:
        self._sink.flush()


def write_capped(
    sink: IO[bytes], declared: DeclaredFile, data: bytes, *, on_bytes: Callable[[int], None]
) -> int:
    """Write bytes already fetched (a side file) into `sink` as a download would: capped.

    Raises:
        OversizeError: `data` is longer than the declared size.
    """
    writer = CappedWriter(sink, limit=declared.size, on_bytes=on_bytes)
    try:
        writer.write(data)
    except _Oversize as exc:
        raise OversizeError(str(exc)) from None
    return writer.written


class MissingEntryError(SourceError):
    """A declared file is not served at the pinned commit."""


class HubClient:
    """A Hub reached through `huggingface_hub`, with errors mapped to one line each."""

    def __init__(self, settings: HubSettings) -> None:
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        from huggingface_hub import HfApi
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # verifier draws its own progress, on stderr
        self.settings = settings
        self._api = HfApi(endpoint=settings.endpoint, token=settings.token)

    # -- resolution ---------------------------------------------------------------------------

    def model_info(self, repo_id: str, revision: str | None, *, files: bool) -> Any:
        """`HfApi.model_info` with retries and mapped errors.

        Raises:
            SourceError: not found, gated, unauthorised, unreachable, or rate limited.
        """
        return self._call(
            f"{repo_id}@{revision or 'main'}",
            lambda: self._api.model_info(
                repo_id, revision=revision, files_metadata=files, securityStatus=files
            ),
        )

    def resolve(self, ref: ModelRef) -> HubModel:
        """Resolve `ref` to a commit once, and list what that commit declares.

        Raises:
            SourceError: the Hub refused or could not answer.
        """
        requested = ref.revision or "main"
        info = self.model_info(ref.repo_id, requested, files=True)
        commit = getattr(info, "sha", None)
        if not isinstance(commit, str) or not re.fullmatch(r"[0-9a-f]{40}", commit):
            raise SourceError(f"{ref.repo_id}@{requested}: the Hub did not return a commit sha")
        pinned = PinnedRevision(
            repo_id=ref.repo_id,
            revision_requested=requested,
            commit=commit,
            endpoint=self.settings.endpoint,
        )
        entries = self._call(
            f"{ref.repo_id}@{commit}",
            lambda: list(self._api.list_repo_tree(ref.repo_id, revision=commit, recursive=True)),
        )
        files = []
        for entry in entries:
            if not hasattr(entry, "blob_id") or not hasattr(entry, "size"):  # a folder
                continue
            lfs = getattr(entry, "lfs", None)
            files.append(
                DeclaredFile(
                    path=str(entry.path),
                    size=int(entry.size),
                    sha256=str(lfs.sha256) if lfs is not None else None,
                    git_sha1=str(entry.blob_id) if entry.blob_id else None,
                    lfs=lfs is not None,
                )
            )
        files.sort(key=lambda f: f.path)
        listed = []
        for sibling in getattr(info, "siblings", None) or ():
            lfs = getattr(sibling, "lfs", None)
            listed.append(
                DeclaredFile(
                    path=str(sibling.rfilename),
                    size=int(sibling.size or 0),
                    sha256=str(lfs.sha256) if lfs is not None else None,
                    git_sha1=str(sibling.blob_id) if sibling.blob_id else None,
                    lfs=lfs is not None,
                )
            )
        return HubModel(pinned=pinned, files=tuple(files), listed=tuple(listed), info=info)

    # -- bytes --------------------------------------------------------------------------------

    def file_url(self, pinned: PinnedRevision, path: str) -> str:
        """The resolve URL of `path` at the pinned commit."""
        from huggingface_hub import hf_hub_url

        return hf_hub_url(pinned.repo_id, path, revision=pinned.commit, endpoint=pinned.endpoint)

    def download(
        self,
        pinned: PinnedRevision,
        declared: DeclaredFile,
        sink: IO[bytes],
        *,
        on_bytes: Callable[[int], None] = lambda _n: None,
    ) -> int:
        """Stream `declared` at the pinned commit into `sink`; return how many bytes arrived.

        Never accepts more bytes than declared (the excess is refused, not stored). The bytes
        are not hashed here: the scan's reader hashes the landed file, once.

        Raises:
            OversizeError: the server sent more than the declared size.
            SourceError: the Hub refused or could not answer.
        """
        from huggingface_hub import constants, get_session, hf_raise_for_status
        from huggingface_hub.utils import build_hf_headers

        writer = CappedWriter(sink, limit=declared.size, on_bytes=on_bytes)
        headers = build_hf_headers(token=self.settings.token)
        url = self.file_url(pinned, declared.path)

        def attempt() -> None:
            asked = dict(headers)
            if writer.written:  # a retry resumes where the bytes stopped, if the server lets it
                asked["Range"] = f"bytes={writer.written}-"
            # The library's shared session follows the Hub's redirect to its CDN (another
            # origin: the token is not sent there), as its own downloads do.
            with get_session().stream(
                "GET",
                url,
                headers=asked,
                follow_redirects=True,
                timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
            ) as response:
                hf_raise_for_status(response)
                resumed = response.headers.get("Content-Range", "")
                if writer.written and not (
                    response.status_code == 206 and resumed.startswith(f"bytes {writer.written}-")
                ):
                    writer.seek(0)  # the range was ignored: the file starts again
                # Chunks as the network delivers them: what arrived is kept before
                # a connection breaks, so a retry asks only for the rest.
                for chunk in response.iter_bytes():
                    writer.write(chunk)

        try:
            self._call(f"{pinned.repo_id}@{pinned.commit}: {declared.path}", attempt)
        except _Oversize as exc:
            raise OversizeError(str(exc)) from None
        return writer.written

    def served_commit(self, pinned: PinnedRevision, path: str) -> str | None:
        """The commit the Hub says it serves `path` from (`X-Repo-Commit` of a HEAD request).

        Raises:
            SourceError: the Hub refused or could not answer.
        """
        from huggingface_hub import get_hf_file_metadata

        url = self.file_url(pinned, path)
        metadata = self._call(
            f"{pinned.repo_id}@{pinned.commit}: {path}",
            lambda: get_hf_file_metadata(url, token=self.settings.token),
        )
        commit = getattr(metadata, "commit_hash", None)
        return str(commit) if commit else None

    def read_range(self, pinned: PinnedRevision, path: str, start: int, length: int) -> bytes:
        """Bytes `start`..`start+length-1` of `path` at the pinned commit (an HTTP range).

        Raises:
            SourceError: the Hub refused or could not answer.
        """
        from huggingface_hub import get_session, hf_raise_for_status
        from huggingface_hub.utils import build_hf_headers

        headers = build_hf_headers(token=self.settings.token)
        headers["Range"] = f"bytes={start}-{start + length - 1}"
        url = self.file_url(pinned, path)

        def fetch() -> bytes:
            response = get_session().get(url, headers=headers, follow_redirects=True)
            hf_raise_for_status(response)
            body = bytes(response.content)
            if response.status_code == 200:  # range ignored: keep only what was asked for
                body = body[start : start + length]
            return body

        result: bytes = self._call(f"{pinned.repo_id}@{pinned.commit}: {path}", fetch)
        return result

    # -- errors -------------------------------------------------------------------------------

    def _call(self, what: str, func: Callable[[], T], *, retry: bool = True) -> T:
        attempts = 1 + (self.settings.retries if retry else 0)
        attempt = 0
        while True:
            try:
                return func()
            except (_Oversize, SourceError):
                raise
            except Exception as exc:
                mapped = translate_error(what, self.settings.endpoint, exc)
                if mapped is None:
                    raise
                error, retriable = mapped
                attempt += 1
                if not retriable or attempt >= attempts:
                    raise error from None
                delay = self.settings.backoff_seconds * (2 ** (attempt - 1))
                log.info("%s: %s; retrying in %.1f s", what, error, delay)
                time.sleep(delay)


def translate_error(what: str, endpoint: str, exc: Exception) -> tuple[SourceError, bool] | None:
    """The one-line error for a Hub failure and whether retrying may help; None if not one."""
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, hf_errors.GatedRepoError):
        return SourceError(
            f"{what}: gated repository; accept its terms on the Hub and pass a token with "
            "access (--token or HF_TOKEN)"
        ), False
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return SourceError(
            f"{what}: repository not found at {endpoint} (or private: pass a token with access)"
        ), False
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return SourceError(f"{what}: revision not found"), False
    if isinstance(exc, hf_errors.EntryNotFoundError):
        return MissingEntryError(f"{what}: file not found at the pinned commit"), False
    if isinstance(exc, hf_errors.HfHubHTTPError):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if status in (401, 403):
            return SourceError(
                f"{what}: authentication failed (HTTP {status}); check the token"
            ), False
        if status == 429:
            return SourceError(f"{what}: rate limited by {endpoint}; try again later"), True
        message = f"{what}: the Hub answered HTTP {status}: {_first_line(exc)}"
        return SourceError(message), status in RETRY_STATUSES
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return SourceError(f"{what}: HF_HUB_OFFLINE is set, so the Hub cannot be reached"), False
    network = type(exc).__module__.startswith(("httpx", "httpcore", "requests", "urllib3"))
    if network or isinstance(exc, (ConnectionError, TimeoutError)):
        return SourceError(f"{what}: cannot reach {endpoint}: {_first_line(exc)}"), True
    return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
