"""GGUF files for the tests and the corpus: written by the `gguf` package, or by hand."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def write_gguf(
    path: Path,
    *,
    chat_template: str | None = None,
    named_templates: dict[str, str] | None = None,
    bos_token: str = "<s>",
) -> Path:
    """A small llama-architecture GGUF file written by the reference `gguf` writer."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test-model")
    writer.add_context_length(128)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([bos_token, "</s>", "hello", "world"])
    writer.add_token_scores([0.0, 0.0, -1.0, -2.0])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    for name, template in (named_templates or {}).items():
        writer.add_string(f"tokenizer.chat_template.{name}", template)
    writer.add_tensor("token_embd.weight", np.ones((4, 32), dtype=np.float32))
    writer.add_tensor("output.weight", np.zeros((4, 64), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def gguf_string(value: str | bytes) -> bytes:
    """A GGUF string: uint64 length, then the bytes."""
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("<Q", len(raw)) + raw


def gguf_kv_string(key: str, value: str | bytes) -> bytes:
    """One metadata entry of type string."""
    return gguf_string(key) + struct.pack("<I", 8) + gguf_string(value)


def hand_made(
    kvs: list[bytes],
    tensors: list[tuple[str, list[int], int, int]] | None = None,
    *,
    data: bytes = b"",
    version: int = 3,
    alignment: int = 32,
) -> bytes:
    """A GGUF file from raw metadata entries and (name, dims, ggml type, offset) tensors."""
    tensors = tensors or []
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    for name, dims, ggml_type, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
    out += b"\x00" * (-len(out) % alignment)
    return out + data
