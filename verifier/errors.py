"""The one error tree: every error verifier raises on purpose, with advice for the operator."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from verifier.model import CheckResult, ScanReport


class ExitCode(enum.IntEnum):
    """The command line's exit codes: the contract CI gates rely on."""

    OK = 0
    DENIED = 1
    USAGE = 2
    ERROR = 3


class VerifierError(Exception):
    """Base of every error verifier raises on purpose."""

    #: Exit code the command line uses for this error (3: could not complete).
    exit_code: ExitCode = ExitCode.ERROR

    def diagnostics(self) -> str:
        """One line for the user: what went wrong and what to do."""
        return str(self)


class UsageError(VerifierError):
    """The command was given something it cannot use (exit 2)."""

    exit_code = ExitCode.USAGE


class TargetError(UsageError):
    """The scan target does not exist or is not a file or folder."""


class PolicyError(UsageError):
    """A policy file is missing, malformed or invalid."""


class StoreError(VerifierError):
    """The database could not be reached, migrated, read or written."""


class BansChangedError(StoreError):
    """A ban was made or lifted after a scan looked up the bans in force and before its
    decision was recorded: nothing was recorded, and the scan must be decided again."""


class NotFoundError(UsageError):
    """A recorded scan or object asked for does not exist."""


class ConflictError(UsageError):
    """What a request would record exists already (such as a waiver with the same id)."""


class ScanAbortedError(VerifierError):
    """The scan could not run to the end."""


class SourceError(VerifierError):
    """A model source (such as the Hugging Face Hub) could not be reached or refused a request."""


class LockfileError(UsageError):
    """A lockfile is missing, malformed, or does not name the model asked for."""


class OutputError(VerifierError):
    """An output file could not be written (nothing is left half-written)."""


class MissingExtraError(UsageError):
    """An optional feature was asked for whose extra dependencies are not installed (exit 2)."""

    def __init__(self, feature: str, *, extra: str) -> None:
        super().__init__(
            f"{feature} needs the optional '{extra}' dependencies: "
            f"pip install 'model-weights-verifier[{extra}]'"
        )
        self.extra = extra


class KeyFileError(UsageError):
    """A signing or verification key is missing, unreadable or of an unsupported kind."""


class AttestationError(VerifierError):
    """An attestation or signature did not verify (exit 1: rejected)."""

    exit_code = ExitCode.DENIED


class NotApprovableError(VerifierError):
    """The organisation will not countersign this model: its recorded decision is not allow."""

    exit_code = ExitCode.DENIED


class ServiceError(VerifierError):
    """The verification service could not be reached, or its answer is out of contract."""


class LineageError(VerifierError):
    """A model's weights could not be fingerprinted or registered as a reference base."""


class PlacementError(VerifierError):
    """Verified files could not be placed where loaders read them (exit 3; nothing half-placed)."""


class PlacementConflictError(PlacementError):
    """The destination already holds other bytes for the same commit; `force` replaces them."""


class ModelDeniedError(VerifierError):
    """The model was not allowed (denied, incomplete, or drifted from its lock): nothing placed.

    `report` is the scan that decided it.
    """

    exit_code = ExitCode.DENIED

    def __init__(self, message: str, *, report: ScanReport) -> None:
        super().__init__(message)
        self.report = report


class CheckFailedError(VerifierError):
    """A model on disk does not match its lockfile entry (exit 1); `result` says how."""

    exit_code = ExitCode.DENIED

    def __init__(self, message: str, *, result: CheckResult) -> None:
        super().__init__(message)
        self.result = result
