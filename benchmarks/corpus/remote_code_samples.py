"""Remote code and chat templates in configs: samples for the corpus.

A repository that only ships Python code for `trust_remote_code` is benign but warned about by
the default policy; code that starts processes, evaluates strings, comes from another
repository, or a chat template that escapes Jinja is malicious.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.corpus import benign, technique
from benchmarks.corpus.chat_templates import BENIGN, malicious

_CONFIG = {
    "architectures": ["TinyModel"],
    "model_type": "tiny",
    "auto_map": {
        "AutoConfig": "configuration_tiny.TinyConfig",
        "AutoModel": "modeling_tiny.TinyModel",
    },
}
_CLEAN_MODELING = '''"""A tiny custom model."""
import torch
from torch import nn


class TinyModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        return torch.relu(self.linear(x))
'''
_CLEAN_CONFIGURATION = '''"""Its configuration."""
from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny"
'''


def _repo(modeling: str, config: dict[str, object] | None = None) -> dict[str, bytes]:
    return {
        "config.json": json.dumps(config or _CONFIG, indent=2).encode(),
        "configuration_tiny.py": _CLEAN_CONFIGURATION.encode(),
        "modeling_tiny.py": modeling.encode(),
    }


def _with_payload(call: str) -> str:
    return _CLEAN_MODELING + "\n" + call + "\n"


@technique("remote-code-os-system", family="remote-code", expect="REMOTE-CODE-DANGEROUS-CALL")
def os_system(m: Path) -> dict[str, bytes]:
    """modeling_*.py runs os.system when transformers imports it."""
    return _repo(_with_payload(f"import os\nos.system('touch {m / 'verifier-payload-ran'}')"))


@technique("remote-code-aliased-popen", family="remote-code", expect="REMOTE-CODE-DANGEROUS-CALL")
def aliased_popen(m: Path) -> dict[str, bytes]:
    """subprocess.Popen imported under another name."""
    marker = m / "verifier-payload-ran"
    return _repo(_with_payload(f"from subprocess import Popen as _P\n_P(['touch', '{marker}'])"))


@technique("remote-code-exec-blob", family="remote-code", expect="REMOTE-CODE-DANGEROUS-CALL")
def exec_blob(m: Path) -> dict[str, bytes]:
    """exec() of a base64 string hidden in the modeling file."""
    import base64

    code = base64.b64encode(f"open('{m / 'verifier-payload-ran'}', 'w')".encode()).decode()
    return _repo(_with_payload(f"import base64\nexec(base64.b64decode('{code}'))"))


@technique("remote-code-external-repo", family="remote-code", expect="REMOTE-CODE-EXTERNAL-REPO")
def external_repo(m: Path) -> dict[str, bytes]:
    """auto_map points at code in another repository, fetched at load time."""
    config = dict(_CONFIG)
    config["auto_map"] = {"AutoModel": "attacker/helpers--modeling_tiny.TinyModel"}
    return {"config.json": json.dumps(config).encode()}


@technique(
    "tokenizer-config-template-injection",
    family="chat-template",
    expect="CHAT-TEMPLATE-INJECTION",
    advisory="CVE-2024-34359",
)
def tokenizer_config_template(m: Path) -> dict[str, bytes]:
    """tokenizer_config.json whose chat_template escapes Jinja."""
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": malicious(m)["cve-2024-34359-subclasses"],
    }
    return {"tokenizer_config.json": json.dumps(config).encode()}


@technique(
    "tokenizer-config-named-template", family="chat-template", expect="CHAT-TEMPLATE-INJECTION"
)
def tokenizer_config_named(m: Path) -> dict[str, bytes]:
    """A list of named templates; the `tool_use` one escapes."""
    config = {
        "chat_template": [
            {"name": "default", "template": BENIGN["qwen2.5-chatml"]},
            {"name": "tool_use", "template": malicious(m)["attr-filter-chain"]},
        ]
    }
    return {"tokenizer_config.json": json.dumps(config).encode()}


@technique("chat-template-jinja-file", family="chat-template", expect="CHAT-TEMPLATE-INJECTION")
def jinja_file(m: Path) -> dict[str, bytes]:
    """chat_template.jinja (the file newer transformers save) with an escape."""
    return {"chat_template.jinja": malicious(m)["generator-frame-no-underscore"].encode()}


@benign("remote-code-clean-modeling", family="remote-code")
def clean_remote_code(m: Path) -> dict[str, bytes]:
    """A custom architecture shipped as Python (warned about, not denied, by default)."""
    return _repo(_CLEAN_MODELING)


@benign("tokenizer-config-llama3-template", family="chat-template")
def tokenizer_config_llama3(m: Path) -> dict[str, bytes]:
    """tokenizer_config.json with a normal Llama 3 template."""
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": BENIGN["llama3"]}
    return {"tokenizer_config.json": json.dumps(config).encode()}


@benign("chat-template-jinja-deepseek", family="chat-template")
def jinja_file_deepseek(m: Path) -> dict[str, bytes]:
    """chat_template.jinja with a normal DeepSeek-R1 template."""
    return {"chat_template.jinja": BENIGN["deepseek-r1"].encode()}
