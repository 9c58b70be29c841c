"""Files identified by reference: raw tensor data that another file of the same model names.

Raw tensor bytes have no magic, so content alone leaves them FORMAT-UNKNOWN. Some are named by
a model file the scanner analysed: an ONNX model's external data (`location` entries, noted by
the ONNX scanner) and a TensorFlow SavedModel's `variables/variables.index` and
`variables/variables.data-NNNNN-of-NNNNN` beside `saved_model.pb`. Those loaders read such a
file as tensor bytes and nothing else, so a file that content left unidentified, and that an
analysed model file names, is identified as TENSOR_DATA. Content that is identified (a pickle,
a zip behind leading bytes, an executable) keeps its own format and findings: the relabelling
never hides a reading that a loader could act on.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Iterable

from verifier.model import FileFormat, FileResult, Finding, Severity

#: Note key under which a scanner lists the data files its model reads (relative paths).
EXTERNAL_DATA_NOTE = "external_data"

_SAVEDMODEL_DATA = re.compile(r"variables/variables\.(index|data-\d{5}-of-\d{5})")


def _owners(files: Iterable[FileResult]) -> dict[str, str]:
    """Data path -> the model file that names it."""
    files = list(files)
    owners: dict[str, str] = {}
    for result in files:
        folder = posixpath.dirname(result.path)
        for location in result.notes.get(EXTERNAL_DATA_NOTE, ()):
            target = posixpath.normpath(posixpath.join(folder, str(location).replace("\\", "/")))
            owners.setdefault(target, result.path)
        if result.format is FileFormat.TF_SAVEDMODEL:
            for other in files:
                inside = posixpath.relpath(other.path, folder or ".")
                if _SAVEDMODEL_DATA.fullmatch(inside):
                    owners.setdefault(other.path, result.path)
    return owners


def _only_unknown(result: FileResult) -> bool:
    return result.format is FileFormat.UNKNOWN and [f.code for f in result.findings] == [
        "FORMAT-UNKNOWN"
    ]


def identify_referenced(files: tuple[FileResult, ...]) -> tuple[FileResult, ...]:
    """`files` with unidentified files that an analysed model file names made TENSOR_DATA."""
    owners = _owners(files)
    if not owners:
        return files
    out = []
    for result in files:
        owner = owners.get(result.path)
        if owner is None or not _only_unknown(result):
            out.append(result)
            continue
        note = Finding(
            "FORMAT-REFERENCED-DATA",
            Severity.INFO,
            f"raw tensor data that {owner} reads as its weights; no loader interprets it otherwise",
            file=result.path,
            evidence=owner,
        )
        out.append(dataclasses.replace(result, format=FileFormat.TENSOR_DATA, findings=(note,)))
    return tuple(out)
