"""GGUF samples: chat templates that escape Jinja, and normal templates of popular families."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.corpus import Builder, benign, technique
from benchmarks.corpus.chat_templates import BENIGN, PHI3, malicious
from benchmarks.corpus.gguf_files import gguf_kv_string, hand_made, write_gguf

INJECTION = "GGUF-TEMPLATE-INJECTION"
_CVE = "CVE-2024-34359"


def _gguf_bytes(**kwargs: object) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = write_gguf(Path(folder) / "model.gguf", **kwargs)  # type: ignore[arg-type]
        return path.read_bytes()


def _malicious_builder(technique_name: str) -> Builder:
    def build(m: Path) -> bytes:
        return _gguf_bytes(chat_template=malicious(m)[technique_name])

    build.__doc__ = f"GGUF whose chat template uses the {technique_name} escape."
    return build


def _benign_builder(family: str) -> Builder:
    def build(m: Path) -> bytes:
        return _gguf_bytes(chat_template=BENIGN[family])

    build.__doc__ = f"GGUF with a normal {family} chat template."
    return build


def _register() -> None:
    for name in malicious(Path("/marker")):
        technique(
            f"gguf-template-{name}",
            family="gguf",
            filename="model.gguf",
            expect=INJECTION,
            advisory=_CVE if "subclasses" in name or "globals" in name else None,
        )(_malicious_builder(name))
    for family in BENIGN:
        benign(f"gguf-template-{family}", family="gguf", filename="model.gguf")(
            _benign_builder(family)
        )


_register()


@technique("gguf-named-template", family="gguf", filename="model.gguf", expect=INJECTION)
def named_template(m: Path) -> bytes:
    """The default template is clean; the named `tool_use` template escapes."""
    return _gguf_bytes(
        chat_template=BENIGN["llama3"],
        named_templates={"tool_use": malicious(m)["lipsum-globals"]},
    )


@technique("gguf-special-token-key", family="gguf", filename="model.gguf", expect=INJECTION)
def special_token_key(m: Path) -> bytes:
    """The BOS token's text is `__class__`, and the template indexes with it."""
    return _gguf_bytes(chat_template="{{ ()[bos_token] }}", bos_token="__class__")


@technique(
    "gguf-duplicate-template-key",
    family="gguf",
    filename="model.gguf",
    expect=("GGUF-DUPLICATE-KEY", INJECTION),
)
def duplicate_template(m: Path) -> bytes:
    """Two `tokenizer.chat_template` entries: a clean one first, an escape second."""
    return hand_made(
        [
            gguf_kv_string("tokenizer.chat_template", PHI3),
            gguf_kv_string("tokenizer.chat_template", malicious(m)["cycler-init-globals"]),
        ]
    )
