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
import re
import shutil
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

HEALTH, DECISION = "/healthz", "/api/v1/decision"
#: Commits never scanned (one request in ten): `unknown`.
UNKNOWN = [f"hf://bench/never-{i}@{'0' * 39}{i % 10}" for i in range(10)]


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
    base: str,
    token: str,
    subjects: list[str],
    *,
    clients: int,
    requests: int,
    path: str = "/api/v1/decision",
) -> tuple[list[float], int, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def one_client(seed_value: int) -> None:
            nonlocal errors
            rng = random.Random(seed_value)
            for _ in range(requests):
                target = rng.choice(subjects) if rng.random() < 0.9 else rng.choice(UNKNOWN)
                start = time.perf_counter()
                try:
                    response = await client.get(path, params={"target": target})
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


WRK_SCRIPT = """
local targets = {%s}
local unknown = {%s}
local auth = "Bearer %s"
math.randomseed(%d)
request = function()
  local target
  if math.random() < 0.9 then target = targets[math.random(#targets)]
  else target = unknown[math.random(#unknown)] end
  return wrk.format("GET", "/api/v1/decision?target=" .. target, {["Authorization"] = auth})
end
"""


def wrk_load(
    base: str, token: str, subjects: list[str], *, path: str, clients: int, seconds: int, tmp: Path
) -> dict[str, float]:
    """Run wrk (C, event-driven: it takes little of the CPU it measures) with `clients`
    connections, each a closed loop: the next request as soon as the answer is in."""
    from urllib.parse import quote

    script = tmp / "decision.lua"
    quoted = ", ".join(f'"{quote(s, safe="")}"' for s in subjects)
    unknown = ", ".join(f'"{quote(u, safe="")}"' for u in UNKNOWN)
    script.write_text(WRK_SCRIPT % (quoted, unknown, token, 15))
    command = ["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--latency"]
    if path == DECISION:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, f"{base}{path}"], capture_output=True, text=True, check=True
    ).stdout
    return parse_wrk(output)


def _ms(text: str) -> float:
    number = float(re.sub(r"[a-z]+$", "", text))
    unit = re.search(r"[a-z]+$", text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit.group() if unit else "s"]
    return number * scale


def parse_wrk(output: str) -> dict[str, float]:
    """p50, p90, p99, max (ms), requests, errors and requests/s from `wrk --latency`."""
    found: dict[str, float] = {}
    for quantile in ("50", "90", "99"):
        match = re.search(rf"^\s+{quantile}%\s+(\S+)", output, re.M)
        assert match, output
        found[f"p{quantile}"] = _ms(match.group(1))
    latency = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output, re.M)
    done = re.search(r"^\s+(\d+) requests in", output, re.M)
    rate = re.search(r"^Requests/sec:\s+(\S+)", output, re.M)
    assert latency and done and rate, output
    found["max"] = _ms(latency.group(1))
    found["requests"] = float(done.group(1))
    found["per_second"] = float(rate.group(1))
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    found["errors"] = float(errors)
    if errors:
        print(f"wrk reported errors:\n{output}", file=sys.stderr)
    return found


def httpx_load(
    base: str, token: str, subjects: list[str], *, path: str, clients: int, seconds: int
) -> dict[str, float]:
    """The same load from asyncio tasks on one httpx client in this process (no wrk)."""
    requests = max(1, seconds * 20)
    latencies, errors, elapsed = asyncio.run(
        load(base, token, subjects, clients=clients, requests=requests, path=path)
    )
    ms = sorted(x * 1000 for x in latencies)
    quantiles = statistics.quantiles(ms, n=100)
    return {
        "p50": quantiles[49],
        "p90": quantiles[89],
        "p99": quantiles[98],
        "max": ms[-1],
        "requests": float(len(ms)),
        "errors": float(errors),
        "per_second": len(ms) / elapsed,
    }


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server and its worker processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        # After the command: state, ppid, ..., utime (12th), stime (13th).
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _line(name: str, figures: dict[str, float]) -> str:
    return (
        f"{name}: p50 {figures['p50']:.1f} ms, p90 {figures['p90']:.1f} ms, "
        f"p99 {figures['p99']:.1f} ms, max {figures['max']:.1f} ms, "
        f"{figures['requests']:.0f} requests, errors {figures['errors']:.0f}, "
        f"{figures['per_second']:.0f} requests/s, server CPU "
        f"{figures['cpu'] / figures['requests'] * 1e6:.0f} us a request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=20, help="per measured run")
    parser.add_argument("--models", type=int, default=200, help="recorded scans to seed")
    parser.add_argument("--workers", type=int, default=1, help="server processes (PostgreSQL)")
    parser.add_argument(
        "--client",
        choices=("wrk", "httpx"),
        default="wrk" if shutil.which("wrk") else "httpx",
        help="load generator [wrk when installed]",
    )
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
        command += ["--upkeep-interval", "0"]
        if args.workers > 1:
            command += ["--workers", str(args.workers)]
        server = subprocess.Popen([*command, "--database-url", url], env=env)
        loads: list[float] = []
        try:
            wait_healthy(base, server)
            asyncio.run(load(base, token, subjects, clients=10, requests=50))  # warm-up
            results = {}
            for path in (HEALTH, DECISION):
                loads.append(os.getloadavg()[0])
                cpu = server_cpu(server.pid)
                if args.client == "wrk":
                    results[path] = wrk_load(
                        base, token, subjects, path=path, clients=args.clients,
                        seconds=args.seconds, tmp=Path(tmp),
                    )  # fmt: skip
                else:
                    results[path] = httpx_load(
                        base, token, subjects, path=path, clients=args.clients,
                        seconds=args.seconds,
                    )  # fmt: skip
                results[path]["cpu"] = server_cpu(server.pid) - cpu
            loads.append(os.getloadavg()[0])
        finally:
            server.terminate()
            server.wait(timeout=30)
    backend = url.split(":", 1)[0].split("+", 1)[0]
    print(
        f"{args.client}, {args.clients} clients, {args.seconds} s a run, {args.models} models, "
        f"{backend}, {args.workers} server process(es), load average "
        f"{min(loads):.1f} to {max(loads):.1f}"
    )
    print(_line("GET /healthz (baseline)", results[HEALTH]))
    print(_line("GET /api/v1/decision", results[DECISION]))
    print(
        f"decision p99 / healthz p99: "
        f"{results[DECISION]['p99'] / max(results[HEALTH]['p99'], 0.001):.2f}; "
        f"goal p99 under 50 ms: {'met' if results[DECISION]['p99'] < 50 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
