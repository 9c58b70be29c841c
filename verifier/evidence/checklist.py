"""EU AI Act checklist: what a downstream deployer asks a general-purpose model provider for.

Each item is marked present, missing or not applicable from what the recorded scan holds: the
model card's front matter and headings, config.json, the safetensors headers, the repository's
files and the Hub source's provenance. "Present" means the information is there to read; it
says nothing about whether it is adequate, which remains the reviewer's judgement.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from verifier.evidence.facts import EvidenceFacts

#: Hugging Face pipeline tags and the modalities they imply (input -> output).
_MODALITIES = {
    "text-generation": "text -> text",
    "text2text-generation": "text -> text",
    "fill-mask": "text -> text",
    "translation": "text -> text",
    "summarization": "text -> text",
    "question-answering": "text -> text",
    "text-classification": "text -> label",
    "token-classification": "text -> labels",
    "feature-extraction": "text -> embedding",
    "sentence-similarity": "text -> score",
    "image-text-to-text": "image + text -> text",
    "image-to-text": "image -> text",
    "text-to-image": "text -> image",
    "image-classification": "image -> label",
    "automatic-speech-recognition": "audio -> text",
    "text-to-speech": "text -> audio",
    "audio-classification": "audio -> label",
    "any-to-any": "multiple -> multiple",
}


class ItemStatus(enum.StrEnum):
    """Whether the information a checklist item asks for was found."""

    PRESENT = "present"
    MISSING = "missing"
    NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class ChecklistItem:
    """One piece of information, its status, and what that status rests on."""

    key: str
    label: str
    status: ItemStatus
    basis: str


def _heading(facts: EvidenceFacts, pattern: str) -> str | None:
    card = facts.details.card if facts.details is not None else None
    if card is None:
        return None
    regex = re.compile(pattern, re.I)
    return next((h for h in card.headings if regex.search(h)), None)


def _from_card(facts: EvidenceFacts, key: str, label: str, pattern: str) -> ChecklistItem:
    found = _heading(facts, pattern)
    if found is not None:
        return ChecklistItem(key, label, ItemStatus.PRESENT, f"model card section '{found}'")
    card = facts.details.card if facts.details is not None else None
    basis = (
        "no model card section about it" if card is not None else "no model card (README.md) read"
    )
    return ChecklistItem(key, label, ItemStatus.MISSING, basis)


def _architecture(facts: EvidenceFacts) -> ChecklistItem:
    details = facts.details
    label = "Architecture"
    if details is not None and (details.architectures or details.model_type):
        parts = [", ".join(details.architectures)] if details.architectures else []
        if details.model_type:
            parts.append(f"model_type {details.model_type}")
        return ChecklistItem(
            "architecture", label, ItemStatus.PRESENT, "config.json: " + "; ".join(parts)
        )
    return ChecklistItem("architecture", label, ItemStatus.MISSING, "no config.json architecture")


def _parameters(facts: EvidenceFacts) -> ChecklistItem:
    details = facts.details
    label = "Parameter count"
    if details is not None and details.parameter_count is not None:
        return ChecklistItem(
            "parameters",
            label,
            ItemStatus.PRESENT,
            f"{details.parameter_count:,} parameters counted in the safetensors headers",
        )
    return ChecklistItem("parameters", label, ItemStatus.MISSING, "no safetensors header to count")


def _modalities(facts: EvidenceFacts) -> ChecklistItem:
    label = "Input and output modalities"
    tag = facts.pipeline_tag
    if tag:
        implied = _MODALITIES.get(tag)
        basis = f"pipeline tag {tag}" + (f" ({implied})" if implied else "")
        return ChecklistItem("modalities", label, ItemStatus.PRESENT, basis)
    return _from_card(facts, "modalities", label, r"modalit|input|output")


def _licence(facts: EvidenceFacts) -> ChecklistItem:
    label = "Licence"
    if facts.license:
        return ChecklistItem("licence", label, ItemStatus.PRESENT, f"declared: {facts.license}")
    names = {f.path.lower() for f in facts.report.files}
    found = sorted(n for n in names if n.split(".")[0] in ("license", "licence", "copying"))
    if found:
        return ChecklistItem("licence", label, ItemStatus.PRESENT, f"file {found[0]}")
    return ChecklistItem("licence", label, ItemStatus.MISSING, "no licence declared or shipped")


def _training_data(facts: EvidenceFacts) -> ChecklistItem:
    label = "Training data summary"
    if facts.datasets:
        return ChecklistItem(
            "training-data", label, ItemStatus.PRESENT, "datasets: " + ", ".join(facts.datasets)
        )
    return _from_card(facts, "training-data", label, r"training data|training procedure|dataset")


def _base_model(facts: EvidenceFacts) -> ChecklistItem:
    label = "Base model disclosed (derivatives)"
    if facts.lineage:
        names = ", ".join(a.repo_id for a in facts.lineage if a.depth <= 1)
        return ChecklistItem("base-model", label, ItemStatus.PRESENT, f"declared: {names}")
    if facts.lineage is not None:
        return ChecklistItem(
            "base-model", label, ItemStatus.NOT_APPLICABLE, "no base model declared (original)"
        )
    return ChecklistItem(
        "base-model", label, ItemStatus.NOT_APPLICABLE, "no base model declared in the model card"
    )


def eu_ai_act_checklist(facts: EvidenceFacts) -> tuple[ChecklistItem, ...]:
    """The checklist items, in the order a reviewer reads them."""
    return (
        _from_card(
            facts, "intended-uses", "Intended uses", r"intended|^uses?\b|direct use|use cases?"
        ),
        _from_card(
            facts,
            "prohibited-uses",
            "Prohibited and out-of-scope uses",
            r"out[- ]of[- ]scope|prohibited|misuse|acceptable use|restrict",
        ),
        _from_card(facts, "limitations", "Limitations and risks", r"limitation|bias|risk"),
        _architecture(facts),
        _parameters(facts),
        _modalities(facts),
        _licence(facts),
        _training_data(facts),
        _from_card(
            facts,
            "copyright-policy",
            "Copyright policy",
            r"copyright|opt[- ]?out|text and data mining|\btdm\b",
        ),
        _base_model(facts),
    )
