"""Where verified blobs are kept: the local content-addressed folder, or also a shared S3 store."""

from verifier.blobs.interface import BlobStore, BlobStoreError
from verifier.blobs.settings import open_blob_store

__all__ = ["BlobStore", "BlobStoreError", "open_blob_store"]
