"""The lazy scanner registry names, for every format, the module that registers its scanner."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from verifier.model import FileFormat
from verifier.scanners.interface import Scanner
from verifier.scanners.members import MEMBER_SCANNERS
from verifier.scanners.registry import MEMBER_MODULES, SCANNER_MODULES, scanner_for

ROOT = Path(__file__).resolve().parents[2]
#: The formats a container scans differently when they are members (checked below).
CONTAINERS = frozenset(
    {
        FileFormat.ZIP,
        FileFormat.PYTORCH_ZIP,
        FileFormat.NUMPY_NPZ,
        FileFormat.COMPRESSED,
        FileFormat.TAR,
        FileFormat.ARCHIVE,
    }
)
SCANNERS = ROOT / "verifier" / "scanners"


def _import_every_scanner_module() -> None:
    for path in sorted(SCANNERS.glob("*.py")):
        importlib.import_module(f"verifier.scanners.{path.stem}")


def test_every_format_names_the_module_of_its_scanner() -> None:
    _import_every_scanner_module()
    registered = {fmt: cls.__module__ for fmt, cls in Scanner.registry.items()}
    named = {fmt: f"verifier.scanners.{module}" for fmt, module in SCANNER_MODULES.items()}
    assert named == registered
    assert set(FileFormat) == set(SCANNER_MODULES)  # no format is left without a scanner
    members = {fmt: scan.__module__ for fmt, scan in MEMBER_SCANNERS.items()}
    assert set(members) == CONTAINERS
    named_members = {
        fmt: f"verifier.scanners.{MEMBER_MODULES.get(fmt, SCANNER_MODULES[fmt])}" for fmt in members
    }
    assert members == named_members


def test_scanner_for_gives_the_registered_scanner() -> None:
    for fmt in FileFormat:
        scanner = scanner_for(fmt)
        assert scanner is not None and type(scanner) is Scanner.registry[fmt]


@pytest.mark.parametrize("fmt", sorted(CONTAINERS, key=str))
def test_loading_a_container_format_registers_its_member_scanner(fmt: FileFormat) -> None:
    # In a fresh interpreter: only the one module named for the format is imported first.
    code = textwrap.dedent(
        f"""
        import json
        from verifier.model import FileFormat
        from verifier.scanners.interface import Scanner
        from verifier.scanners.members import MEMBER_SCANNERS
        from verifier.scanners.registry import load_scanner_module
        fmt = FileFormat({fmt.value!r})
        assert fmt not in Scanner.registry and fmt not in MEMBER_SCANNERS
        load_scanner_module(fmt)
        print(json.dumps([fmt in Scanner.registry, fmt in MEMBER_SCANNERS]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert json.loads(result.stdout) == [True, True]


def test_a_member_is_scanned_by_a_scanner_not_loaded_before(tmp_path: Path) -> None:
    # A tar holding a pickle that imports os.system: the tar scanner must load the pickle
    # scanner for its member, or the member would pass unread.
    import io
    import pickle
    import tarfile

    class Hostile:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("true",))

    payload = pickle.dumps(Hostile(), protocol=2)
    archive = tmp_path / "model.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("inner/data.pkl")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    code = textwrap.dedent(
        f"""
        import json, sys
        from verifier.file_scan import scan_file
        from verifier.sources.local import LocalFile
        assert "verifier.scanners.pickle" not in sys.modules
        result = scan_file(LocalFile(path="model.tar", location={str(archive)!r}))
        print(json.dumps(sorted({{f.code for f in result.findings}})))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert any("PICKLE" in code for code in json.loads(result.stdout))
