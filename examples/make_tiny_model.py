"""Write a tiny model repository (safetensors, config, tokenizer, card, licence) for a first scan.

Uses only the standard library, so it runs before any test dependency is installed.
Usage: python examples/make_tiny_model.py OUTPUT_FOLDER
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path


def safetensors_bytes(tensors: dict[str, tuple[str, list[int], bytes]]) -> bytes:
    """Serialise tensors in the safetensors layout: u64 header length, JSON header, data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[2] for t in tensors.values())


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # A 64-row token embedding (deterministic, varied values) and one 4x4 layer: small, but
    # shaped like a language model, so the weight fingerprint of verified lineage applies.
    embedding = struct.pack("<256f", *[math.sin(i * 12.9898) for i in range(256)])
    weights = struct.pack("<16f", *[i / 16 for i in range(16)])
    bias = struct.pack("<4f", 0.0, 0.5, 1.0, 1.5)
    (out / "model.safetensors").write_bytes(
        safetensors_bytes(
            {
                "embed_tokens.weight": ("F32", [64, 4], embedding),
                "linear.weight": ("F32", [4, 4], weights),
                "linear.bias": ("F32", [4], bias),
            }
        )
    )
    (out / "config.json").write_text(
        json.dumps(
            {"architectures": ["TinyLinear"], "model_type": "tiny", "hidden_size": 4}, indent=2
        )
    )
    vocab = {"<unk>": 0, "hello": 1, "world": 2}
    (out / "tokenizer.json").write_text(
        json.dumps(
            {"version": "1.0", "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}}
        )
    )
    (out / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 16}))
    (out / "README.md").write_text(
        "---\nlicense: apache-2.0\n---\n# tiny-model\n\nA token embedding and a 4x4 linear layer.\n"
    )
    (out / "LICENSE").write_text("Apache License\nVersion 2.0, January 2004\n")
    (out / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/make_tiny_model.py OUTPUT_FOLDER")
    main(Path(sys.argv[1]))
