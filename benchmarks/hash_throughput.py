"""Time `verifier scan` against OpenSSL's SHA-256 over the same files, in the same run.

Generates N safetensors files of M MiB each, warms the page cache, then times:
  baseline: `openssl dgst -sha256` over the files, run in parallel (xargs -P $(nproc));
  verifier: the whole `verifier scan` (hash, scan, record, decide) of the folder.
Prints both times, the ratio and verifier's peak memory (max RSS of the child process).

Usage: python benchmarks/hash_throughput.py [--files N] [--size-mb M] [--repeat R] [--dir D]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_safetensors(path: Path, size_mb: int) -> None:
    """A valid safetensors file with one F32 tensor of about `size_mb` MiB (random-ish bytes)."""
    count = size_mb * 1024 * 1024 // 4
    header = json.dumps(
        {"weight": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(header)) + header)
        remaining = count * 4
        while remaining:
            n = min(remaining, len(block))
            out.write(block[:n])
            remaining -= n


def timed(cmd: list[str] | str, *, shell: bool = False) -> tuple[float, int]:
    """Wall time of a command, and the child's max RSS in KiB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, shell=shell, stdout=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"command failed with {proc.returncode}: {cmd}")
    return elapsed, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        sys.exit("openssl is needed for the baseline")
    work = args.dir or Path(tempfile.mkdtemp(prefix="verifier-bench-"))
    model = work / "model"
    model.mkdir(parents=True, exist_ok=True)
    for i in range(args.files):
        path = model / f"model-{i:05d}.safetensors"
        if not path.exists() or path.stat().st_size < args.size_mb << 20:
            write_safetensors(path, args.size_mb)
    home = work / "home"
    env_cmd = f"VERIFIER_HOME={home}"
    verifier = [sys.executable, "-m", "verifier", "scan", str(model), "--format", "json"]
    nproc = os.cpu_count() or 1
    openssl = f"ls {model}/*.safetensors | xargs -P {nproc} -n 1 openssl dgst -sha256"
    os.environ["VERIFIER_HOME"] = str(home)
    # Bytecode caching on, as for an installed package: recompiling verifier's sources on every
    # run (PYTHONDONTWRITEBYTECODE=1 in some shells) would measure the compiler, not the pass.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    timed(openssl, shell=True)  # warm the page cache, so both read from memory
    base_times, ver_times, peak = [], [], 0
    for _ in range(args.repeat):
        base_times.append(timed(openssl, shell=True)[0])
        elapsed, rss = timed(verifier)
        ver_times.append(elapsed)
        peak = max(peak, rss)
    base, ver = min(base_times), min(ver_times)
    base_median, ver_median = statistics.median(base_times), statistics.median(ver_times)
    total = args.files * args.size_mb
    print(f"files: {args.files} x {args.size_mb} MiB = {total} MiB, cores: {nproc} ({env_cmd})")
    print(f"openssl dgst -sha256 (xargs -P {nproc}): {base:.3f} s  ({total / base:.0f} MiB/s)")
    print(f"verifier scan (hash+scan+record+decide): {ver:.3f} s  ({total / ver:.0f} MiB/s)")
    print(f"ratio verifier/openssl: {ver / base:.3f} (best of {args.repeat} each)")
    print(
        f"medians: openssl {base_median:.3f} s, verifier {ver_median:.3f} s, "
        f"ratio {ver_median / base_median:.3f}"
    )
    print(f"verifier peak memory (max RSS): {peak / 1024:.0f} MiB")
    if args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
