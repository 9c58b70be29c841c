"""What pickle scanning adds to hashing: a legacy and a zip PyTorch checkpoint, same process.

Writes two checkpoints of about --size-gb GiB each with torch.save (many tensors, so the pickle
is realistic), warms the page cache, then alternates --repeat times between:
  baseline: hashing the file alone (the pipeline's HashingReader: SHA-256 of every byte);
  scan:     the same reader, plus identify and the format's scanner (pickle, zip) on the way.
Prints the best time of each, the ratio scan/baseline per format, and the findings.

Usage: python benchmarks/pickle_overhead.py [--size-gb 2] [--repeat 3] [--dir D]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from verifier.hashing import HashingReader  # noqa: E402
from verifier.scanners.interface import ScanContext  # noqa: E402
from verifier.scanners.registry import scanner_for  # noqa: E402
from verifier.scanners.sniff import HEAD_SIZE, identify  # noqa: E402

TENSOR_MB = 64


def write_checkpoint(path: Path, size_gb: float, *, zip_format: bool) -> None:
    """torch.save a state dict of 64 MiB tensors (plus small ones) totalling about size_gb GiB."""
    import torch

    count = max(1, int(size_gb * 1024 / TENSOR_MB))
    state: dict[str, torch.Tensor] = {}
    for i in range(count):
        state[f"layers.{i}.weight"] = torch.full((TENSOR_MB * 1024 * 1024 // 4,), float(i))
        state[f"layers.{i}.bias"] = torch.zeros(16)
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)


def _open(path: Path) -> tuple[int, HashingReader]:
    fd = os.open(path, os.O_RDONLY)
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # as the pipeline does
    return fd, HashingReader(fd, size=os.fstat(fd).st_size)


def hash_only(path: Path) -> float:
    """Seconds to hash the file with the reader the scan uses (peek the head, then drain)."""
    start = time.perf_counter()
    fd, reader = _open(path)
    try:
        reader.peek(HEAD_SIZE)
        reader.drain()
    finally:
        os.close(fd)
    return time.perf_counter() - start


def scan_only(path: Path) -> tuple[float, list[str]]:
    """Seconds to identify, scan and hash in one pass, and the finding codes."""
    start = time.perf_counter()
    fd, reader = _open(path)
    try:
        fmt = identify(reader.peek(HEAD_SIZE), reader.size)
        scanner = scanner_for(fmt)
        assert scanner is not None, fmt
        findings = list(scanner.scan(reader, ScanContext(path.name, fmt)))
        reader.drain()
    finally:
        os.close(fd)
    return time.perf_counter() - start, sorted({f.code for f in findings})


def main() -> None:
    """Build both checkpoints, time them, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="verifier-pickle-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    print("| format | size | hash only | scan + hash | ratio | findings |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, zip_format in (("legacy", False), ("zip", True)):
        path = folder / f"{name}.pt"
        if not path.exists():
            write_checkpoint(path, args.size_gb, zip_format=zip_format)
        hash_only(path)  # warm the page cache
        base, scan = [], []
        codes: list[str] = []
        for i in range(args.repeat):
            # Alternate which runs first, so page-cache effects do not favour either.
            if i % 2:
                seconds, codes = scan_only(path)
                base.append(hash_only(path))
            else:
                base.append(hash_only(path))
                seconds, codes = scan_only(path)
            scan.append(seconds)
        size = path.stat().st_size / (1 << 30)
        print(
            f"| {name} | {size:.2f} GiB | {min(base):.3f} s | {min(scan):.3f} s | "
            f"{min(scan) / min(base):.3f} | {', '.join(codes)} |"
        )
        if not args.dir:
            path.unlink()


if __name__ == "__main__":
    main()
