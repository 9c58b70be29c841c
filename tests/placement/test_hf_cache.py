"""The HF cache and local-folder destinations on their own: layout, refusals, nothing outside."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from verifier.errors import PlacementConflictError, PlacementError
from verifier.model import DeclaredFile, PlacementOutcome
from verifier.placement.hf_cache import HubCache, default_cache_dir
from verifier.placement.interface import VerifiedFile, VerifiedSnapshot
from verifier.placement.local_dir import LocalDir

COMMIT = "a" * 40


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def snapshot(
    tmp_path: Path, files: dict[str, bytes], *, revision: str = "main"
) -> VerifiedSnapshot:
    """A verified snapshot whose store copies are written under `tmp_path/store`."""
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    verified = []
    for path, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        (store / digest).write_bytes(data)
        verified.append(VerifiedFile(path, len(data), digest, git_sha1(data), store / digest))
    declared = tuple(DeclaredFile(f.path, f.size, None, f.etag, lfs=False) for f in verified)
    return VerifiedSnapshot("acme/tiny", revision, COMMIT, tuple(verified), declared)


FILES = {"config.json": b"{}", "sub/vocab.txt": b"a\nb\n"}


def test_layout_is_the_clients(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    placed = HubCache(cache).place(snapshot(tmp_path, FILES), force=False)
    repo = cache / "models--acme--tiny"
    assert placed.path == str(repo / "snapshots" / COMMIT)
    assert placed.outcome is PlacementOutcome.PLACED
    assert sorted(os.listdir(repo)) == ["blobs", "refs", "snapshots", "trees"]
    assert sorted(os.listdir(repo / "blobs")) == sorted(git_sha1(d) for d in FILES.values())
    assert (repo / "refs" / "main").read_text() == COMMIT
    link = repo / "snapshots" / COMMIT / "sub" / "vocab.txt"
    assert os.readlink(link) == f"../../../blobs/{git_sha1(FILES['sub/vocab.txt'])}"
    assert link.read_bytes() == FILES["sub/vocab.txt"]
    again = HubCache(cache).place(snapshot(tmp_path, FILES), force=False)
    assert again.outcome is PlacementOutcome.UNCHANGED


def test_nested_ref_and_commit_revision(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    HubCache(cache).place(snapshot(tmp_path, FILES, revision="refs/pr/1"), force=False)
    assert (cache / "models--acme--tiny" / "refs" / "refs" / "pr" / "1").read_text() == COMMIT
    other = tmp_path / "other"
    HubCache(other).place(snapshot(tmp_path, FILES, revision=COMMIT), force=False)
    assert not (other / "models--acme--tiny" / "refs").exists()  # as the client: no ref


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/../../b", "a\\b", "a//b"])
def test_escaping_paths_are_refused_before_anything_is_written(tmp_path: Path, path: str) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(PlacementError, match="refusing to place"):
        HubCache(cache).place(snapshot(tmp_path, {path: b"x"}), force=True)
    assert not cache.exists()
    with pytest.raises(PlacementError, match="refusing to place"):
        LocalDir(tmp_path / "local").place(snapshot(tmp_path, {path: b"x"}), force=True)
    assert not (tmp_path / "local").exists()
    assert not (tmp_path / "escape.txt").exists()


def test_a_link_inside_the_cache_is_not_written_through(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = cache / "models--acme--tiny"
    repo.mkdir(parents=True)
    (repo / "blobs").symlink_to(outside)
    with pytest.raises(PlacementError, match="link or not a folder"):
        HubCache(cache).place(snapshot(tmp_path, FILES), force=True)
    assert list(outside.iterdir()) == []


def test_a_linked_cache_folder_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "hub"
    real.mkdir(parents=True)
    (tmp_path / "cache").symlink_to(real)
    HubCache(tmp_path / "cache").place(snapshot(tmp_path, FILES), force=False)
    assert (real / "models--acme--tiny" / "refs" / "main").exists()


def test_changed_store_copy_is_refused(tmp_path: Path) -> None:
    verified = snapshot(tmp_path, FILES)
    verified.files[0].source.write_bytes(b"[]")  # changed after it was verified
    with pytest.raises(PlacementError, match="no longer matches its digest"):
        HubCache(tmp_path / "cache").place(verified, force=True)
    assert not (tmp_path / "cache" / "models--acme--tiny" / "snapshots" / COMMIT).exists()


def test_a_snapshot_file_replaced_by_a_regular_file_with_other_bytes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    HubCache(cache).place(snapshot(tmp_path, FILES), force=False)
    entry = cache / "models--acme--tiny" / "snapshots" / COMMIT / "config.json"
    entry.unlink()
    entry.write_bytes(b"{1}")
    with pytest.raises(PlacementConflictError, match=r"config\.json in the snapshot holds other"):
        HubCache(cache).place(snapshot(tmp_path, FILES), force=False)
    placed = HubCache(cache).place(snapshot(tmp_path, FILES), force=True)
    assert placed.outcome is PlacementOutcome.REPLACED
    assert entry.is_symlink() and entry.read_bytes() == b"{}"


def test_local_dir_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "local").symlink_to(target)
    with pytest.raises(PlacementError, match="link or not a folder"):
        LocalDir(tmp_path / "local").place(snapshot(tmp_path, FILES), force=True)
    assert list(target.iterdir()) == []


def test_default_cache_dir_follows_the_clients_order(tmp_path: Path) -> None:
    assert default_cache_dir({"HF_HUB_CACHE": "/c", "HF_HOME": "/h"}) == Path("/c")
    assert default_cache_dir({"HF_HOME": "/h"}) == Path("/h/hub")
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/huggingface/hub")
    assert default_cache_dir({"HUGGINGFACE_HUB_CACHE": "/old"}) == Path("/old")


def test_a_failed_pull_leaves_the_old_snapshot_whole(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    HubCache(cache).place(snapshot(tmp_path, FILES), force=False)
    repo = cache / "models--acme--tiny"
    entry = repo / "snapshots" / COMMIT / "config.json"
    entry.unlink()
    entry.write_bytes(b"{1}")  # other bytes: a --force pull replaces the snapshot
    changed = {**FILES, "sub/vocab.txt": b"c\n"}
    verified = snapshot(tmp_path, changed)
    verified.files[-1].source.write_bytes(b"d\n")  # the second copy fails its digest
    with pytest.raises(PlacementError, match="no longer matches"):
        HubCache(cache).place(verified, force=True)
    # Nothing renamed into place: the old snapshot is as it was, no staging folder is left.
    assert entry.read_bytes() == b"{1}"
    assert (repo / "snapshots" / COMMIT / "sub" / "vocab.txt").read_bytes() == b"a\nb\n"
    assert sorted(os.listdir(repo)) == ["blobs", "refs", "snapshots", "trees"]
    assert not [name for name in os.listdir(repo / "blobs") if name.startswith(".")]


def test_swap_exchanges_a_folder_in_one_step(tmp_path: Path) -> None:
    from verifier.placement.files import swap_in

    staging = tmp_path / "staging"
    new = staging / "new"
    new.mkdir(parents=True)
    (new / "v").write_text("2")
    final = tmp_path / "final"
    final.mkdir()
    (final / "v").write_text("1")
    assert swap_in(new, final, staging) is True
    assert (final / "v").read_text() == "2"
    # The old folder is in staging (exchanged into `new`, or moved to `replaced`), never lost
    # half-way; the caller removes staging.
    olds = [p for p in (staging / "new", staging / "replaced") if p.exists()]
    assert [(p / "v").read_text() for p in olds] == ["1"]


@pytest.mark.parametrize(
    "environ",
    [
        {"HF_HOME": "HOME/a"},
        {"HF_HUB_CACHE": "HOME/c", "HF_HOME": "HOME/a"},
        {"XDG_CACHE_HOME": "HOME/x"},
        {"HUGGINGFACE_HUB_CACHE": "HOME/legacy"},
        {},
    ],
)
def test_default_cache_dir_is_the_one_huggingface_hub_uses(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    import json
    import subprocess
    import sys

    names = ("HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME", "HUGGINGFACE_HUB_CACHE")
    env = {k: v for k, v in os.environ.items() if k not in names}
    env["HOME"] = str(tmp_path)
    env.update({k: v.replace("HOME", str(tmp_path)) for k, v in environ.items()})
    code = "import json, huggingface_hub.constants as c; print(json.dumps(c.HF_HUB_CACHE))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    theirs = json.loads(out.stdout)
    ours = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from verifier.placement.hf_cache import default_cache_dir; "
            "print(json.dumps(str(default_cache_dir())))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(ours.stdout) == theirs
