"""Remote code: Python files, auto_map hints, chat templates in configs, and the policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.corpus.chat_templates import BENIGN, malicious
from verifier.model import Decision
from verifier.pipeline import scan_target
from verifier.policy import default_policy_path, load_policy


def _scan(folder: Path, policy: str = "default") -> tuple[Decision, list[tuple[str, str]]]:
    path = default_policy_path().with_name(f"{policy}.yaml")
    report = scan_target(str(folder), policy=load_policy(path), recorder=None, workers=1)
    return report.verdict.decision, [(f.code, f.file or "") for f in report.findings]


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


CONFIG = {"model_type": "tiny", "auto_map": {"AutoModel": "modeling_tiny.TinyModel"}}
CLEAN = "import torch\n\nclass TinyModel(torch.nn.Module):\n    pass\n"


def test_python_files_warn_by_default_and_are_denied_in_production(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "m",
        {"config.json": json.dumps(CONFIG), "modeling_tiny.py": CLEAN, "sub/helpers.py": "x = 1\n"},
    )
    decision, found = _scan(folder)
    assert decision is Decision.ALLOW
    assert ("REMOTE-CODE-PYTHON-FILE", "modeling_tiny.py") in found
    assert ("REMOTE-CODE-PYTHON-FILE", "sub/helpers.py") in found
    assert ("REMOTE-CODE-AUTO-MAP", "config.json") in found
    decision, _ = _scan(folder, "strict-production")
    assert decision is Decision.DENY


def test_auto_map_evidence_lists_the_module_files(tmp_path: Path) -> None:
    config = {
        "auto_map": {
            "AutoConfig": "configuration_tiny.TinyConfig",
            "AutoTokenizer": ["tokenization_tiny.TinyTokenizer", None],
        },
        "custom_pipelines": {"tiny-task": {"impl": "pipeline_tiny.TinyPipeline"}},
    }
    folder = _write(tmp_path / "m", {"tokenizer_config.json": json.dumps(config)})
    report = scan_target(
        str(folder), policy=load_policy(default_policy_path()), recorder=None, workers=1
    )
    [finding] = report.findings
    assert finding.code == "REMOTE-CODE-AUTO-MAP"
    assert finding.evidence == "configuration_tiny.py, pipeline_tiny.py, tokenization_tiny.py"


def test_external_repository_code_is_denied(tmp_path: Path) -> None:
    config = {"auto_map": {"AutoModel": "someone/else--modeling.Model"}}
    decision, found = _scan(_write(tmp_path / "m", {"config.json": json.dumps(config)}))
    assert decision is Decision.DENY
    assert [c for c, _ in found] == ["REMOTE-CODE-EXTERNAL-REPO"]


def test_trust_remote_code_hint(tmp_path: Path) -> None:
    folder = _write(tmp_path / "m", {"config.json": json.dumps({"trust_remote_code": True})})
    assert _scan(folder)[1] == [("REMOTE-CODE-TRUST-HINT", "config.json")]


@pytest.mark.parametrize(
    ("source", "call"),
    [
        ("import os\nos.system('id')\n", "os.system"),
        ("import subprocess as sp\nsp.run(['id'])\n", "subprocess.run"),
        ("from subprocess import Popen as P\nP(['id'])\n", "subprocess.Popen"),
        ("from os import popen\npopen('id')\n", "os.popen"),
        ("exec('print(1)')\n", "exec"),
        ("def f():\n    return eval('1')\n", "eval"),
        ("import ctypes\nctypes.CDLL('libc.so.6')\n", "ctypes.CDLL"),
        ("__import__('os')\n", "__import__"),
    ],
)
def test_dangerous_calls_in_python_files(tmp_path: Path, source: str, call: str) -> None:
    decision, found = _scan(_write(tmp_path / "m", {"modeling_x.py": CLEAN + source}))
    assert decision is Decision.DENY
    assert ("REMOTE-CODE-DANGEROUS-CALL", "modeling_x.py") in found


def test_clean_python_and_string_mentions_are_not_dangerous(tmp_path: Path) -> None:
    source = CLEAN + "DOC = 'never call os.system or eval here'\nmodel.eval()\nself.exec = 1\n"
    decision, found = _scan(_write(tmp_path / "m", {"modeling_x.py": source}))
    assert decision is Decision.ALLOW
    # `import torch` opens with INST to a pickle loader: the import it would try is reported.
    assert sorted(c for c, _ in found) == [
        "PICKLE-IMPORT-IN-TEXT",
        "REMOTE-CODE-IMPORTS",
        "REMOTE-CODE-PYTHON-FILE",
    ]


@pytest.mark.parametrize(
    "source",
    [
        "import os\ngetattr(os, 'sys' + 'tem')('id')\n",
        "import builtins\nf = getattr(builtins, name)\n",
        "import importlib\nimportlib.import_module(name)\n",
        "import sys\nsys.modules['os'].system('id')\n",
        "globals()['ev' + 'al']('1')\n",
    ],
)
def test_dynamic_dispatch_denies(tmp_path: Path, source: str) -> None:
    decision, found = _scan(_write(tmp_path / "m", {"modeling_x.py": CLEAN + source}))
    assert decision is Decision.DENY
    assert {c for c, _ in found} & {"REMOTE-CODE-DYNAMIC-DISPATCH", "REMOTE-CODE-DANGEROUS-CALL"}


def test_unparseable_python_is_not_passed(tmp_path: Path) -> None:
    decision, found = _scan(_write(tmp_path / "m", {"modeling_x.py": "def broken(:\n"}))
    assert decision is Decision.DENY
    assert ("REMOTE-CODE-UNPARSED", "modeling_x.py") in found


@pytest.mark.parametrize("family", sorted(BENIGN))
def test_tokenizer_config_family_templates_pass(tmp_path: Path, family: str) -> None:
    config = {"chat_template": BENIGN[family]}
    folder = _write(tmp_path / "m", {"tokenizer_config.json": json.dumps(config)})
    assert _scan(folder) == (Decision.ALLOW, [])


def test_tokenizer_config_template_escape_is_critical(tmp_path: Path) -> None:
    template = malicious(tmp_path)["str-format-attribute"]
    folder = _write(
        tmp_path / "m", {"tokenizer_config.json": json.dumps({"chat_template": template})}
    )
    decision, found = _scan(folder)
    assert decision is Decision.DENY
    assert found == [("CHAT-TEMPLATE-INJECTION", "tokenizer_config.json")]


def test_invalid_template_in_config_is_reported(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "m", {"chat_template.json": json.dumps({"chat_template": "{% if %}"})}
    )
    assert _scan(folder) == (Decision.DENY, [("CHAT-TEMPLATE-INVALID", "chat_template.json")])


def test_jinja_file_is_analysed_whatever_its_first_byte(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "m",
        {
            "chat_template.jinja": "{{ lipsum.__globals__ }}",
            "other/chat_template.jinja": "Hello {{ cycler.__init__ }}",
        },
    )
    decision, found = _scan(folder)
    assert decision is Decision.DENY
    assert sorted(found) == [
        ("CHAT-TEMPLATE-INJECTION", "chat_template.jinja"),
        ("CHAT-TEMPLATE-INJECTION", "other/chat_template.jinja"),
    ]


def test_named_template_list_in_tokenizer_config(tmp_path: Path) -> None:
    templates = [
        {"name": "default", "template": BENIGN["llama3"]},
        {"name": "tool_use", "template": "{{ ()|attr('__cl' ~ 'ass__') }}"},
    ]
    folder = _write(
        tmp_path / "m", {"tokenizer_config.json": json.dumps({"chat_template": templates})}
    )
    decision, found = _scan(folder)
    assert (decision, found) == (
        Decision.DENY,
        [("CHAT-TEMPLATE-INJECTION", "tokenizer_config.json")],
    )


@pytest.mark.parametrize(
    "document",
    [
        {"processor": {"prompt_template": "{{ cycler.__init__.__globals__ }}"}},
        {"pipelines": [{"format": "Hi {% for k in ['__class__'] %}{{ ()[k] }}{% endfor %}"}]},
        {"deep": {"er": {"template": "{% set k %}__class__{% endset %}{{ ()[k] }}"}}},
    ],
)
def test_templates_anywhere_in_a_json_config(tmp_path: Path, document: object) -> None:
    folder = _write(tmp_path / "m", {"generation_config.json": json.dumps(document)})
    decision, found = _scan(folder)
    assert (decision, set(found)) == (
        Decision.DENY,
        {("CHAT-TEMPLATE-INJECTION", "generation_config.json")},
    )


def test_text_with_braces_that_is_not_jinja_is_left_alone(tmp_path: Path) -> None:
    document = {"vocab": ["{{", "{%", "}}"], "note": "use {{ like this"}
    folder = _write(tmp_path / "m", {"tokenizer.json": json.dumps(document)})
    assert _scan(folder) == (Decision.ALLOW, [])


@pytest.mark.parametrize("name", ["config.yaml", "prompts/chat.yml"])
def test_templates_in_yaml_configs(tmp_path: Path, name: str) -> None:
    text = (
        "model: tiny\n"
        "anchors: &t\n  template: \"{{ lipsum['__glob' ~ 'als__'] }}\"\n"
        "copies: [*t, *t, *t]\n"
        "chat_template: |\n  {% for m in messages %}{{ m['content'] }}{% endfor %}\n"
    )
    decision, found = _scan(_write(tmp_path / "m", {name: text}))
    assert (decision, set(found)) == (Decision.DENY, {("CHAT-TEMPLATE-INJECTION", name)})


def test_benign_yaml_and_j2_files_pass(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "m",
        {
            "config.yaml": "chat_template: " + json.dumps(BENIGN["qwen2.5-chatml"]) + "\n",
            "template.j2": BENIGN["mistral"],
        },
    )
    assert _scan(folder) == (Decision.ALLOW, [])


def test_template_mutating_a_list_is_medium(tmp_path: Path) -> None:
    config = {"chat_template": "{% do messages.append({'role': 'x'}) %}{{ messages|length }}"}
    folder = _write(tmp_path / "m", {"tokenizer_config.json": json.dumps(config)})
    assert _scan(folder) == (
        Decision.ALLOW,
        [("CHAT-TEMPLATE-MUTATION", "tokenizer_config.json")],
    )
