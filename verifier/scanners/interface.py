"""The scanner seam: a pull stream over one file's bytes, and scanners that read it once."""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.budget import DecompressionBudget


class ScanStream(Protocol):
    """Forward-only view of a file's bytes; every byte read or skipped is hashed once.

    Scanners never seek backwards: a large tensor payload is skipped, not copied.
    """

    @property
    def size(self) -> int:
        """Size of the file as seen when it was opened."""

    def read(self, n: int) -> bytes:
        """Return up to `n` bytes; fewer only at end of file."""

    def skip(self, n: int) -> int:
        """Pass over up to `n` bytes without returning them; return how many were skipped."""

    def tell(self) -> int:
        """Offset of the next byte to be read."""

    def read_at(self, offset: int, n: int) -> bytes:
        """Read up to `n` bytes at `offset` without moving the stream or hashing them.

        For the few container formats whose index sits at the end (zip's central
        directory): such metadata is small, and the data itself is still read once.
        """


class ScanLimitError(Exception):
    """A scanner met a structure past its resource limits (reported as a finding)."""


class PickleReader(enum.StrEnum):
    """Which unpickler reads a pickle, which decides what its names mean."""

    #: `pickle.load` and everything built on it (`torch.load`, joblib): a name is an import.
    PYTHON = "python"
    #: TorchScript's C++ unpickler, for the pickle records of a `torch.jit.save` archive: it
    #: imports nothing; `__torch__.*` are classes compiled from the archive's own code.
    TORCHSCRIPT = "torchscript"


@dataclass(frozen=True)
class ScanContext:
    """What a scanner may know about the file besides its bytes."""

    path: str
    format: FileFormat
    #: Where scanners leave model facts they met while reading (see `scanners.facts`); the
    #: pipeline records them with the file. None: nobody collects them.
    notes: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    #: What the file may still decompress (see `scanners.budget`), shared by every container
    #: inside it; None: only each stream's own cap applies.
    budget: DecompressionBudget | None = field(default=None, compare=False, repr=False)
    #: Who reads the pickle being scanned (set by a container for the records it knows).
    pickle_reader: PickleReader = PickleReader.PYTHON

    def note(self, kind: str, value: Any) -> None:
        """Leave a model fact of `kind` (such as "config") for the pipeline to record."""
        if self.notes is not None:
            self.notes[kind] = value

    def finding(
        self,
        code: str,
        severity: Severity,
        message: str,
        *,
        member: str | None = None,
        offset: int | None = None,
        evidence: str | None = None,
    ) -> Finding:
        """A finding attributed to this file."""
        return Finding(
            code=code,
            severity=severity,
            message=message,
            file=self.path,
            member=member,
            offset=offset,
            evidence=evidence,
        )


class Scanner(abc.ABC):
    """Reads one file's stream and yields findings; must never raise on hostile input.

    Subclasses register themselves for the formats they name.
    """

    formats: ClassVar[frozenset[FileFormat]] = frozenset()
    registry: ClassVar[dict[FileFormat, type[Scanner]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        for fmt in cls.formats:
            Scanner.registry[fmt] = cls

    @abc.abstractmethod
    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for the file behind `stream`.

        Raises:
            ScanLimitError: a structure exceeded the scanner's bounds.
        """
