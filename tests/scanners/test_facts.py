"""Model facts noted during the one read pass: config.json, safetensors headers, model card."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from verifier.model import WeightsHeader
from verifier.pipeline import scan_target
from verifier.policy import default_policy_path, load_policy
from verifier.scanners.facts import (
    CARD_CAP,
    MAX_HEADINGS,
    card_facts,
    config_facts,
    safetensors_facts,
)


def test_config_facts_keep_the_architecture_and_drop_the_rest() -> None:
    facts = config_facts(
        {
            "architectures": ["LlamaForCausalLM", 3],
            "model_type": "llama",
            "num_hidden_layers": 16,
            "secret": "x",
            "auto_map": {"AutoModel": "modeling.Model"},
            "quantization_config": {"quant_method": "gptq"},
            "transformers_version": "y" * 10_000,
        }
    )
    assert facts["architectures"] == ["LlamaForCausalLM"]
    assert facts["model_type"] == "llama" and facts["num_hidden_layers"] == 16
    assert "secret" not in facts
    assert facts["auto_map"] == ["AutoModel"] and facts["quant_method"] == "gptq"
    assert len(facts["transformers_version"]) == 300
    assert config_facts([1, 2]) == {}


def test_safetensors_facts_count_parameters() -> None:
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "BF16", "shape": [3, 4], "data_offsets": [0, 24]},
        "b": {"dtype": "F32", "shape": [], "data_offsets": [24, 28]},
    }
    assert safetensors_facts(header) == {"parameters": 13, "dtypes": ["BF16", "F32"]}
    assert safetensors_facts({"a": {"shape": ["x"]}}) is None


def test_card_facts_read_front_matter_and_headings() -> None:
    card = (
        "---\nlicense: mit\ndatasets:\n - a/b\nbase_model: org/base\nother: 1\n---\n"
        "# Title\n\n## Intended uses\n```\n# not a heading\n```\n### Limitations ##\n"
    )
    facts = card_facts(card.encode())
    assert facts["metadata"] == {"license": "mit", "datasets": ["a/b"], "base_model": "org/base"}
    assert facts["headings"] == ["Title", "Intended uses", "Limitations"]


def test_card_facts_survive_hostile_yaml() -> None:
    bomb = "---\nlicense: &a [x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefghij":
        bomb += f"datasets: &{level} [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    bomb += "tags: [*j, *j, *j, *j, *j, *j, *j, *j, *j]\n---\n"
    facts = card_facts(bomb.encode())
    assert len(json.dumps(facts)) < 200_000
    broken = card_facts(b"---\nlicense: [unclosed\n---\n# Hi\n")
    assert broken["metadata"] == {} and "metadata_error" in broken
    assert broken["headings"] == ["Hi"]
    many = card_facts(("# h\n" * (MAX_HEADINGS + 50)).encode())
    assert len(many["headings"]) == MAX_HEADINGS


def test_a_scan_records_the_model_facts(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    save_file(
        {"w": np.zeros((8, 16), dtype=np.float16), "b": np.zeros(16, dtype=np.float32)},
        str(model / "model.safetensors"),
    )
    (model / "config.json").write_text(json.dumps({"architectures": ["X"], "model_type": "x"}))
    (model / "README.md").write_text("---\nlicense: apache-2.0\n---\n# X\n" + "a" * CARD_CAP)
    (model / "nested").mkdir()
    (model / "nested" / "config.json").write_text(json.dumps({"model_type": "other"}))
    report = scan_target(str(model), policy=load_policy(default_policy_path()), recorder=None)
    details = report.details
    assert details.config == {"architectures": ["X"], "model_type": "x"}
    assert details.weights == {"model.safetensors": WeightsHeader(144, ("F16", "F32"))}
    assert details.card is not None and details.card.metadata == {"license": "apache-2.0"}
    assert details.card.truncated is True
    readme = next(f for f in report.files if f.path == "README.md")
    # The card's first MiB was noted, and every byte still hashed in the same pass.
    assert readme.sha256 == hashlib.sha256((model / "README.md").read_bytes()).hexdigest()
