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


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000, 4096])
@pytest.mark.parametrize("shard", [1, 10, 100, 1000])
def test_shard_digests_match_slices(tmp_path: Path, chunk: int, shard: int) -> None:
    from verifier.hashing import ShardDigests, WholeFileDigest

    data = random.Random(chunk * shard).randbytes(2345)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd, n = _open(path)
    try:
        reader = HashingReader(
            fd,
            size=n,
            chunk_size=chunk,
            observers=[ShardDigests("sha256", shard), WholeFileDigest("blake2b")],
        )
        reader.peek(50)
        reader.skip(123)
        reader.read(9)
        digests = reader.drain()
    finally:
        os.close(fd)
    shards = [d for d in digests.extra if d.start is not None]
    expected = [
        (start, min(start + shard, n), hashlib.sha256(data[start : start + shard]).hexdigest())
        for start in range(0, n, shard)
    ]
    assert [(d.start, d.end, d.digest) for d in shards] == expected
    assert {d.algorithm for d in shards} == {f"sha256-sharded-{shard}"}
    [whole] = [d for d in digests.extra if d.start is None]
    assert whole.digest == hashlib.blake2b(data).hexdigest()


def test_shard_digests_of_an_empty_file_are_none(tmp_path: Path) -> None:
    from verifier.hashing import ShardDigests

    path = tmp_path / "empty"
    path.write_bytes(b"")
    fd, n = _open(path)
    try:
        digests = HashingReader(fd, size=n, observers=[ShardDigests("sha256", 8)]).drain()
    finally:
        os.close(fd)
    assert digests.extra == ()
