"""Small transformer families for the lineage evaluation and tests (torch, CPU, seconds).

Every model is generated here: independently initialised bases of one architecture, and the
derivatives an adversary or an ordinary user makes of them (fine-tunes, LoRA merges, dtype and
int8 round trips, pruning, embedding resizes, hidden-unit and residual permutations, merges of
two bases). Weights are saved as safetensors with Hugging Face style tensor names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn


@dataclass(frozen=True)
class Arch:
    """Shape of one family."""

    vocab: int = 1024
    hidden: int = 96
    layers: int = 3
    heads: int = 4
    ffn: int = 384


class Block(nn.Module):
    def __init__(self, arch: Arch) -> None:
        super().__init__()
        d, f = arch.hidden, arch.ffn
        self.heads = arch.heads
        self.input_layernorm = nn.LayerNorm(d)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)
        self.post_attention_layernorm = nn.LayerNorm(d)
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.input_layernorm(x)
        hd = d // self.heads
        q = self.q_proj(h).view(b, t, self.heads, hd).transpose(1, 2)
        k = self.k_proj(h).view(b, t, self.heads, hd).transpose(1, 2)
        v = self.v_proj(h).view(b, t, self.heads, hd).transpose(1, 2)
        att = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o_proj(att.transpose(1, 2).reshape(b, t, d))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))


class TinyLM(nn.Module):
    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.arch = arch
        self.embed_tokens = nn.Embedding(arch.vocab, arch.hidden)
        self.layers = nn.ModuleList(Block(arch) for _ in range(arch.layers))
        self.norm = nn.LayerNorm(arch.hidden)
        self.lm_head = nn.Linear(arch.hidden, arch.vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


State = dict[str, torch.Tensor]
"""A model's weights by PyTorch module name."""


def _names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hugging Face style names (model.embed_tokens.weight, model.layers.0.self_attn.q_proj...)."""
    out = {}
    for key, value in state.items():
        name = key
        for part in ("q_proj", "k_proj", "v_proj", "o_proj"):
            name = name.replace(f".{part}.", f".self_attn.{part}.")
        for part in ("gate_proj", "up_proj", "down_proj"):
            name = name.replace(f".{part}.", f".mlp.{part}.")
        out[name if name.startswith("lm_head") else f"model.{name}"] = value.contiguous()
    return out


def base(arch: Arch, seed: int) -> dict[str, torch.Tensor]:
    """An independently initialised base, briefly pre-trained so its weights are not pure noise."""
    torch.manual_seed(seed)
    model = TinyLM(arch)
    train(model, steps=20, seed=seed, lr=3e-3)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def corpus(arch: Arch, seed: int, batch: int = 16, length: int = 32) -> torch.Tensor:
    """Token sequences from a fixed random Markov chain (a 'language' the models can learn)."""
    g = torch.Generator().manual_seed(10_000 + seed)
    transitions = torch.softmax(torch.randn(arch.vocab, arch.vocab, generator=g) * 3, dim=-1)
    ids = torch.zeros(batch, length, dtype=torch.long)
    ids[:, 0] = torch.randint(arch.vocab, (batch,), generator=g)
    for t in range(1, length):
        ids[:, t] = torch.multinomial(transitions[ids[:, t - 1]], 1, generator=g).squeeze(1)
    return ids


def train(model: TinyLM, *, steps: int, seed: int, lr: float = 1e-3) -> None:
    """Next-token training on the Markov corpus of `seed` (a different task per seed)."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    data = corpus(model.arch, seed, batch=64)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(data.shape[0], (16,), generator=g)
        ids = data[rows]
        logits = model(ids[:, :-1])
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def load(arch: Arch, state: dict[str, torch.Tensor]) -> TinyLM:
    model = TinyLM(arch)
    model.load_state_dict(state)
    return model


def fine_tune(
    arch: Arch, state: dict[str, torch.Tensor], *, steps: int, seed: int
) -> dict[str, torch.Tensor]:
    model = load(arch, state)
    train(model, steps=steps, seed=seed, lr=1e-3)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def lora_merge(
    state: dict[str, torch.Tensor], *, rank: int, scale: float, seed: int
) -> dict[str, torch.Tensor]:
    """Merge random rank-r adapters into every attention and MLP matrix (W + s * B A)."""
    g = torch.Generator().manual_seed(seed)
    out = dict(state)
    for key, value in state.items():
        if value.ndim == 2 and key.startswith("layers."):
            rows, cols = value.shape
            a = torch.randn(rank, cols, generator=g) / math.sqrt(cols)
            b = torch.randn(rows, rank, generator=g) / math.sqrt(rank)
            out[key] = value + scale * value.std() * (b @ a)
    return out


def round_trip(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype).to(torch.float32) for k, v in state.items()}


def int8_round_trip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Symmetric per-row int8 quantisation and back."""
    out = {}
    for key, value in state.items():
        if value.ndim == 2:
            scale = value.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127
            out[key] = torch.round(value / scale).clamp(-127, 127) * scale
        else:
            out[key] = value
    return out


def prune(state: dict[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """Magnitude pruning of every matrix."""
    out = {}
    for key, value in state.items():
        if value.ndim == 2:
            cut = value.abs().flatten().kthvalue(max(1, int(fraction * value.numel()))).values
            out[key] = torch.where(value.abs() <= cut, torch.zeros_like(value), value)
        else:
            out[key] = value
    return out


def resize_embeddings(
    state: dict[str, torch.Tensor], extra: int, seed: int
) -> dict[str, torch.Tensor]:
    """Add `extra` token rows (new special tokens) to the input and output embeddings."""
    g = torch.Generator().manual_seed(seed)
    out = dict(state)
    for key in ("embed_tokens.weight", "lm_head.weight"):
        value = state[key]
        rows = torch.randn(extra, value.shape[1], generator=g) * value.std()
        out[key] = torch.cat([value, rows])
    return out


def permute(
    arch: Arch, state: dict[str, torch.Tensor], seed: int, *, residual: bool
) -> dict[str, torch.Tensor]:
    """Reorder MLP hidden units, attention heads and (optionally) residual dimensions.

    The permuted model computes the same function as the original up to LayerNorm's
    per-dimension parameters, which are permuted with the residual stream.
    """
    g = torch.Generator().manual_seed(seed)
    out = dict(state)
    d, hd = arch.hidden, arch.hidden // arch.heads
    res = torch.randperm(d, generator=g) if residual else torch.arange(d)
    for i in range(arch.layers):
        p = f"layers.{i}."
        ffn = torch.randperm(arch.ffn, generator=g)
        out[p + "gate_proj.weight"] = state[p + "gate_proj.weight"][ffn][:, res]
        out[p + "up_proj.weight"] = state[p + "up_proj.weight"][ffn][:, res]
        out[p + "down_proj.weight"] = state[p + "down_proj.weight"][res][:, ffn]
        heads = torch.randperm(arch.heads, generator=g)
        order = torch.cat([torch.arange(h * hd, (h + 1) * hd) for h in heads.tolist()])
        for part in ("q_proj", "k_proj", "v_proj"):
            out[p + part + ".weight"] = state[p + part + ".weight"][order][:, res]
        out[p + "o_proj.weight"] = state[p + "o_proj.weight"][res][:, order]
        for norm in ("input_layernorm", "post_attention_layernorm"):
            for leaf in ("weight", "bias"):
                out[p + f"{norm}.{leaf}"] = state[p + f"{norm}.{leaf}"][res]
    out["embed_tokens.weight"] = state["embed_tokens.weight"][:, res]
    out["lm_head.weight"] = state["lm_head.weight"][:, res]
    for leaf in ("weight", "bias"):
        out[f"norm.{leaf}"] = state[f"norm.{leaf}"][res]
    return out


def merge(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], weight: float = 0.5
) -> dict[str, torch.Tensor]:
    """Linear merge of two models of one architecture."""
    return {k: weight * a[k] + (1 - weight) * b[k] for k in a}


def save(
    state: dict[str, torch.Tensor], folder: Path, *, dtype: torch.dtype = torch.float32
) -> Path:
    """Write `model.safetensors` (HF names) into `folder` and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(dtype) for k, v in _names(state).items()}, str(folder / "model.safetensors"))
    return folder


#: Hugging Face names as llama.cpp's converter writes them in GGUF.
_GGUF_RENAMES = (
    ("model.embed_tokens.", "token_embd."),
    ("lm_head.", "output."),
    ("model.norm.", "output_norm."),
    ("model.layers.", "blk."),
    (".self_attn.q_proj.", ".attn_q."),
    (".self_attn.k_proj.", ".attn_k."),
    (".self_attn.v_proj.", ".attn_v."),
    (".self_attn.o_proj.", ".attn_output."),
    (".mlp.gate_proj.", ".ffn_gate."),
    (".mlp.up_proj.", ".ffn_up."),
    (".mlp.down_proj.", ".ffn_down."),
    (".input_layernorm.", ".attn_norm."),
    (".post_attention_layernorm.", ".ffn_norm."),
)


def save_gguf(state: dict[str, torch.Tensor], folder: Path, *, quantise: str = "F16") -> Path:
    """Write `model.gguf` into `folder` as llama.cpp's converter names it, with every matrix in
    `quantise` (F32, F16, BF16 or Q8_0, through the `gguf` package) and vectors in F32."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.gguf"
    writer = GGUFWriter(str(path), arch="llama")
    kind = GGMLQuantizationType[quantise]
    for name, tensor in _names(state).items():
        for old, new in _GGUF_RENAMES:
            name = name.replace(old, new)
        values = tensor.float().numpy()
        if values.ndim < 2 or kind is GGMLQuantizationType.F32:
            writer.add_tensor(name, values.astype(np.float32))
        elif kind is GGMLQuantizationType.F16:
            writer.add_tensor(name, values.astype(np.float16))
        else:
            writer.add_tensor(name, quantize(values, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return folder
