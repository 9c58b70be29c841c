"""Opening the shared blob store a server or worker is configured with."""

from __future__ import annotations

from urllib.parse import urlsplit

from verifier.blobs.interface import BlobStore
from verifier.errors import UsageError


def open_blob_store(url: str | None) -> BlobStore | None:
    """The shared store at `url` (`s3://bucket[/prefix]`), or None for none.

    The endpoint, region and credentials are boto3's own settings (`AWS_ENDPOINT_URL_S3` or
    `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, profiles...).

    Raises:
        UsageError: The URL is not an `s3://` URL with a bucket.
        MissingExtraError: boto3 is not installed (the `s3` extra).
    """
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(
            f"blob store {url!r}: give s3://bucket[/prefix] (endpoint and credentials come "
            "from the usual AWS settings, such as AWS_ENDPOINT_URL_S3)"
        )
    from verifier.blobs.s3 import S3BlobStore

    return S3BlobStore(bucket=parts.netloc, prefix=parts.path.strip("/"))
