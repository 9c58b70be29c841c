"""The blob store seam: verified bytes by SHA-256, shared by the workers of several hosts.

Every host keeps the blobs it verified in its own content-addressed folder under
`VERIFIER_HOME` (`blobs/sha256/<2 hex>/<sha256>`, `verifier.sources.quarantine`). A shared store
(S3 or any S3-compatible service) is a second place: a host puts each blob it verified there,
and takes a blob from there before asking the Hub for it. A store is never trusted: every byte
taken from it is hashed once it has landed and kept only when it matches the digest the Hub
declares.
"""

from __future__ import annotations

from typing import IO, Protocol

from verifier.errors import VerifierError


class BlobStoreError(VerifierError):
    """The shared blob store could not be reached, or refused a request."""


class BlobStore(Protocol):
    """A shared store of verified blobs, by SHA-256 (hex)."""

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
