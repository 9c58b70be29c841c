"""The scanner registry: importing this module registers every scanner."""

from __future__ import annotations

from verifier.model import FileFormat
from verifier.scanners import (  # noqa: F401  (imported to register)
    archive,
    basic,
    compressed,
    gguf,
    keras,
    numpy,
    onnx,
    pickle,
    safetensors,
    savedmodel,
    sevenz,
    tar,
    torch,
    zip_stream,
)
from verifier.scanners.interface import Scanner


def scanner_for(fmt: FileFormat) -> Scanner | None:
    """The scanner registered for `fmt`, or None when no scanner reads it."""
    cls = Scanner.registry.get(fmt)
    return cls() if cls is not None else None
