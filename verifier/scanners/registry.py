"""The scanner registry: the scanner for a format, its module imported when first needed.

A scan of one pickle needs the pickle scanner, not the zip, 7z, HDF5 or Jinja code of the
others: each format names the module that registers its scanner (and, for a container, its
member scanner), and that module is imported on the first file of that format.
`tests/scanners/test_registry.py` keeps this table equal to what the modules register.
"""

from __future__ import annotations

import importlib

from verifier.model import FileFormat
from verifier.scanners.interface import Scanner

#: Format -> the module (under `verifier.scanners`) whose import registers its scanner.
SCANNER_MODULES: dict[FileFormat, str] = {
    FileFormat.SAFETENSORS: "safetensors",
    FileFormat.PICKLE: "pickle",
    FileFormat.PYTORCH_ZIP: "archive",
    FileFormat.PYTORCH_LEGACY: "torch",
    FileFormat.NUMPY: "numpy",
    FileFormat.NUMPY_NPZ: "archive",
    FileFormat.ZIP: "archive",
    FileFormat.GGUF: "gguf",
    FileFormat.HDF5: "keras",
    FileFormat.ONNX: "onnx",
    FileFormat.TF_SAVEDMODEL: "savedmodel",
    FileFormat.SENTENCEPIECE: "basic",
    FileFormat.JSON: "basic",
    FileFormat.TEXT: "basic",
    FileFormat.IMAGE: "basic",
    FileFormat.EMPTY: "basic",
    FileFormat.UNKNOWN: "basic",
    FileFormat.COMPRESSED: "compressed",
    FileFormat.TAR: "tar",
    FileFormat.ARCHIVE: "sevenz",
    FileFormat.EXECUTABLE: "basic",
    FileFormat.TENSOR_DATA: "basic",
}
#: Format -> the module that registers how a container scans a member of it, where that is
#: not the module of its scanner (see `verifier.scanners.members`).
MEMBER_MODULES: dict[FileFormat, str] = {
    FileFormat.ZIP: "zip_stream",
    FileFormat.PYTORCH_ZIP: "zip_stream",
    FileFormat.NUMPY_NPZ: "zip_stream",
}


def load_scanner_module(fmt: FileFormat) -> None:
    """Import the modules that register the scanner of `fmt` and its member scanner."""
    for table in (SCANNER_MODULES, MEMBER_MODULES):
        module = table.get(fmt)
        if module is not None:
            importlib.import_module(f"verifier.scanners.{module}")


def scanner_class(fmt: FileFormat) -> type[Scanner] | None:
    """The scanner class registered for `fmt`, or None when no scanner reads it."""
    load_scanner_module(fmt)  # a dictionary look-up once the modules are loaded
    return Scanner.registry.get(fmt)


def scanner_for(fmt: FileFormat) -> Scanner | None:
    """A scanner for `fmt`, or None when no scanner reads it."""
    cls = scanner_class(fmt)
    return cls() if cls is not None else None
