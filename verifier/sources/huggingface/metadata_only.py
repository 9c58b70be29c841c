"""What can be known of a Hub file without downloading it: declared digests, safetensors headers.

Used by `--metadata-only`: nothing large is downloaded, so nothing here is a verification.
"""

from __future__ import annotations

import os

from verifier.errors import SourceError
from verifier.model import DeclaredFile, FileFormat, FileResult, Finding, PinnedRevision, Severity
from verifier.scanners.safetensors import HEADER_CAP, validate_header
from verifier.sources.huggingface.client import HubClient

#: Formats a file name alone suggests, when its bytes are not read.
_BY_SUFFIX: dict[str, FileFormat] = {
    ".safetensors": FileFormat.SAFETENSORS,
    ".gguf": FileFormat.GGUF,
    ".npy": FileFormat.NUMPY,
    ".npz": FileFormat.NUMPY_NPZ,
    ".pkl": FileFormat.PICKLE,
    ".pickle": FileFormat.PICKLE,
    ".bin": FileFormat.PYTORCH_ZIP,
    ".pt": FileFormat.PYTORCH_ZIP,
    ".pth": FileFormat.PYTORCH_ZIP,
    ".ckpt": FileFormat.PYTORCH_ZIP,
    ".onnx": FileFormat.ONNX,
    ".h5": FileFormat.HDF5,
    ".json": FileFormat.JSON,
    ".txt": FileFormat.TEXT,
    ".md": FileFormat.TEXT,
}


def format_by_name(path: str) -> FileFormat:
    """The format a file's name suggests (unknown when it suggests none)."""
    return _BY_SUFFIX.get(os.path.splitext(path)[1].lower(), FileFormat.UNKNOWN)


def metadata_result(
    source: HubClient, pinned: PinnedRevision, declared: DeclaredFile
) -> FileResult:
    """A file described from its declared metadata (and safetensors header), never complete.

    Raises:
        SourceError: the Hub could not be reached or refused the range request.
    """
    fmt = format_by_name(declared.path)
    findings: list[Finding] = []
    if fmt is FileFormat.SAFETENSORS:
        findings = _safetensors_header(source, pinned, declared)
        if any(f.code == "SAFETENSORS-HEADER-INVALID" for f in findings):
            fmt = FileFormat.UNKNOWN
    return FileResult(
        path=declared.path,
        size=declared.size,
        sha256=None,
        git_sha1=None,
        format=fmt,
        findings=tuple(findings),
        complete=False,
    )


def _safetensors_header(
    source: HubClient, pinned: PinnedRevision, declared: DeclaredFile
) -> list[Finding]:
    def invalid(message: str) -> list[Finding]:
        return [Finding("SAFETENSORS-HEADER-INVALID", Severity.HIGH, message, file=declared.path)]

    if declared.size < 8:
        return invalid(f"file is {declared.size} bytes, too short for a safetensors header")
    prefix = source.read_range(pinned, declared.path, 0, 8)
    if len(prefix) != 8:
        raise SourceError(f"{declared.path}: the Hub returned {len(prefix)} of 8 header bytes")
    length = int.from_bytes(prefix, "little")
    if length > min(HEADER_CAP, declared.size - 8):
        return invalid(f"header length {length} is over the cap or past the end of the file")
    header = source.read_range(pinned, declared.path, 8, length) if length else b""
    if len(header) != length:
        raise SourceError(
            f"{declared.path}: the Hub returned {len(header)} of {length} header bytes"
        )
    problems = validate_header(header, data_size=declared.size - 8 - length)
    if problems:
        return invalid("; ".join(problems[:5]))
    return []
