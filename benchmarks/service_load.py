"""Load on `verifier serve`: decision latency under concurrent clients, and scan throughput.

Decisions: the server is the real one (`verifier serve`, uvicorn) in a process of its own on an
SQLite (or `--database-url`) database seeded with recorded, decided scans. `wrk` (or asyncio
httpx clients) keeps C connections busy, first on `GET /healthz` (the baseline), then on
`GET /api/v1/decision` for random recorded or never-scanned commits. Client and server share
the machine's cores. Prints p50, p90, p99, the maximum, errors, requests per second and the
server's CPU a request of both.

Scans (`--scan-workers 1,2,4`, PostgreSQL): every model of the Hub emulator (its own process)
shares some shards with all the others; each round queues them all on a fresh database and
times N `verifier worker` processes until the queue is empty, and counts the downloads.

    python benchmarks/service_load.py                                 # 100 clients, SQLite
    python benchmarks/service_load.py --database-url postgresql+psycopg://... --workers 2
    python benchmarks/service_load.py --database-url postgresql+psycopg://... --scan-workers 1,2,4
    python benchmarks/service_load.py --baseline-tree ../before --rounds 2   # before and after
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
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
from multiprocessing.connection import Connection
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


# Scan throughput: `verifier worker` processes on PostgreSQL, models that share blobs.


def hub_process(
    models: int, shared: int, shared_mib: int, unique_mib: int, conn: Connection
) -> None:
    """The Hub emulator of the tests in a process of its own, with `models` repositories that
    share `shared` safetensors shards (the same bytes) and differ in one shard and the config.
    Answers "downloads" with the file bodies served since the last ask, and stops on "stop"."""
    from benchmarks.hf_fetch import safetensors_blob
    from tests.hub_emulator import HubEmulator

    names = [f"model-{k + 1:05d}-of-{shared + 1:05d}.safetensors" for k in range(shared + 1)]
    common = {name: safetensors_blob(shared_mib << 20) for name in names[:shared]}
    with HubEmulator() as hub:
        for i in range(models):
            files = dict(common)
            files[names[shared]] = safetensors_blob(unique_mib << 20)
            files["config.json"] = json.dumps({"model_type": "bench", "index": i}).encode()
            hub.add_repo(f"bench/model-{i}", files)
            for path, data in files.items():  # digests computed now, not while measured
                hub.repos[f"bench/model-{i}"].entry(path, data)
        conn.send(hub.endpoint)
        while (command := conn.recv()) != "stop":
            assert command == "downloads"
            conn.send(hub.downloads())
            hub.requests.clear()


def scan_round(
    admin_url: str, endpoint: str, *, models: int, workers: int, tmp: Path
) -> dict[str, float]:
    """Queue a scan of every model on a fresh database, then time `workers` worker processes
    (one scan at a time each) from their start until the last one exits with the queue empty."""
    import sqlalchemy as sa

    from verifier.policy import default_policy_path
    from verifier.service.core import Service, ServiceConfig
    from verifier.service.model import JobStatus

    name = f"verifier_scan_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    home = tmp / name
    env = dict(os.environ, VERIFIER_HOME=str(home), HF_ENDPOINT=endpoint, HF_HUB_DISABLE_XET="1")
    os.environ["VERIFIER_HOME"] = str(home)
    try:
        service = Service(
            ServiceConfig(
                database_url=url, policy_path=default_policy_path(), hub_endpoint=endpoint
            )
        )
        try:
            service.start()
            command = [sys.executable, "-m", "verifier", "worker", "--database-url", url]
            command += ["--hf-endpoint", endpoint, "--concurrency", "1", "--until-empty"]
            idle = run_workers(command, env, workers)  # start-up and exit, nothing queued
            jobs = [
                service.submit_scan(
                    f"hf://bench/model-{i}", policy=None, environment=None, actor="benchmark"
                ).job_id
                for i in range(models)
            ]
            elapsed = run_workers(command, env, workers)
            statuses = [service.records.get_job(job).status for job in jobs]
        finally:
            service.close()
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    complete = sum(status is JobStatus.COMPLETE for status in statuses)
    if complete != models:
        raise SystemExit(f"{complete} of {models} scans complete")
    return {"seconds": elapsed, "idle": idle, "per_minute": models / elapsed * 60}


def run_workers(command: list[str], env: dict[str, str], workers: int) -> float:
    """Seconds from starting `workers` worker processes until the last one exits."""
    began = time.perf_counter()
    running = [
        subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) for _ in range(workers)
    ]
    codes = [process.wait() for process in running]
    if codes != [0] * workers:
        raise SystemExit(f"workers exited with {codes}")
    return time.perf_counter() - began


def scan_throughput(args: argparse.Namespace) -> None:
    """Scan throughput with 1, 2 and 4 workers (or `--scan-workers`), and the downloads."""
    import multiprocessing

    if not args.database_url or not args.database_url.startswith("postgresql"):
        raise SystemExit("--scan-workers needs --database-url postgresql+psycopg://...")
    counts = [int(n) for n in args.scan_workers.split(",")]
    here, there = multiprocessing.Pipe()
    hub = multiprocessing.Process(
        target=hub_process,
        args=(args.scan_models, args.shared, args.shared_mib, args.unique_mib, there),
        daemon=True,
    )
    hub.start()
    endpoint = here.recv()
    results: list[tuple[int, dict[str, float], list[str], float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="verifier-scan-bench-") as tmp:
            for workers in counts:
                load_before = os.getloadavg()[0]
                figures = scan_round(
                    args.database_url, endpoint, models=args.scan_models, workers=workers,
                    tmp=Path(tmp),
                )  # fmt: skip
                here.send("downloads")
                results.append((workers, figures, here.recv(), load_before))
    finally:
        here.send("stop")
        hub.join(30)
    size = args.shared * args.shared_mib + args.unique_mib
    print(
        f"{args.scan_models} models of {args.shared} shared shards of {args.shared_mib} MiB, "
        f"one shard of {args.unique_mib} MiB of their own and a config ({size} MiB each)"
    )
    baseline = results[0][1]["seconds"]
    for workers, figures, downloads, load_before in results:
        shards = [re.search(r"model-(\d{5})-of-", path) for path in downloads]
        shared = sum(1 for m in shards if m is not None and int(m.group(1)) <= args.shared)
        print(
            f"{workers} worker(s): {figures['seconds']:.1f} s, "
            f"{figures['per_minute']:.1f} models/min, x{baseline / figures['seconds']:.2f} "
            f"against {counts[0]} worker(s) (start-up and exit with nothing queued: "
            f"{figures['idle']:.1f} s); "
            f"{len(downloads)} file bodies downloaded, "
            f"{shared} of them shared shards; load average {load_before:.1f} before"
        )


def seed_with(
    python: str, tree: Path, url: str, models: int, env: dict[str, str]
) -> tuple[list[str], str]:
    """`seed` run by another checkout's interpreter (its own code and migrations)."""
    code = (
        "import json, sys; sys.path.insert(0, '.'); from benchmarks.service_load import seed; "
        f"print(json.dumps(seed({url!r}, {models})))"
    )
    output = subprocess.run(
        [python, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True
    ).stdout
    subjects, token = json.loads(output.strip().splitlines()[-1])
    return list(subjects), str(token)


class Side:
    """One server under test: a checkout's interpreter, its database, its process."""

    def __init__(self, name: str, python: str, tree: Path, args: argparse.Namespace, tmp: Path):
        self.name, self.python, self.tree = name, python, tree
        folder = tmp / name
        folder.mkdir()
        self.env = dict(os.environ, VERIFIER_HOME=str(folder))
        self.url = f"sqlite:///{folder / 'verifier.db'}"
        self._admin: str | None = None
        if args.database_url:  # a fresh PostgreSQL database of each side's own
            import sqlalchemy as sa

            self._admin = args.database_url
            self._database = f"verifier_load_{name}_{uuid.uuid4().hex[:8]}"
            self._run_admin(f'CREATE DATABASE "{self._database}"')
            url = sa.engine.make_url(args.database_url).set(database=self._database)
            self.url = url.render_as_string(hide_password=False)
        self.subjects, self.token = seed_with(python, tree, self.url, args.models, self.env)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [python, "-m", "verifier", "serve", "--port", str(self.port)]
        command += ["--upkeep-interval", "0"]
        if "--notify-interval" in (Path(tree) / "verifier" / "cli.py").read_text():
            command += ["--notify-interval", "0"]  # no delivery thread: the answers alone
        if args.workers > 1:
            command += ["--workers", str(args.workers)]
        self.server = subprocess.Popen(
            [*command, "--database-url", self.url], env=self.env, cwd=tree
        )

    def start(self) -> None:
        wait_healthy(self.base, self.server)
        asyncio.run(load(self.base, self.token, self.subjects, clients=10, requests=50))  # warm

    def stop(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=30)
        if self._admin is not None:
            self._run_admin(f'DROP DATABASE IF EXISTS "{self._database}" WITH (FORCE)')

    def _run_admin(self, statement: str) -> None:
        import sqlalchemy as sa

        assert self._admin is not None
        admin = sa.create_engine(self._admin, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(statement))
        finally:
            admin.dispose()


def measure(side: Side, path: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    """One load on one route of one server: the figures, its CPU and the load average before."""
    load_before = os.getloadavg()[0]
    cpu = server_cpu(side.server.pid)
    if args.client == "wrk":
        figures = wrk_load(
            side.base, side.token, side.subjects, path=path, clients=args.clients,
            seconds=args.seconds, tmp=tmp,
        )  # fmt: skip
    else:
        figures = httpx_load(
            side.base, side.token, side.subjects, path=path, clients=args.clients,
            seconds=args.seconds,
        )  # fmt: skip
    figures["cpu"] = server_cpu(side.server.pid) - cpu
    figures["load"] = load_before
    return figures


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
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="another checkout (with its own .venv) served and measured in the same run, "
        "its loads alternating with this checkout's: the 'before' of a change",
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternations of the two trees")
    scans = parser.add_argument_group("scan throughput (PostgreSQL, instead of the decisions)")
    scans.add_argument("--scan-workers", default=None, metavar="N,N,...", help="e.g. 1,2,4")
    scans.add_argument("--scan-models", type=int, default=12)
    scans.add_argument("--shared", type=int, default=2, help="shards every model shares")
    scans.add_argument("--shared-mib", type=int, default=32)
    scans.add_argument("--unique-mib", type=int, default=8)
    args = parser.parse_args()
    if args.scan_workers:
        scan_throughput(args)
        return
    trees = [("this", sys.executable, ROOT)]
    if args.baseline_tree is not None:
        tree = args.baseline_tree.resolve()
        trees.insert(0, ("baseline", str(tree / ".venv/bin/python"), tree))
    results: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name, _, _ in trees}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="verifier-load-") as tmp:
        sides = [Side(name, python, tree, args, Path(tmp)) for name, python, tree in trees]
        try:
            for side in sides:
                side.start()
            for _ in range(args.rounds):
                for side in sides:
                    round_figures = {
                        path: measure(side, path, args, Path(tmp)) for path in (HEALTH, DECISION)
                    }
                    results[side.name].append(round_figures)
            loads.append(os.getloadavg()[0])
        finally:
            for side in sides:
                side.stop()
    loads += [f["load"] for rounds in results.values() for r in rounds for f in r.values()]
    backend = sides[0].url.split(":", 1)[0].split("+", 1)[0]
    print(
        f"{args.client}, {args.clients} clients, {args.seconds} s a run, {args.models} models, "
        f"{backend}, {args.workers} server process(es), {args.rounds} round(s), load average "
        f"{min(loads):.1f} to {max(loads):.1f}"
    )
    for name, rounds in results.items():
        for i, figures in enumerate(rounds, 1):
            label = f"{name} (round {i}, load {figures[DECISION]['load']:.1f})"
            print(_line(f"{label} GET /healthz", figures[HEALTH]))
            print(_line(f"{label} GET /api/v1/decision", figures[DECISION]))
    mine = results["this"]
    for i, figures in enumerate(mine, 1):
        decision, health = figures[DECISION], figures[HEALTH]
        ratio = decision["p99"] / max(health["p99"], 0.001)
        line = f"round {i}: decision p99 / healthz p99 {ratio:.2f}"
        if "baseline" in results:
            before = results["baseline"][i - 1][DECISION]
            line += (
                f"; against the baseline: p50 x{decision['p50'] / max(before['p50'], 0.001):.2f}, "
                f"p99 x{decision['p99'] / max(before['p99'], 0.001):.2f}, "
                f"requests/s x{decision['per_second'] / max(before['per_second'], 0.001):.2f}, "
                f"CPU a request x{_cpu(decision) / max(_cpu(before), 1e-9):.2f}"
            )
        print(line)
    worst = max(figures[DECISION]["p99"] for figures in mine)
    print(
        f"goal p99 under 50 ms: {'met' if worst < 50 else 'NOT met'} (worst round {worst:.1f} ms)"
    )


def _cpu(figures: dict[str, float]) -> float:
    return figures["cpu"] / max(figures["requests"], 1.0)


if __name__ == "__main__":
    main()
