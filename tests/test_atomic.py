"""`verifier.atomic`: whole or nothing, never through a link, no temporary left behind; the
verified copies placed for loaders go through it too."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import pytest

from verifier.atomic import atomic_file, replace_atomically
from verifier.errors import PlacementError
from verifier.placement.files import place_verified
from verifier.placement.interface import VerifiedFile


def test_writes_whole_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "refs-main"
    replace_atomically(target, b"0" * 40, mode=0o644)
    assert target.read_bytes() == b"0" * 40
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    replace_atomically(target, b"1" * 40)
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_bytes() == b"1" * 40
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refs-main"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model.lock"
    target.write_bytes(b"old")

    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        replace_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.lock"]


def test_a_link_at_the_path_is_replaced_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "ref").symlink_to(outside)
    replace_atomically(folder / "ref", b"commit")
    assert outside.read_bytes() == b"keep"
    assert not (folder / "ref").is_symlink() and (folder / "ref").read_bytes() == b"commit"


def test_an_error_or_interrupt_in_the_block_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "blob"
    for error in (ValueError("digest differs"), KeyboardInterrupt()):
        with pytest.raises(type(error)), atomic_file(target) as handle:
            handle.write(b"half")
            raise error
        assert list(tmp_path.iterdir()) == []
    with atomic_file(target, mode=0o600) as handle:
        handle.write(b"whole")
    assert target.read_bytes() == b"whole" and stat.S_IMODE(target.stat().st_mode) == 0o600


def _verified(tmp_path: Path, data: bytes, *, claimed: bytes) -> VerifiedFile:
    source = tmp_path / "store" / "blob"
    source.parent.mkdir()
    source.write_bytes(data)
    digest = hashlib.sha256(claimed).hexdigest()
    return VerifiedFile("model.safetensors", len(claimed), digest, digest, source)


def test_a_verified_copy_is_placed_whole_with_its_mode(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    target = tmp_path / "cache" / "model.safetensors"
    place_verified(_verified(tmp_path, b"weights", claimed=b"weights"), target)
    assert target.read_bytes() == b"weights"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["model.safetensors"]


def test_a_store_copy_changed_since_verification_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    target = tmp_path / "cache" / "model.safetensors"
    target.write_bytes(b"old")
    changed = _verified(tmp_path, b"tampered", claimed=b"weights!")
    with pytest.raises(PlacementError, match="no longer matches its digest"):
        place_verified(changed, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["model.safetensors"]


def test_a_failed_rename_of_a_verified_copy_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cache").mkdir()
    verified = _verified(tmp_path, b"weights", claimed=b"weights")

    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PlacementError, match="No space left"):
        place_verified(verified, tmp_path / "cache" / "model.safetensors")
    assert list((tmp_path / "cache").iterdir()) == []


def test_there_is_one_atomic_write() -> None:
    # Every temporary file verifier writes goes through verifier.atomic; the placement of
    # folders (staging folders swapped in whole) is the one other rename.
    root = Path(__file__).resolve().parents[1] / "verifier"
    writers = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if re.search(r"\bmkstemp\b|\bNamedTemporaryFile\b|\bos\.fsync\b", path.read_text())
    )
    assert writers == ["atomic.py"]
