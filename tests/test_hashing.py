"""The hashing reader: every byte hashed once, whatever mix of read, peek and skip."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

import pytest

from verifier.hashing import HashingReader


def _open(path: Path) -> tuple[int, int]:
    fd = os.open(path, os.O_RDONLY)
    return fd, os.fstat(fd).st_size


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4096, 100_003])
def test_drain_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd, n = _open(path)
    try:
        digests = HashingReader(fd, size=n, chunk_size=8).drain()
    finally:
        os.close(fd)
    assert digests.size == size
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.git_sha1 is None


def test_mixed_reads_return_the_right_bytes_and_hash_everything_once(tmp_path: Path) -> None:
    rng = random.Random(7)
    data = rng.randbytes(50_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd, n = _open(path)
    try:
        reader = HashingReader(fd, size=n, chunk_size=1000)
        pos = 0
        while pos < len(data):
            step = rng.randint(0, 3000)
            action = rng.choice(["read", "skip", "peek"])
            if action == "read":
                got = reader.read(step)
                assert got == data[pos : pos + step]
                pos += len(got)
            elif action == "skip":
                pos += reader.skip(step)
            else:
                assert reader.peek(step) == data[pos : pos + min(step, 1000)]
            assert reader.tell() == pos
        digests = reader.drain()
    finally:
        os.close(fd)
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.size == len(data)


def test_git_blob_sha1_matches_git(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"model_type": "llama"}\n')
    fd, n = _open(path)
    try:
        digests = HashingReader(fd, size=n, git_sha1=True, chunk_size=5).drain()
    finally:
        os.close(fd)
    expected = subprocess.run(
        ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert digests.git_sha1 == expected


def test_read_at_does_not_move_or_hash(tmp_path: Path) -> None:
    data = b"0123456789" * 10
    path = tmp_path / "f"
    path.write_bytes(data)
    fd, n = _open(path)
    try:
        reader = HashingReader(fd, size=n, chunk_size=16)
        assert reader.read(3) == b"012"
        assert reader.read_at(95, 10) == b"56789"
        assert reader.tell() == 3
        digests = reader.drain()
    finally:
        os.close(fd)
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
