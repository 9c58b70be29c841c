"""Decision latency of `verifier serve` under concurrent clients (`GET /api/v1/decision`).

The server is the real one (`verifier serve`, uvicorn) in a process of its own on an SQLite (or
`--database-url`) database seeded with recorded, decided scans; the clients are asyncio tasks
of one httpx client in this process, each asking for a random known or never-scanned commit.
Client and server share the machine's cores, so the figures are an upper bound for a server on
its own host. Prints p50, p90, p99, the maximum, errors and requests per second.

    python benchmarks/service_load.py                             # 100 clients x 50 requests
    python benchmarks/service_load.py --clients 100 --requests 20 --models 500
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def seed(database_url: str, models: int) -> tuple[list[str], str]:
    """Record `models` decided scans of Hub commits; return their subjects and a viewer token."""
    from verifier import __version__
    from verifier.model import ScanReport, ScanStatus
    from verifier.pipeline import UNDECIDED, decide_report
    from verifier.policy import default_policy_path, load_policy
    from verifier.service.model import Role
    from verifier.service.tokens import new_token, token_digest
    from verifier.store import Store
    from verifier.store.service_records import ServiceRecords

    policy = load_policy(default_policy_path())
    subjects = []
    now = datetime.now(UTC).isoformat()
    with Store.open(database_url) as store:
        for i in range(models):
            commit = hashlib.sha1(f"bench-{i}".encode(), usedforsecurity=False).hexdigest()
            report = ScanReport(
                scan_id=uuid.uuid4().hex,
                target=f"hf://bench/model-{i}@{commit}",
                started_at=now,
                finished_at=now,
                tool_version=__version__,
                status=ScanStatus.COMPLETE,
                files=(),
                findings=(),
                verdict=UNDECIDED,
                source={"type": "huggingface", "repo_id": f"bench/model-{i}", "commit": commit},
            )
            store.record_scan(decide_report(report, policy))
            subjects.append(f"hf://bench/model-{i}@{commit}")
        secret = new_token()
        ServiceRecords(store).create_token(
            name=f"bench-{uuid.uuid4().hex[:8]}",
            role=Role.VIEWER,
            token_sha256=token_digest(secret),
            actor="benchmark",
        )
    return subjects, secret


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def load(
    base: str, token: str, subjects: list[str], *, clients: int, requests: int
) -> tuple[list[float], int, float]:
    import httpx

    unknown = [f"hf://bench/never-{i}@{'0' * 39}{i % 10}" for i in range(10)]
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def one_client(seed_value: int) -> None:
            nonlocal errors
            rng = random.Random(seed_value)
            for _ in range(requests):
                target = rng.choice(subjects) if rng.random() < 0.9 else rng.choice(unknown)
                start = time.perf_counter()
                try:
                    response = await client.get("/api/v1/decision", params={"target": target})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

        began = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.perf_counter() - began
    return latencies, errors, elapsed


def wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    import httpx

    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not answer /healthz within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--models", type=int, default=200, help="recorded scans to seed")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="verifier-load-") as tmp:
        env = dict(os.environ, VERIFIER_HOME=tmp)
        os.environ["VERIFIER_HOME"] = tmp
        url = args.database_url or f"sqlite:///{Path(tmp) / 'verifier.db'}"
        subjects, token = seed(url, args.models)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "verifier", "serve", "--port", str(port)]
        server = subprocess.Popen([*command, "--database-url", url], env=env)
        try:
            wait_healthy(base, server)
            asyncio.run(load(base, token, subjects, clients=10, requests=5))  # warm-up
            latencies, errors, elapsed = asyncio.run(
                load(base, token, subjects, clients=args.clients, requests=args.requests)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    ms = sorted(x * 1000 for x in latencies)
    quantiles = statistics.quantiles(ms, n=100)
    print(
        f"{len(ms)} decisions, {args.clients} clients, {args.models} models: "
        f"p50 {quantiles[49]:.1f} ms, p90 {quantiles[89]:.1f} ms, p99 {quantiles[98]:.1f} ms, "
        f"max {ms[-1]:.1f} ms, errors {errors}, {len(ms) / elapsed:.0f} requests/s"
    )


if __name__ == "__main__":
    main()
