"""Walking a local target: nothing outside it is read, special files are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from verifier.errors import TargetError
from verifier.sources.local import open_regular, walk


def test_walk_lists_regular_files_sorted_and_relative(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "sub" / "a.txt").write_text("a")
    tree = walk(tmp_path)
    assert [f.path for f in tree.files] == ["b.txt", "sub/a.txt"]
    assert tree.findings == ()


def test_symlink_out_of_the_target_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_text("do not read")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").symlink_to(outside)
    (model / "parent").symlink_to(tmp_path)
    tree = walk(model)
    assert tree.files == ()
    assert {(f.code, f.file) for f in tree.findings} == {
        ("PATH-SYMLINK-ESCAPE", "weights.bin"),
        ("PATH-SYMLINK-ESCAPE", "parent"),
    }


def test_symlink_inside_the_target_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "alias.json").symlink_to("real.json")
    tree = walk(tmp_path)
    assert [f.path for f in tree.files] == ["alias.json", "real.json"]


def test_dangling_link_fifo_and_git_folder(tmp_path: Path) -> None:
    (tmp_path / "gone").symlink_to(tmp_path / "nothing")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    tree = walk(tmp_path)
    assert tree.files == ()
    assert {(f.code, f.file) for f in tree.findings} == {
        ("PATH-SYMLINK-DANGLING", "gone"),
        ("PATH-SPECIAL-FILE", "pipe"),
        ("PATH-SKIPPED", ".git"),
    }


def test_single_file_target(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"x")
    tree = walk(tmp_path / "model.safetensors")
    assert [f.path for f in tree.files] == ["model.safetensors"]


def test_missing_target_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="not found"):
        walk(tmp_path / "missing")


def test_open_regular_refuses_a_symlink_swapped_in(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(OSError):
        open_regular(str(tmp_path / "link"))
