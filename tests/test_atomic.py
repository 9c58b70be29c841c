"""`verifier.atomic.replace_atomically`: whole or nothing, never through a link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from verifier.atomic import replace_atomically


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
