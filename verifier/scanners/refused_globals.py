"""Packages real savers write into pickles that verifier refuses on purpose, and why.

A name from these packages is `PICKLE-UNKNOWN-GLOBAL` (high) like any name off the allowlist;
the finding says why the package was read and refused, and what to save instead, so the
operator is not left to guess whether the file is malicious or the list merely incomplete.
"""

from __future__ import annotations

#: Top-level package -> why its classes are refused, and what a saver can write instead.
REFUSED_PACKAGES: dict[str, str] = {
    "omegaconf": (
        "OmegaConf configs (Hydra, NeMo and Lightning hyper-parameters saved as a DictConfig or "
        "ListConfig) are refused: a DictConfig answers attribute lookups from its items and "
        "resolves interpolations when it does, like an AttributeDict, and its __setstate__ "
        "inspects type annotations the pickle chose; save OmegaConf.to_container(cfg, "
        "resolve=True) instead, or waive the file"
    ),
}


def refusal(module: str) -> str | None:
    """Why names from `module` are refused on purpose; None for any other module."""
    return REFUSED_PACKAGES.get(module.partition(".")[0])
