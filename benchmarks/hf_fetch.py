"""Fetch a multi-file model from a loopback Hub: plain `snapshot_download` against `verifier scan`.

Both runs use the same emulator (tests/hub_emulator.py, with its CDN origin, in a process of its
own, as the Hub is another machine in real use) and the same client process. The baseline
verifies nothing (it checks sizes only); verifier downloads into quarantine, reads each landed
file once (hashing and scanning it in that pass) while the others still download, verifies
every digest, decides and records (SQLite). Runs alternate; the
median of each is reported with the ratio verifier / baseline.

    python benchmarks/hf_fetch.py                      # 4 x 256 MiB, 3 rounds
    python benchmarks/hf_fetch.py --files 4 --size-mib 64 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from tests.hub_emulator import HubEmulator  # noqa: E402


def safetensors_blob(size: int) -> bytes:
    """A valid safetensors file of about `size` bytes (one U8 tensor of pseudo-random bytes)."""
    data_len = size - 8 - 256
    header = json.dumps({"w": {"dtype": "U8", "shape": [data_len], "data_offsets": [0, data_len]}})
    raw = header.encode().ljust(256, b" ")
    block = os.urandom(1 << 20)  # distinct per file, so no file is already verified
    data = (block * (data_len // len(block) + 1))[:data_len]
    return struct.pack("<Q", len(raw)) + raw + data


def plain_download(endpoint: str, repo_id: str, cache: Path) -> float:
    from huggingface_hub import snapshot_download

    start = time.perf_counter()
    snapshot_download(repo_id, cache_dir=str(cache), endpoint=endpoint)
    return time.perf_counter() - start


def verifier_scan(endpoint: str, repo_id: str, home: Path) -> tuple[float, str]:
    from verifier.pipeline import HubOptions, run_scan
    from verifier.policy import default_policy_path, load_policy
    from verifier.store import Store

    os.environ["VERIFIER_HOME"] = str(home)
    policy = load_policy(default_policy_path())
    url = f"sqlite:///{home / 'verifier.db'}"
    Store.open(url).close()  # an existing database, as in steady use: migrations are not timed
    start = time.perf_counter()
    with Store.open(url) as store:
        report = run_scan(
            f"hf://{repo_id}",
            policy=policy,
            recorder=store,
            hub=HubOptions(endpoint=endpoint, lineage=False),
        )
    return time.perf_counter() - start, report.verdict.decision.value


def serve(files: int, size_mib: int, conn: Connection, stop: Event) -> None:
    """Run the Hub emulator in its own process (the Hub is another machine in real use)."""
    repo = {
        f"model-{i + 1:05d}-of-{files:05d}.safetensors": safetensors_blob(size_mib << 20)
        for i in range(files)
    }
    repo["config.json"] = b'{"model_type": "bench"}'
    with HubEmulator() as hub:
        hub.add_repo("bench/model", repo)
        for path, data in repo.items():  # digests computed once, before anything is timed
            hub.repos["bench/model"].entry(path, data)
        conn.send((hub.endpoint, sum(len(v) for v in repo.values())))
        stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    receive, send = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve, args=(args.files, args.size_mib, send, stop), daemon=True
    )
    server.start()
    endpoint, total = receive.recv()
    plain: list[float] = []
    ours: list[float] = []
    try:
        # One unmeasured warm-up of each, so imports and first connections are not timed.
        for measured in [False] + [True] * args.rounds:
            work = Path(tempfile.mkdtemp(prefix="hf-fetch-bench-"))
            try:
                base = plain_download(endpoint, "bench/model", work / "cache")
                took, decision = verifier_scan(endpoint, "bench/model", work / "home")
            finally:
                shutil.rmtree(work, ignore_errors=True)
            if decision != "allow":
                raise SystemExit(f"verifier did not allow the benchmark model: {decision}")
            if measured:
                plain.append(base)
                ours.append(took)
                print(f"  round: snapshot_download {base:.2f} s, verifier scan {took:.2f} s")
    finally:
        stop.set()
        server.join(timeout=10)
    plain_s, ours_s = statistics.median(plain), statistics.median(ours)
    mib = total / 2**20
    print(f"model: {args.files} x {args.size_mib} MiB ({mib:.0f} MiB), cpus {os.cpu_count()}")
    print(f"snapshot_download (sizes only):       {plain_s:.2f} s  {mib / plain_s:.0f} MiB/s")
    print(f"verifier scan (verify, scan, record): {ours_s:.2f} s  {mib / ours_s:.0f} MiB/s")
    print(f"ratio verifier / snapshot_download:   {ours_s / plain_s:.3f}")


if __name__ == "__main__":
    main()
