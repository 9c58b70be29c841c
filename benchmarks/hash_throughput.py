"""Time `verifier scan` against OpenSSL's SHA-256 over the same files, in the same run.

Generates N safetensors files of M MiB each, warms the page cache, then times:
  baseline: `openssl dgst -sha256` over the files, run in parallel (xargs -P $(nproc));
  verifier: the whole `verifier scan` (hash, scan, record, decide) of the folder.
Prints both times (best and median wall time, median CPU time), the ratios and verifier's peak
memory (max RSS of the child process).

With --before TREE (a checkout of verifier's sources, such as `git archive` of an older commit),
that tree's `verifier scan` runs in the same alternation (PYTHONPATH=TREE, same interpreter and
packages), so that a change is measured before and after in one run.

Usage: python benchmarks/hash_throughput.py [--files N] [--size-mb M] [--repeat R] [--dir D]
           [--before TREE]
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


def timed(
    cmd: list[str] | str, *, shell: bool = False, env: dict[str, str] | None = None
) -> tuple[float, int, float]:
    """Wall time of a command, the children's max RSS in KiB so far, and the command's CPU time
    (user + system of its processes: a machine shared with other jobs disturbs it less)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, shell=shell, stdout=subprocess.DEVNULL, check=False, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"command failed with {proc.returncode}: {cmd}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, max(before.ru_maxrss, after.ru_maxrss), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--before", type=Path, default=None, help="an older source tree to compare")
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
    before_env = None
    if args.before is not None:
        before_env = {**os.environ, "PYTHONPATH": str(args.before.resolve())}
        # -P: the current folder (this checkout, perhaps) must not come before TREE on the path.
        old_verifier = [sys.executable, "-P", *verifier[1:]]
        timed(old_verifier, env=before_env)  # warm its bytecode cache
    timed(openssl, shell=True)  # warm the page cache, so both read from memory
    base_times, ver_times, base_cpu, ver_cpu, peak = [], [], [], [], 0
    old_times: list[float] = []
    old_cpu: list[float] = []
    for _ in range(args.repeat):
        elapsed, _, cpu = timed(openssl, shell=True)
        base_times.append(elapsed)
        base_cpu.append(cpu)
        elapsed, rss, cpu = timed(verifier)
        ver_times.append(elapsed)
        ver_cpu.append(cpu)
        peak = max(peak, rss)
        if before_env is not None:
            elapsed, _, cpu = timed(old_verifier, env=before_env)
            old_times.append(elapsed)
            old_cpu.append(cpu)
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
    base_c, ver_c = statistics.median(base_cpu), statistics.median(ver_cpu)
    print(
        f"CPU time, medians: openssl {base_c:.3f} s, verifier {ver_c:.3f} s, "
        f"ratio {ver_c / base_c:.3f}"
    )
    if old_times:
        old, old_median, old_c = (
            min(old_times),
            statistics.median(old_times),
            statistics.median(old_cpu),
        )
        print(
            f"before ({args.before}): best {old:.3f} s (ratio {old / base:.3f}), median "
            f"{old_median:.3f} s (ratio {old_median / base_median:.3f}), CPU {old_c:.3f} s "
            f"(ratio {old_c / base_c:.3f})"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"verifier peak memory (max RSS): {peak / 1024:.0f} MiB")
    if args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
