"""Module names the unpickler imports, as CPython's import system really finds them.

A pickle's `GLOBAL` or `INST` names a module by two lines of text, and `pickle.load` hands the
first to `__import__`. The identification used to call a module name that is no Python
identifier (`po#six`, `a b`) "not importable" and the bytes text, yet the import system finds
`po#six.py` on `sys.path` by its file name. The oracle here is CPython itself, in a subprocess
whose modules only create a marker file: for each name it writes the module files the finders
could look for (in a folder and in a zip on `sys.path`) and loads a pickle that imports and
calls the name with both unpicklers. Whatever ran, the scan must block.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.scanners import pickle_campaign
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding, Severity
from verifier.pipeline import scan_stream
from verifier.scanners.sniff import HEAD_SIZE, identify

NAMES = [
    "po#six",
    "a b",
    "a\\b",
    "-dash",
    "1num",
    "ünï",
    "a:b",
    "  lead",
    "trail ",
    ".",
    "..",
    ".x",
    "a/b",
    "/abs",
    "../up",
    "a\x00b",
    "",
]

_ORACLE = r"""
import io, json, os, pickle, sys, zipfile
names = json.loads(sys.stdin.read())
root = os.getcwd()
results = {}
for index, name in enumerate(names):
    folder = os.path.join(root, f"lib{index}")
    os.makedirs(folder)
    archive = os.path.join(root, f"lib{index}.zip")
    marker = os.path.join(root, f"marker{index}")
    body = f"open({marker!r}, 'w').close()\nx = lambda *a: None\n"
    # The files a finder could look for: the whole name, and its last dotted part.
    for stem in {name, name.rpartition(".")[2]}:
        try:
            path = os.path.join(folder, stem + ".py")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(body)
        except (OSError, ValueError):
            pass
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(name + ".py", body)
    encoded = name.encode("utf-8")
    ran = {}
    for entry in (folder, archive):
        for reader in (pickle.Unpickler, pickle._Unpickler):
            for data in (b"c" + encoded + b"\nx\n(S'a'\ntR.", b"(S'a'\ni" + encoded + b"\nx\n."):
                saved = set(sys.modules)
                sys.path.insert(0, entry)
                try:
                    reader(io.BytesIO(data)).load()
                except BaseException:
                    pass
                finally:
                    sys.path.remove(entry)
                    for module in set(sys.modules) - saved:
                        del sys.modules[module]
                    sys.path_importer_cache.clear()
                if os.path.exists(marker):
                    os.remove(marker)
                    ran[data[:1].decode()] = True
    results[name] = sorted(ran)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def imported_by_cpython(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """For each name, the opcodes (`c` GLOBAL, `(` INST) under which CPython ran its module."""
    workdir = tmp_path_factory.mktemp("import-oracle")
    answer = subprocess.run(
        [sys.executable, "-I", "-c", _ORACLE],
        input=json.dumps(NAMES),
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=120,
        check=True,
    )
    result: dict[str, list[str]] = json.loads(answer.stdout)
    return result


def _scan(data: bytes) -> list[Finding]:
    _, findings, _ = scan_stream(BytesScanStream(data), "model.bin", data[:HEAD_SIZE])
    return findings


def test_the_oracle_runs_what_the_import_system_finds(
    imported_by_cpython: dict[str, list[str]],
) -> None:
    """The oracle can say no: an empty or NUL name finds nothing; `po#six.py` is found."""
    assert imported_by_cpython["po#six"] == ["(", "c"]
    assert imported_by_cpython["a/b"]  # from the zip on sys.path
    assert imported_by_cpython["."]  # `.py`, before "Empty module name"
    assert imported_by_cpython[""] == []
    assert imported_by_cpython["a\x00b"] == []
    assert imported_by_cpython["ünï"] == ["c"]  # INST decodes ASCII: never imported


@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_every_name_cpython_imports_is_blocked(
    name: str, imported_by_cpython: dict[str, list[str]]
) -> None:
    encoded = name.encode("utf-8")
    forms = {"c": b"c" + encoded + b"\nx\n(S'a'\ntR.", "(": b"(S'a'\ni" + encoded + b"\nx\n."}
    for opcode in imported_by_cpython[name]:
        data = forms[opcode]
        findings = _scan(data)
        assert identify(data, len(data)) is FileFormat.PICKLE, (name, opcode)
        assert any(f.severity in pickle_campaign.BLOCKING for f in findings), (name, findings)
        assert pickle_campaign.disagreement(data) is None


# Text a repository really holds whose first bytes read as GLOBAL or INST (made by code).
_TEXTS = {
    "licence, lowercase": b"copyright 2024 the authors\nall rights reserved.\n\n"
    b"Redistribution and use in source and binary forms are permitted.\n",
    "bsd licence": b"Copyright (c) 2011 Someone <someone@example.org>\n\n"
    b"Redistribution and use in source and binary forms, with or without modification, "
    b"are permitted provided that the following conditions are met:\n\n1. Redistributions\n",
    "python imports": b"import math\n\nimport numpy as np\nimport os\nimport sys\n\nx = 1\n",
    "python class": b"class Config:\n    hidden = 4\n\nimport os\n",
    "word list": b"cat\ndog\nfish\nbird\n",
    "install notes": b"cd build\ncmake ..\nmake install\n",
}


@pytest.mark.parametrize("text", list(_TEXTS.values()), ids=list(_TEXTS))
def test_text_that_reads_as_an_import_stays_text_and_is_reported(text: bytes) -> None:
    """Zero new false positives: prose whose opening the unpickler would import is text, and
    the import it would attempt is reported (info), never blocked."""
    assert identify(text, len(text)) is FileFormat.TEXT
    findings = _scan(text)
    assert all(f.severity is Severity.INFO for f in findings), findings
    reads = pickle_campaign.unpickler_reads(text)
    assert reads.called == set()
    if reads.imported:
        reported = {f.evidence or "" for f in findings if f.code == "PICKLE-IMPORT-IN-TEXT"}
        modules = {module for module, _ in reads.imported}
        assert any(e.startswith(m) for e in reported for m in modules), findings


def test_text_with_no_import_has_no_finding() -> None:
    text = b"# Model card\n\nA small model.\n"
    assert _scan(text) == []
