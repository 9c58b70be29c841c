"""Model facts taken from bytes a scanner already read: config.json, safetensors headers, card.

Pure functions over data in memory; the scanners call them during the one read pass, so no file
is read twice. Every value is bounded (sizes, depth, counts) so a hostile file cannot make the
recorded document large.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from verifier import bounded_yaml

#: Bytes of a model card read for its facts; the rest is hashed, not kept.
CARD_CAP = 1 << 20
#: Longest string kept from any of these files.
MAX_TEXT = 300
#: Most headings kept from a model card.
MAX_HEADINGS = 200
#: Most values (list items, mapping entries, nested) kept from the card's front matter.
MAX_NODES = 2000
MAX_DEPTH = 6

#: config.json keys worth recording (architecture and size; `auto_map` means custom code).
CONFIG_KEYS = (
    "architectures",
    "model_type",
    "torch_dtype",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
    "max_position_embeddings",
    "tie_word_embeddings",
    "transformers_version",
)
#: Model card front matter keys worth recording (the Hub's card data).
CARD_KEYS = (
    "license",
    "license_name",
    "license_link",
    "base_model",
    "base_model_relation",
    "datasets",
    "language",
    "library_name",
    "pipeline_tag",
    "tags",
)
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def is_root(path: str, name: str) -> bool:
    """Whether `path` is the file `name` at the model's root (case-insensitive)."""
    return path.lower() == name.lower()


def _scalar(value: object) -> str | int | float | bool | None:
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return None


def _plain(value: object, budget: list[int], depth: int = 0) -> Any:
    """A JSON-ready copy of `value` within the node budget (shared anchors are not expanded)."""
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if budget[0] < 0:
                break
            out[str(key)[:MAX_TEXT]] = _plain(item, budget, depth + 1)
        return out
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            if budget[0] < 0:
                break
            items.append(_plain(item, budget, depth + 1))
        return items
    if isinstance(value, str | bool | int | float) or value is None:
        return _scalar(value)
    return str(value)[:MAX_TEXT]  # dates and other YAML scalars


def config_facts(config: object) -> dict[str, Any]:
    """The recorded part of a parsed `config.json` (empty when it is not an object)."""
    if not isinstance(config, Mapping):
        return {}
    facts: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        if key not in config:
            continue
        value = config[key]
        if isinstance(value, list):
            facts[key] = [_scalar(v) for v in value[:16] if isinstance(v, str)]
        elif (scalar := _scalar(value)) is not None or value is None:
            facts[key] = scalar
    if isinstance(config.get("auto_map"), Mapping):
        facts["auto_map"] = sorted(str(k)[:MAX_TEXT] for k in config["auto_map"])[:16]
    quantization = config.get("quantization_config")
    if isinstance(quantization, Mapping) and "quant_method" in quantization:
        facts["quant_method"] = _scalar(quantization["quant_method"])
    return facts


def safetensors_facts(header: object) -> dict[str, Any] | None:
    """Parameter count and dtypes of a parsed safetensors header; None when not countable."""
    if not isinstance(header, Mapping):
        return None
    parameters = 0
    dtypes: set[str] = set()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, Mapping):
            return None
        shape, dtype = info.get("shape"), info.get("dtype")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            return None
        count = 1
        for dim in shape:
            count *= dim
        parameters += count
        if isinstance(dtype, str):
            dtypes.add(dtype[:32])
    return {"parameters": parameters, "dtypes": sorted(dtypes)[:16]}


def card_facts(data: bytes) -> dict[str, Any]:
    """Front matter (selected keys) and section headings of a model card's first bytes."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    facts: dict[str, Any] = {"metadata": {}, "headings": []}
    body = text
    if text.startswith("---"):
        lines = text.split("\n")
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            body = "\n".join(lines[end + 1 :])
            try:
                meta = bounded_yaml.load_single("\n".join(lines[1:end]), bounded_yaml.MODEL_FILE)
            except (yaml.YAMLError, ValueError) as exc:
                facts["metadata_error"] = str(exc).splitlines()[0][:MAX_TEXT]
            else:
                if isinstance(meta, Mapping):
                    budget = [MAX_NODES]
                    facts["metadata"] = {
                        key: _plain(meta[key], budget) for key in CARD_KEYS if key in meta
                    }
    headings: list[str] = []
    fenced = False
    for line in body.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced and (match := _HEADING.match(line)) and match[2]:
            headings.append(match[2][:MAX_TEXT])
            if len(headings) >= MAX_HEADINGS:
                break
    facts["headings"] = headings
    facts["truncated"] = len(data) >= CARD_CAP
    return facts
