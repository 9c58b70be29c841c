"""Write transformers Trainer checkpoints with whatever transformers and accelerate are installed.

The real-saver corpus (tests/scanners/real_savers.py) writes them with the releases the `test`
extra pins. This script writes the same two folders (a `Trainer` checkpoint of a tiny GPT-2 and
a `Seq2SeqTrainer` checkpoint of a tiny T5 with a `GenerationConfig`, two steps on the CPU) with
the releases of the interpreter that runs it, so files from other releases can be scanned by
verifier from its own environment. Run it from a throwaway virtual environment, not the
project's (docs/scanners.md, "Files written by other transformers and accelerate versions"):

    python -m venv /tmp/old
    /tmp/old/bin/pip install 'transformers==4.57.*' 'accelerate==1.10.*' torch
    /tmp/old/bin/python benchmarks/trainer_versions.py OUT
    verifier scan OUT/trainer/checkpoint-2 && verifier scan OUT/seq2seq/checkpoint-2

Usage: python benchmarks/trainer_versions.py OUT
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path


def _arguments(cls: type, out: Path, **extra: object) -> object:
    common: dict[str, object] = {
        "output_dir": str(out),
        "max_steps": 2,
        "save_steps": 2,
        "per_device_train_batch_size": 2,
        "report_to": [],
        "disable_tqdm": True,
        "logging_strategy": "no",
    }
    # `use_cpu` replaced `no_cuda` in transformers 4.34; older releases know only `no_cuda`.
    fields = getattr(cls, "__dataclass_fields__", {})
    common["use_cpu" if "use_cpu" in fields else "no_cuda"] = True
    return cls(**common, **extra)


def trainer(out: Path) -> None:
    """A `Trainer` checkpoint of a tiny GPT-2 from its config (no download)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=16)
    model = transformers.GPT2LMHeadModel(config)
    tokens = torch.arange(8) % 64
    data = [{"input_ids": tokens, "labels": tokens} for _ in range(6)]
    args = _arguments(transformers.TrainingArguments, out)
    transformers.Trainer(model=model, args=args, train_dataset=data).train()


def seq2seq(out: Path) -> None:
    """A `Seq2SeqTrainer` checkpoint of a tiny T5 with the `GenerationConfig` it keeps."""
    import torch
    import transformers

    torch.manual_seed(0)
    special = {"decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}
    config = transformers.T5Config(
        vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, **special
    )
    model = transformers.T5ForConditionalGeneration(config)
    tokens = torch.arange(2, 10)
    data = [{"input_ids": tokens, "labels": tokens} for _ in range(4)]
    generation = transformers.GenerationConfig(max_new_tokens=4, num_beams=2, **special)
    args = _arguments(
        transformers.Seq2SeqTrainingArguments,
        out,
        predict_with_generate=True,
        generation_config=generation,
    )
    transformers.Seq2SeqTrainer(model=model, args=args, train_dataset=data).train()


def main() -> int:
    """Write both folders under the folder given, and print the releases that wrote them."""
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(out / "trainer")
        seq2seq(out / "seq2seq")
    import accelerate
    import torch
    import transformers

    print(
        f"transformers {transformers.__version__}, accelerate {accelerate.__version__}, "
        f"torch {torch.__version__}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
