"""A blob store on S3 or any S3-compatible service (boto3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from verifier.blobs.interface import BlobStoreError, StoredBlob, blob_digest
from verifier.errors import MissingExtraError

#: Bytes read from the store at a time.
_CHUNK = 1 << 20


class S3BlobStore:
    """Blobs kept as objects `<prefix>/sha256/<2 hex>/<sha256>` of one bucket."""

    def __init__(self, *, bucket: str, prefix: str = "", client: Any = None) -> None:
        """Use `bucket` (with `client`, or a boto3 client from the usual AWS settings).

        Raises:
            MissingExtraError: boto3 is not installed.
        """
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise MissingExtraError("an S3 blob store", extra="s3") from None
            # Bounded retries with backoff; no redirect to another host is followed by botocore.
            client = boto3.client(
                "s3", config=Config(retries={"max_attempts": 4, "mode": "standard"})
            )
        self._client = client
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")

    def _key(self, sha256: str) -> str:
        return f"{self._prefix}sha256/{sha256[:2]}/{sha256}"

    def _failed(self, action: str, sha256: str, exc: Exception) -> BlobStoreError:
        return BlobStoreError(f"blob store {self.url}: cannot {action} sha256:{sha256}: {exc}")

    def has(self, sha256: str) -> bool:
        """Whether an object is kept under this digest.

        Raises:
            BlobStoreError: The store could not be asked.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_object(Bucket=self._bucket, Key=self._key(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._failed("look up", sha256, exc) from None
        except BotoCoreError as exc:
            raise self._failed("look up", sha256, exc) from None
        return True

    def put(self, sha256: str, data: IO[bytes], *, size: int) -> None:
        """Keep the verified bytes of `data` under `sha256`.

        Raises:
            BlobStoreError: The store refused them or could not be reached.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.upload_fileobj(
                data,
                self._bucket,
                self._key(sha256),
                ExtraArgs={"Metadata": {"sha256": sha256, "size": str(size)}},
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("store", sha256, exc) from None

    def get(self, sha256: str, sink: IO[bytes]) -> bool:
        """Stream the object kept under `sha256` into `sink`; False when there is none.

        Raises:
            BlobStoreError: The store could not be reached, or broke off.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._key(sha256))
            body = answer["Body"]
            try:
                for chunk in body.iter_chunks(_CHUNK):
                    sink.write(chunk)
            finally:
                body.close()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._failed("read", sha256, exc) from None
        except BotoCoreError as exc:
            raise self._failed("read", sha256, exc) from None
        return True

    def blobs(self) -> Iterator[StoredBlob]:
        """Every object under `<prefix>/sha256/` named as this store names blobs.

        Raises:
            BlobStoreError: The bucket could not be listed.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        root = f"{self._prefix}sha256/"
        pages = self._client.get_paginator("list_objects_v2")
        try:
            for page in pages.paginate(Bucket=self._bucket, Prefix=root):
                for entry in page.get("Contents", ()):
                    sha256 = blob_digest(str(entry["Key"])[len(self._prefix) :])
                    if sha256 is not None:
                        yield StoredBlob(sha256, int(entry["Size"]), entry["LastModified"])
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(f"blob store {self.url}: cannot list the blobs: {exc}") from None

    def delete(self, sha256: str) -> None:
        """Delete the object kept under `sha256` (none there: no error).

        Raises:
            BlobStoreError: The store refused or could not be reached.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self._bucket, Key=self._key(sha256))
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("delete", sha256, exc) from None
