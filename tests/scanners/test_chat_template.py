"""The template samples are real: escapes run in plain Jinja, family templates render sandboxed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jinja2
import jinja2.sandbox
import pytest

from benchmarks.corpus import MARKER_NAME
from benchmarks.corpus.chat_templates import BENIGN, malicious
from verifier.scanners.chat_template import TemplateParseError, analyse_template

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "user", "content": "Bye"},
]


def _raise(message: str) -> None:
    raise ValueError(message)


def test_cve_2024_34359_template_runs_code_without_a_sandbox(tmp_path: Path) -> None:
    # The reason the scanner exists: rendering this outside the sandbox runs its payload
    # (here it only creates a marker in a temporary folder).
    template = malicious(tmp_path)["cve-2024-34359-subclasses"]
    script = "import jinja2, sys; jinja2.Environment().from_string(sys.argv[1]).render()"
    subprocess.run([sys.executable, "-c", script, template], check=True, timeout=60)
    assert (tmp_path / MARKER_NAME).exists()
    assert analyse_template(template)


def test_the_sandbox_refuses_it(tmp_path: Path) -> None:
    template = malicious(tmp_path)["cve-2024-34359-subclasses"]
    env = jinja2.sandbox.ImmutableSandboxedEnvironment()
    with pytest.raises(jinja2.exceptions.SecurityError):
        env.from_string(template).render()
    assert not (tmp_path / MARKER_NAME).exists()


@pytest.mark.parametrize("family", sorted(BENIGN))
def test_family_templates_render_in_the_sandbox(family: str) -> None:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = _raise
    source = BENIGN[family].replace("{% generation %}", "").replace("{% endgeneration %}", "")
    messages = MESSAGES[1:] if family == "gemma" else MESSAGES
    text = env.from_string(source).render(
        messages=messages, bos_token="<s>", eos_token="</s>", add_generation_prompt=True
    )
    assert "Hi" in text and "Bye" in text


def test_parse_errors_and_limits() -> None:
    with pytest.raises(TemplateParseError):
        analyse_template("{% for %}")
    with pytest.raises(TemplateParseError):
        analyse_template("x" * (1 << 21))
    with pytest.raises(TemplateParseError):
        analyse_template("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")
