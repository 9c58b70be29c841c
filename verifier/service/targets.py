"""What a client may name as a target: Hub models only, checked before anything is fetched."""

from __future__ import annotations

import re

from verifier.errors import TargetError, UsageError
from verifier.policy.compiled import HF_SUBJECT
from verifier.sources.huggingface.targets import parse_hub_target

#: Longest target accepted: a Hub repository id is at most 96 characters, a revision far less.
MAX_TARGET_LENGTH = 256
#: Printable ASCII without spaces: nothing else belongs in a Hub reference.
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")
#: KServe's way of pinning a Hub model, `hf://ns/name:<hash>` (verifier writes `@<hash>`).
_KSERVE_PIN = re.compile(r"^(hf://[^:@]+):([0-9a-f]{40})$")


def check_target(target: str) -> str:
    """`target` if it names a Hub model, `hf://namespace/name[@revision]`.

    The service never reads a path of its own host named by a client, so local paths and
    every other scheme are refused; the Hub endpoint is the server's, never the client's.

    Raises:
        UsageError: The target is too long, has characters outside printable ASCII, is not
            an `hf://` reference, or is not a valid model reference.
    """
    if len(target) > MAX_TARGET_LENGTH:
        raise UsageError(f"the target is longer than {MAX_TARGET_LENGTH} characters")
    if not _PRINTABLE.match(target):
        raise UsageError("the target has characters other than printable ASCII without spaces")
    if not target.startswith("hf://"):
        raise UsageError(
            f"{target}: the service scans Hub models only, hf://namespace/name[@revision]; "
            "it never reads local paths"
        )
    parse_hub_target(target)
    return target


def from_kserve(target: str) -> str:
    """KServe's pinned `hf://ns/name:<commit>` written as verifier's `hf://ns/name@<commit>`."""
    kserve = _KSERVE_PIN.match(target)
    return f"{kserve.group(1)}@{kserve.group(2)}" if kserve is not None else target


def pinned_subject(target: str) -> str | None:
    """`target` when it is `hf://ns/name@<40-hex commit>`, else None."""
    return target if HF_SUBJECT.match(target) else None


def require_pinned(target: str) -> str:
    """The subject `hf://ns/name@<commit>` of a pinned target.

    Raises:
        UsageError: The target is not a valid Hub reference or is not pinned to a commit;
            the message says how to pin it.
    """
    subject = pinned_subject(check_target(from_kserve(target)))
    if subject is None:
        raise TargetError(unpinned_message(target))
    return subject


def unpinned_message(target: str) -> str:
    """How to pin `target`: a branch or tag can move, so only a commit names one model."""
    base = target.split("@", 1)[0]
    return (
        f"{target} is not pinned to a commit: a branch or tag can move to other weights. "
        f"Pin it as {base}@<40-hex commit> (KServe: {base}:<40-hex commit>), with the commit "
        "a scan reports as source.commit"
    )
