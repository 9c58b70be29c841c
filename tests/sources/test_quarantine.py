"""The quarantine's content-addressed store keeps the bytes a scan verified."""

from __future__ import annotations

import hashlib
from pathlib import Path

from verifier.sources.quarantine import Quarantine, verified_blob


def _landed(quarantine: Quarantine, name: str, data: bytes) -> Path:
    landed = quarantine.path_for(name)
    landed.parent.mkdir(parents=True, exist_ok=True)
    landed.write_bytes(data)
    return landed


def test_a_verified_download_replaces_other_bytes_kept_under_its_name(tmp_path: Path) -> None:
    data = b'{"architectures": ["BertModel"]}\n'
    sha256 = hashlib.sha256(data).hexdigest()
    planted = verified_blob(tmp_path, sha256)
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"other bytes under the name of the verified ones")
    quarantine = Quarantine(tmp_path, "scan-1")

    final = quarantine.promote(_landed(quarantine, "config.json", data), sha256)

    assert final == planted and final.read_bytes() == data
    assert final.stat().st_mode & 0o777 == 0o444
    quarantine.close()


def test_a_link_planted_under_the_name_is_replaced_not_followed(tmp_path: Path) -> None:
    data = b"weights"
    sha256 = hashlib.sha256(data).hexdigest()
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"kept outside the store")
    link = verified_blob(tmp_path / "home", sha256)
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    quarantine = Quarantine(tmp_path / "home", "scan-2")

    final = quarantine.promote(_landed(quarantine, "model.bin", data), sha256)

    assert not final.is_symlink() and final.read_bytes() == data
    assert outside.read_bytes() == b"kept outside the store"
    quarantine.close()


def test_promoting_the_same_bytes_twice_keeps_one_copy(tmp_path: Path) -> None:
    data = b"same bytes"
    sha256 = hashlib.sha256(data).hexdigest()
    first, second = Quarantine(tmp_path, "a"), Quarantine(tmp_path, "b")
    first.promote(_landed(first, "f", data), sha256)
    final = second.promote(_landed(second, "f", data), sha256)
    assert final.read_bytes() == data
    assert [p.name for p in final.parent.iterdir()] == [sha256]
    first.close()
    second.close()
