"""The blob store seam: verified bytes by SHA-256, shared by the workers of several hosts.

Every host keeps the blobs it verified in its own content-addressed folder under
`VERIFIER_HOME` (`blobs/sha256/<2 hex>/<sha256>`, `verifier.sources.quarantine`). A shared store
(S3 or any S3-compatible service) is a second place: a host puts each blob it verified there,
and takes a blob from there before asking the Hub for it. A store is never trusted: every byte
taken from it is hashed once it has landed and kept only when it matches the digest the Hub
declares.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Protocol, runtime_checkable

from verifier.errors import VerifierError

#: How every store names a blob below its root: `sha256/<first 2 hex>/<64 hex>`.
BLOB_NAME = re.compile(r"^sha256/([0-9a-f]{2})/([0-9a-f]{64})$")


def blob_digest(name: str) -> str | None:
    """The SHA-256 a store's relative name `sha256/ab/ab…` holds, or None when the name is
    not one a store writes (another file, a partial download, a name in the wrong folder)."""
    match = BLOB_NAME.match(name)
    if match is None or match.group(2)[:2] != match.group(1):
        return None
    return match.group(2)


class BlobStoreError(VerifierError):
    """The shared blob store could not be reached, or refused a request."""


@dataclass(frozen=True)
class StoredBlob:
    """A blob a store holds: its digest, its size, and when it was stored (UTC)."""

    sha256: str
    size: int
    stored_at: datetime


@runtime_checkable
class BlobListing(Protocol):
    """Blobs that can be listed and deleted (what `verifier blobs gc` needs of a store)."""

    #: Where it is, for messages (`s3://bucket/prefix`, the local folder's path).
    url: str

    def blobs(self) -> Iterator[StoredBlob]:
        """Every blob held under a well-formed name (64 lower-case hex); anything else there
        is never listed, so never deleted.

        Raises:
            BlobStoreError: The store could not be listed.
        """
        ...

    def delete(self, sha256: str) -> None:
        """Delete the blob kept under `sha256` (none there: no error).

        Raises:
            BlobStoreError: The store refused or could not be reached.
        """
        ...


class BlobStore(Protocol):
    """A shared store of verified blobs, by SHA-256 (hex). The stores `verifier blobs gc`
    collects are also a `BlobListing` (S3 is)."""

    #: Where it is, for messages (`s3://bucket/prefix`).
    url: str

    def has(self, sha256: str) -> bool:
        """Whether the store holds a blob under this digest.

        Raises:
            BlobStoreError: The store could not be asked.
        """
        ...

    def put(self, sha256: str, data: IO[bytes], *, size: int) -> None:
        """Keep `size` bytes read from `data` (verified to have this digest) under `sha256`.

        Raises:
            BlobStoreError: The store refused them or could not be reached.
        """
        ...

    def get(self, sha256: str, sink: IO[bytes]) -> bool:
        """Write the blob kept under `sha256` into `sink`; False when there is none.

        The caller hashes what arrives: the store may hold anything under any name.

        Raises:
            BlobStoreError: The store could not be reached, or broke off.
        """
        ...
