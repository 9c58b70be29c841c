"""A file-backed ScanStream for scanner tests: the real hashing reader over a temp file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from verifier.hashing import HashingReader


@contextmanager
def reader_for(path: Path, *, chunk_size: int = 1 << 16) -> Iterator[HashingReader]:
    """Open `path` and yield a HashingReader over it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        yield HashingReader(fd, size=os.fstat(fd).st_size, chunk_size=chunk_size)
    finally:
        os.close(fd)
